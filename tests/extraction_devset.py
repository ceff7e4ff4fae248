"""The labelled extraction development set (``tests/data/extraction/``) and its scoring.

Used by the quality gate in ``tests/test_extract_devset.py`` and by ``bench/extract_eval.py``.
Each document is ``<name>.txt``, ``.md``, ``.adoc``, ``.csv`` or ``.html`` with ``<name>.json``
beside it: ``{"iocs": {type: [values]}, "ignore": {...}, "traps": {...}, "source": "<domain>"}``.
``iocs`` is what a perfect extractor reports; ``ignore`` (optional) lists values that count
neither way (reference links, ranges, values a reader could read either way); ``traps``
(optional) lists known look-alikes in the text that must not come out (version numbers,
code names, secrets); ``source`` (optional) is the publisher's own domain.

``feeds/`` holds whole RSS/Atom files labelled the same way, for the whole-feed score.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from generator.extract.htmltext import html_to_text
from generator.extract.indicators import IOC_TYPES

DEVSET = Path(__file__).resolve().parent / "data" / "extraction"
FEEDSET = DEVSET / "feeds"
BODY_SUFFIXES = (".txt", ".md", ".adoc", ".csv", ".html")

Pair = tuple[str, str]  # (type, value)


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    kind: str  # "txt" | "md" | "adoc" | "csv" | "html" | "xml" (a whole feed)
    text: str  # what extractors see: HTML already converted to text
    gold: frozenset[Pair]
    source: str = ""
    ignored: frozenset[Pair] = frozenset()
    traps: frozenset[Pair] = frozenset()


def _pairs(table: dict[str, list[str]] | None) -> frozenset[Pair]:
    return frozenset((t, v) for t, values in (table or {}).items() for v in values)


def load_labels(label: Path) -> tuple[frozenset[Pair], str, frozenset[Pair], frozenset[Pair]]:
    """(gold, source, ignored, traps) of one ``<name>.json``."""
    meta = json.loads(label.read_text(encoding="utf-8"))
    traps = _pairs(meta.get("traps"))
    return _pairs(meta["iocs"]), meta.get("source", ""), _pairs(meta.get("ignore")), traps


def load_devset(folder: Path = DEVSET) -> list[Document]:
    docs = []
    for label in sorted(folder.glob("*.json")):
        gold, source, ignored, traps = load_labels(label)
        body = next(p for p in map(label.with_suffix, BODY_SUFFIXES) if p.is_file())
        raw = body.read_text(encoding="utf-8")
        kind = body.suffix[1:]
        text = html_to_text(raw) if kind == "html" else raw
        docs.append(Document(label.stem, kind, text, gold, source, ignored, traps))
    return docs


def load_feedset(folder: Path = FEEDSET) -> list[Document]:
    """The labelled whole feeds; ``text`` is the raw XML (ingest parses it)."""
    docs = []
    for label in sorted(folder.glob("*.json")):
        gold, source, ignored, traps = load_labels(label)
        raw = label.with_suffix(".xml").read_text(encoding="utf-8")
        docs.append(Document(label.stem, "xml", raw, gold, source, ignored, traps))
    return docs


@dataclass(slots=True)
class Score:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str, Pair]] = field(default_factory=list)  # (doc, "FP"/"FN", pair)
    traps: int = 0  # labelled look-alikes in the texts
    traps_emitted: list[tuple[str, Pair]] = field(default_factory=list)

    def add(
        self,
        doc: str,
        predicted: Iterable[Pair],
        gold: frozenset[Pair],
        types: Iterable[str] = IOC_TYPES,
        ignored: frozenset[Pair] = frozenset(),
        traps: frozenset[Pair] = frozenset(),
    ) -> None:
        scored = set(types)
        got = {p for p in predicted if p[0] in scored} - ignored
        want = {p for p in gold if p[0] in scored}
        self.traps += len(traps)
        self.traps_emitted += [(doc, pair) for pair in sorted(got & traps)]
        for t, _ in got & want:
            self.tp[t] += 1
        for pair in sorted(got - want):
            self.fp[pair[0]] += 1
            self.errors.append((doc, "FP", pair))
        for pair in sorted(want - got):
            self.fn[pair[0]] += 1
            self.errors.append((doc, "FN", pair))

    def prf(self, kind: str | None = None) -> tuple[float, float, float]:
        """Precision, recall, F1 for one type, or micro-averaged over all when None."""
        tp = self.tp[kind] if kind else sum(self.tp.values())
        fp = self.fp[kind] if kind else sum(self.fp.values())
        fn = self.fn[kind] if kind else sum(self.fn.values())
        p = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
        r = tp / (tp + fn) if tp + fn else 1.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def evaluate(
    docs: list[Document],
    extractor: Callable[[Document], Iterable[Pair]],
    types: Iterable[str] = IOC_TYPES,
) -> Score:
    score = Score()
    kinds = tuple(types)
    for doc in docs:
        score.add(doc.name, extractor(doc), doc.gold, kinds, doc.ignored, doc.traps)
    return score
