"""The labelled extraction development set (``tests/data/extraction/``) and its scoring.

Used by the quality gate in ``tests/test_extract_devset.py`` and by ``bench/extract_eval.py``.
Each document is ``<name>.txt`` or ``<name>.html`` with ``<name>.json`` beside it:
``{"iocs": {type: [values]}, "source": "<the publisher's domain>"}`` (``source`` optional).
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

Pair = tuple[str, str]  # (type, value)


@dataclass(frozen=True, slots=True)
class Document:
    name: str
    kind: str  # "txt" | "html"
    text: str  # what extractors see: HTML already converted to text
    gold: frozenset[Pair]
    source: str = ""


def load_devset(folder: Path = DEVSET) -> list[Document]:
    docs = []
    for label in sorted(folder.glob("*.json")):
        meta = json.loads(label.read_text(encoding="utf-8"))
        body = next(
            p for p in (label.with_suffix(".txt"), label.with_suffix(".html")) if p.is_file()
        )
        raw = body.read_text(encoding="utf-8")
        kind = body.suffix[1:]
        text = html_to_text(raw) if kind == "html" else raw
        gold = frozenset((t, v) for t, values in meta["iocs"].items() for v in values)
        docs.append(Document(label.stem, kind, text, gold, meta.get("source", "")))
    return docs


@dataclass(slots=True)
class Score:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    errors: list[tuple[str, str, Pair]] = field(default_factory=list)  # (doc, "FP"/"FN", pair)

    def add(
        self,
        doc: str,
        predicted: Iterable[Pair],
        gold: frozenset[Pair],
        types: Iterable[str] = IOC_TYPES,
    ) -> None:
        scored = set(types)
        got = {p for p in predicted if p[0] in scored}
        want = {p for p in gold if p[0] in scored}
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
        score.add(doc.name, extractor(doc), doc.gold, kinds)
    return score
