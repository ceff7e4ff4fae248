"""Context sentences and IOC-list detection for extracted indicators."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from itertools import chain

__all__ = ["CONTEXT_LIMIT", "LABEL_WORDS", "ListDetector", "SentenceContexts", "sentence_context"]

CONTEXT_LIMIT = 300
_WINDOW = 2 * CONTEXT_LIMIT
_LONG_LINE = 4000
# A pattern led by a repeat gets no first-character prefilter from the regex engine, so
# the first punctuation mark is spelled out; a text without "!" or "?" takes the variant
# led by a literal full stop, which the engine finds fastest.
# A match starts only at the first mark of a run (the look-behind): tried from every mark
# of a run with no sentence after it, the engine would rescan the rest of the run each
# time, quadratic in the run's length ("." * 40000 took seconds). From a later mark the
# match would end where the one from the run's first mark ends, so no match is lost; a
# scan that starts inside a run goes through ``_sentence_ends``.
_MARKS = frozenset(".!?")
_SENT_END = re.compile(r"[.!?](?<![.!?][.!?])[.!?]*+\s++(?=[A-Z])")
_SENT_END_DOTS = re.compile(r"\.(?<!\.\.)\.*+\s++(?=[A-Z])")
_SENT_END_FROM_INSIDE = re.compile(r"[.!?]++\s++(?=[A-Z])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'&-]*")
_CELL_SEP = re.compile(r" \| |\t")
# Words that label indicators in lists and tables rather than being prose.
LABEL_WORDS = frozenset(
    {
        "ip", "ips", "ipv4", "ipv6", "address", "addresses", "addr", "domain", "domains",
        "host", "hostname", "hostnames", "url", "urls", "uri", "md5", "sha1", "sha256",
        "sha512", "sha-1", "sha-256", "sha-512", "hash", "hashes", "email", "e-mail", "cve",
        "ioc", "iocs", "indicator", "indicators", "type", "value", "c2", "c&c", "cnc",
        "file", "filename", "sample", "technique", "id", "and", "or", "tcp", "udp", "port",
    }
)  # fmt: skip
_IS_LABEL = LABEL_WORDS.__contains__
_PLAIN_BYTES = bytes(range(0x20, 0x7F)) + b"\n"  # what a plain text is made of


def _collapse(value: str) -> str:
    # Every character ``\s`` matches, except the ASCII space, is non-printable, so a
    # printable value without a double space has nothing to collapse.
    if value.isprintable() and "  " not in value:
        return value
    # ``re.sub(r"\s+", " ", value)``: ``str.split`` breaks on the same whitespace as ``\s``.
    words = value.split()
    if not words:
        return " " if value else ""
    head = " " if value[0].isspace() else ""
    return head + " ".join(words) + (" " if value[-1].isspace() else "")


def _sentence_ends(text: str, pos: int, endpos: int) -> Iterator[re.Match[str]]:
    """The matches of ``[.!?]+\\s+(?=[A-Z])`` in ``text[pos:endpos]``, in linear time.

    ``_SENT_END`` skips a match that would start inside a run of marks; only the first
    scanned position can lie inside one (a match ends before a letter), so it is tried
    on its own, once.
    """
    if 0 < pos < endpos and text[pos] in _MARKS and text[pos - 1] in _MARKS:
        m = _SENT_END_FROM_INSIDE.match(text, pos, endpos)
        if m:
            yield m
            pos = m.end()
    yield from _SENT_END.finditer(text, pos, endpos)


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = max(0, start - _WINDOW)
    nl = text.rfind("\n", lo, start)
    seg_start = nl + 1 if nl != -1 else lo
    for m in _sentence_ends(text, seg_start, min(len(text), start + 1)):
        seg_start = m.end()
    return seg_start, _sentence_end(text, end)


def _sentence_end(text: str, end: int) -> int:
    hi = min(len(text), end + _WINDOW)
    nl = text.find("\n", end, hi)
    seg_end = nl if nl != -1 else hi
    m = next(_sentence_ends(text, end, seg_end), None)
    if m:
        seg_end = m.start() + 1
    return seg_end


def _fit(text: str, start: int, end: int, seg_start: int, seg_end: int) -> str:
    if seg_end - seg_start <= CONTEXT_LIMIT:
        segment = text[seg_start:seg_end]
        if segment.isprintable() and "  " not in segment:
            # Nothing to collapse and nothing to cut: the pieces below, joined as they are.
            return text[seg_start:start].lstrip() + text[start:end] + text[end:seg_end].rstrip()
    if start < end and not text[start].isspace() and not text[end - 1].isspace():
        # No whitespace run crosses the indicator's edges, so collapsing the pieces one by
        # one and joining them is collapsing the whole segment; stripped, when it fits.
        whole = " ".join(text[seg_start:seg_end].split())
        if len(whole) <= CONTEXT_LIMIT:
            return whole
    before = _collapse(text[seg_start:start]).lstrip()
    ioc = _collapse(text[start:end])
    after = _collapse(text[end:seg_end]).rstrip()
    if len(before) + len(ioc) + len(after) <= CONTEXT_LIMIT:
        return before + ioc + after
    if len(ioc) >= CONTEXT_LIMIT:
        return ioc[: CONTEXT_LIMIT - 1] + "…"
    budget = CONTEXT_LIMIT - len(ioc) - 2
    left = min(len(before), max(budget // 2, budget - len(after)))
    right = min(len(after), budget - left)
    head = ("…" + before[len(before) - left :]) if left < len(before) else before
    tail = (after[:right] + "…") if right < len(after) else after
    return head + ioc + tail


def sentence_context(text: str, start: int, end: int) -> str:
    """The sentence (or line) around ``text[start:end]``, collapsed, at most 300 chars."""
    return _fit(text, start, end, *_sentence_bounds(text, start, end))


class SentenceContexts:
    """``sentence_context`` for many spans of one text, scanning for sentence ends once.

    Sentence ends (``_SENT_END`` matches) are found in one pass over the text the first
    time a context is asked for; each span then finds the sentence start and end by
    bisection instead of rescanning the text around it. A match that the per-span scan
    would see cut at the start of its window differs at most by whitespace, which the
    context strips; a match that straddles the end of the span falls back to the scan.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.scanned = False
        self.plain = False  # ASCII with no control character but the line break

    def _scan(self) -> None:
        text = self.text
        self.plain = text.isascii() and not text.encode("ascii").translate(None, _PLAIN_BYTES)
        pattern = _SENT_END if "!" in text or "?" in text else _SENT_END_DOTS
        spans = [m.span() for m in pattern.finditer(text)]
        if spans:  # two columns, split at C level
            starts, ends = zip(*spans, strict=True)
            self.starts, self.ends = list(starts), list(ends)
        self.scanned = True

    def __call__(self, start: int, end: int) -> str:
        """The same string as ``sentence_context(text, start, end)``."""
        text = self.text
        if not self.scanned:
            self._scan()
        lo = start - _WINDOW if start > _WINDOW else 0
        seg_start = text.rfind("\n", lo, start) + 1 or lo
        ends = self.ends
        i = bisect_right(ends, start) - 1
        if i >= 0 and ends[i] > seg_start:
            seg_start = ends[i]
        # The sentence end: the first one at or after ``end`` counts when its look-ahead
        # character lies inside the window, as it must for the per-span search; one that
        # straddles the span's end falls back to that search.
        starts = self.starts
        hi = end + _WINDOW
        if hi > len(text):
            hi = len(text)
        seg_end = text.find("\n", end, hi)
        if seg_end == -1:
            seg_end = hi
        i = bisect_right(starts, end)
        if i and ends[i - 1] > end:
            seg_end = _sentence_end(text, end)
        elif i < len(starts) and ends[i] < seg_end:
            seg_end = starts[i] + 1
        if seg_end - seg_start <= CONTEXT_LIMIT:  # the common case of ``_fit``, inlined
            segment = text[seg_start:seg_end]
            # In a plain text only a line break is not printable.
            if ("\n" not in segment if self.plain else segment.isprintable()) and (
                "  " not in segment
            ):
                # The only whitespace a printable string holds is the blank; with none at the
                # span's edges, stripping the segment strips just its two outer pieces.
                if start < end and text[start] != " " and text[end - 1] != " ":
                    return segment.strip()
                return text[seg_start:start].lstrip() + text[start:end] + text[end:seg_end].rstrip()
        return _fit(text, start, end, seg_start, seg_end)


