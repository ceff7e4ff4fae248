"""Context sentences and IOC-list detection for extracted indicators."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right

__all__ = ["CONTEXT_LIMIT", "LABEL_WORDS", "ListDetector", "SentenceContexts", "sentence_context"]

CONTEXT_LIMIT = 300
_WINDOW = 2 * CONTEXT_LIMIT
_LONG_LINE = 4000
_SENT_END = re.compile(r"[.!?]+[\s]+(?=[A-Z])")
_WS = re.compile(r"\s+")
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


def _collapse(value: str) -> str:
    # Every character ``\s`` matches, except the ASCII space, is non-printable, so a
    # printable value without a double space has nothing to collapse.
    if value.isprintable() and "  " not in value:
        return value
    return _WS.sub(" ", value)


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo = max(0, start - _WINDOW)
    nl = text.rfind("\n", lo, start)
    seg_start = nl + 1 if nl != -1 else lo
    for m in _SENT_END.finditer(text, seg_start, min(len(text), start + 1)):
        seg_start = m.end()
    return seg_start, _sentence_end(text, end)


def _sentence_end(text: str, end: int) -> int:
    hi = min(len(text), end + _WINDOW)
    nl = text.find("\n", end, hi)
    seg_end = nl if nl != -1 else hi
    m = _SENT_END.search(text, end, seg_end)
    if m:
        seg_end = m.start() + 1
    return seg_end


def _fit(text: str, start: int, end: int, seg_start: int, seg_end: int) -> str:
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

    def _scan(self) -> None:
        for m in _SENT_END.finditer(self.text):
            self.starts.append(m.start())
            self.ends.append(m.end())
        self.scanned = True

    def _end(self, end: int) -> int:
        text = self.text
        hi = min(len(text), end + _WINDOW)
        nl = text.find("\n", end, hi)
        seg_end = nl if nl != -1 else hi
        i = bisect_right(self.starts, end)
        if i and self.ends[i - 1] > end:
            return _sentence_end(text, end)  # a sentence end straddles the span's end
        # The first sentence end at or after ``end`` counts when its look-ahead character
        # lies inside the window, as it must for the per-span search.
        if i < len(self.starts) and self.ends[i] < seg_end:
            return self.starts[i] + 1
        return seg_end

    def __call__(self, start: int, end: int) -> str:
        """The same string as ``sentence_context(text, start, end)``."""
        text = self.text
        if not self.scanned:
            self._scan()
        lo = max(0, start - _WINDOW)
        nl = text.rfind("\n", lo, start)
        seg_start = nl + 1 if nl != -1 else lo
        i = bisect_right(self.ends, start) - 1
        if i >= 0 and self.ends[i] > seg_start:
            seg_start = self.ends[i]
        return _fit(text, start, end, seg_start, self._end(end))


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
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        ordered = sorted(spans)
        self.starts = [s for s, _, _ in ordered]
        self.ends = [e for _, e, _ in ordered]
        self.hashes = [h for _, _, h in ordered]
        self.cache: dict[tuple[int, int], tuple[bool, int]] = {}
        self.lines: dict[int, tuple[int, int, bool]] = {}

    def _line(self, start: int) -> tuple[int, int, bool]:
        i = bisect_left(self.newlines, start)
        if i not in self.lines:
            line_start = self.newlines[i - 1] + 1 if i else 0
            line_end = self.newlines[i] if i < len(self.newlines) else len(self.text)
            too_long = line_end - line_start > _LONG_LINE
            cells = not too_long and bool(_CELL_SEP.search(self.text, line_start, line_end))
            self.lines[i] = (line_start, -1 if too_long else line_end, cells)
        return self.lines[i]

    def _unit(self, start: int, end: int) -> tuple[int, int] | None:
        line_start, line_end, cells = self._line(start)
        if line_end < 0:
            return None
        if not cells:
            return line_start, line_end
        cell_start, cell_end = line_start, line_end
        for m in _CELL_SEP.finditer(self.text, line_start, line_end):
            if m.end() <= start:
                cell_start = m.end()
            elif m.start() >= end:
                cell_end = m.start()
                break
        return cell_start, cell_end

    def _judge(self, lo: int, hi: int) -> tuple[bool, int]:
        pieces, pos, count, hashes = [], lo, 0, 0
        for k in range(bisect_left(self.starts, lo), bisect_right(self.starts, hi)):
            if self.ends[k] > hi:
                continue
            count += 1
            hashes += self.hashes[k]
            pieces.append(self.text[pos : max(pos, self.starts[k])])
            pos = max(pos, self.ends[k])
        pieces.append(self.text[pos:hi])
        if count < 3 and sum(map(len, pieces)) > 200:
            return False, hashes  # that much text around one or two indicators is prose
        words = sum(1 for w in _WORD.findall(" ".join(pieces)) if w.lower() not in LABEL_WORDS)
        return words <= 3 or (count >= 3 and count >= words), hashes

    def is_list(self, start: int, end: int, *, is_hash: bool = False) -> bool:
        """True when ``[start, end)`` lies on an IOC list line or table cell."""
        unit = self._unit(start, end)
        if unit is None:
            return False
        if unit not in self.cache:
            self.cache[unit] = self._judge(*unit)
        listed, hashes = self.cache[unit]
        return listed or (is_hash and hashes >= 2)