class ListDetector:
    """Decides whether an occurrence sits on an IOC list line or table cell.

    A unit is a line, or the table cell (`` | `` or tab separated) holding the indicator.
    It is list-like when, once its indicators are blanked out, at most 3 words remain
    (words that label indicators, such as "sha256", "domain" or "C2", are not counted),
    or when it holds at least 3 indicators and no more words than indicators.
    A hash is also on a list when its unit holds at least two hashes.
    """

    def __init__(self, text: str, spans: list[tuple[int, int, bool]]) -> None:
        """``spans`` are (start, end, is_hash) for every indicator occurrence."""
        self.text = text
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.hashes: list[bool] = []
        if spans:  # three columns of the sorted spans, split at C level
            starts, ends, hashes = zip(*sorted(spans), strict=True)
            self.starts, self.ends, self.hashes = list(starts), list(ends), list(hashes)
        self.cache: dict[tuple[int, int], tuple[bool, int]] = {}
        self.lines: dict[int, tuple[int, int, tuple[tuple[int, int], ...]]] = {}
        self.line_verdicts: dict[int, tuple[bool, int]] = {}

    def _line(self, line_start: int, pos: int) -> tuple[int, int, tuple[tuple[int, int], ...]]:
        """The line that starts at ``line_start`` and holds ``pos``: its start, its end (-1
        when too long to judge), its cell separators."""
        text = self.text
        line_end = text.find("\n", pos)
        if line_end == -1:
            line_end = len(text)
        if line_end - line_start > _LONG_LINE:
            return line_start, -1, ()
        if (
            text.find(" | ", line_start, line_end) == -1
            and text.find("\t", line_start, line_end) == -1
        ):
            return line_start, line_end, ()
        seps = tuple(m.span() for m in _CELL_SEP.finditer(text, line_start, line_end))
        return line_start, line_end, seps

    @staticmethod
    def _cell(
        start: int, end: int, line_start: int, line_end: int, seps: tuple[tuple[int, int], ...]
    ) -> tuple[int, int]:
        cell_start, cell_end = line_start, line_end
        for sep_start, sep_end in seps:
            if sep_end <= start:
                cell_start = sep_end
            elif sep_start >= end:
                cell_end = sep_start
                break
        return cell_start, cell_end

    def _judge(self, lo: int, hi: int) -> tuple[bool, int]:
        text, starts, ends = self.text, self.starts, self.ends
        first, last = bisect_left(starts, lo), bisect_right(starts, hi)
        if last - first == 1 and ends[first] <= hi:
            # One indicator (most list lines): the same verdict without the general walk.
            start, end = starts[first], ends[first]
            if start == lo and end == hi:
                return True, self.hashes[first]  # the indicator alone: no words
            if start - lo + hi - end > 200:
                return False, self.hashes[first]
            # The words before it and after it (``_few_words`` on the two pieces joined by a
            # blank). ASCII pieces are lowercased whole first: that changes no match of
            # ``_WORD``, and the words are then counted at C level.
            before, after = text[lo:start], text[end:hi]
            if before.isascii() and after.isascii():
                found = _WORD.findall(f"{before} {after}".lower())
                few = len(found) <= 3 or len(found) - sum(map(_IS_LABEL, found)) <= 3
                return few, self.hashes[first]
            words = 0
            for w in chain(_WORD.finditer(text, lo, start), _WORD.finditer(text, end, hi)):
                if w.group().lower() not in LABEL_WORDS:
                    words += 1
                    if words > 3:
                        return False, self.hashes[first]
            return True, self.hashes[first]
        pieces: list[str] = []
        pos, count, hashes = lo, 0, 0
        is_hash = self.hashes
        for k in range(first, last):
            end = ends[k]
            if end > hi:
                continue
            count += 1
            hashes += is_hash[k]
            if starts[k] > pos:
                pieces.append(text[pos : starts[k]])
            if end > pos:
                pos = end
        pieces.append(text[pos:hi])
        if count < 3 and sum(map(len, pieces)) > 200:
            return False, hashes  # that much text around one or two indicators is prose
        # Listed when the words (labels aside) number at most 3, or, with at least 3
        # indicators, no more than the indicators: at most max(3, count) words. Counting
        # stops at the first word past that limit.
        return self._few_words(" ".join(pieces), count if count > 3 else 3), hashes

    @staticmethod
    def _few_words(rest: str, limit: int) -> bool:
        """At most ``limit`` words in ``rest`` besides labels; counting stops past it."""
        if rest.isspace():
            return True
        words = 0
        for w in _WORD.finditer(rest):
            if w.group().lower() not in LABEL_WORDS:
                words += 1
                if words > limit:
                    return False
        return True

    def is_list(self, start: int, end: int, is_hash: bool = False) -> bool:
        """True when ``[start, end)`` lies on an IOC list line or table cell."""
        # The line's start, looked for at most ``_LONG_LINE`` characters back: not found
        # there, the line is too long to judge. No list of every newline is built, so a
        # text with few indicators costs a few searches, not a pass over its lines.
        lo = start - _LONG_LINE - 1
        if lo > 0:
            i = self.text.rfind("\n", lo, start) + 1
            if not i:
                return False
        else:
            i = self.text.rfind("\n", 0, start) + 1
        verdict = self.line_verdicts.get(i)  # a line without cells is one unit
        if verdict is None:
            line = self.lines.get(i)
            if line is None:
                line = self.lines[i] = self._line(i, start)
            line_start, line_end, seps = line
            if line_end < 0:
                return False
            if seps:
                line_start, line_end = self._cell(start, end, line_start, line_end, seps)
                unit = line_start, line_end
                verdict = self.cache.get(unit)
                if verdict is None:
                    verdict = self.cache[unit] = self._judge(line_start, line_end)
            else:
                verdict = self.line_verdicts[i] = self._judge(line_start, line_end)
        return verdict[0] or (is_hash and verdict[1] >= 2)
