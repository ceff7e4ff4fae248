"""Undo the common ways analysts "defang" indicators, keeping a map back to the original text.

Handled forms: ``hxxp``/``hXXp``/``hxxps``/``fxp`` schemes, ``[:]``, ``(:)``, ``[://]``,
``[/]``, ``[.]``, ``(.)``, ``{.}``, ``[dot]``, ``(dot)``, ``\\.``, ``[at]``, ``(at)``,
``[@]``, and `` dot `` between labels. A lowercase `` dot `` is only refanged inside a
token that already shows another defang mark (``hxxp://evil dot com``,
``info[at]evil dot com``); the uppercase `` DOT `` is always refanged. Prose such as
"the red dot in" is left alone.

The whole text is rewritten in one regex pass; every replacement is recorded so that a
span of the fanged text can be mapped back to the original (for context) and so that
one can tell whether a span contained a defang mark.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

__all__ = ["Refanged", "refang", "refang_token"]

_SCHEME_END = r"(?=:|\[:\]|\(:\)|\{:\}|\[://\])"
# Every alternative starts with one trigger character so the regex engine can skip
# ahead quickly; conditions on the characters before a mark are checked in Python.
_MARKERS = re.compile(
    r"""
    [\[({\\hHfFdD](?:
        (?<=[hH])(?<![A-Za-z][hH])(?P<http>[xX]{2}[pP])(?P<s>[sS]?)"""
    + _SCHEME_END
    + r"""
      | (?<=[fF])(?<![A-Za-z][fF])(?P<ftp>[xX][pP])(?P<fs>[sS]?)"""
    + _SCHEME_END
    + r"""
      | (?<=\[)(?P<sep>://\])
      | (?<=[\[({])(?P<colon>:[\])}])
      | (?<=\[)(?P<slash>/\])
      | (?<=\\)(?P<bsdot>\.)(?=[A-Za-z0-9-])
      | (?<=[\[({])(?P<dot>\s?(?i:\.|dot)\s?[\])}])\x20?(?=[A-Za-z0-9-])
      | (?<=[\[({])(?P<at>\s?(?i:at|@)\s?[\])}])\x20?(?=[A-Za-z0-9])
      | (?<=\x20[dD])(?P<word>ot|OT)\x20(?=[A-Za-z0-9])
    )""",
    re.VERBOSE,
)
# The same alternatives with a narrower first character, chosen by which letter-led marks
# the text can hold ("xxp"/"fxp" for the schemes, " dot " for the word): the scan then
# does not stop at every "h", "f" or "d" for alternatives that cannot match.
_MARKER_HEAD = r"[\[({\\hHfFdD](?:"


def _variant(letters: str) -> re.Pattern[str]:
    return re.compile(
        _MARKERS.pattern.replace(_MARKER_HEAD, rf"[\[({{\\{letters}](?:", 1), re.VERBOSE
    )


_MARKER_VARIANTS = {
    (False, False): _variant(""),
    (True, False): _variant("hHfF"),
    (False, True): _variant("dD"),
    (True, True): _MARKERS,
}


_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_LOCAL_CHARS = _LABEL_CHARS | frozenset("._%+")
_CHAIN_HEAD = re.compile(r"(\S+)(?: (?:dot|DOT) [A-Za-z0-9-]+)*\Z")
_HEAD_MARK = re.compile(r"(?i)://|\[:\]|\[\.\]|\(\.\)|\[dot\]|\(dot\)|\[at\]|\(at\)|\[@\]|@|hxxp")
_FIXED = {"sep": "://", "colon": ":", "slash": "/"}


@dataclass(slots=True)
class Refanged:
    """The fanged text plus the replacements made, in fanged and original coordinates."""

    text: str
    new_starts: list[int] = field(default_factory=list)
    new_ends: list[int] = field(default_factory=list)
    orig_starts: list[int] = field(default_factory=list)
    orig_ends: list[int] = field(default_factory=list)

    def orig_start(self, pos: int) -> int:
        """Map a start offset in the fanged text to the original text."""
        i = bisect_right(self.new_starts, pos) - 1
        if i < 0:
            return pos
        if pos < self.new_ends[i]:
            return self.orig_starts[i]
        return self.orig_ends[i] + pos - self.new_ends[i]

    def orig_end(self, pos: int) -> int:
        """Map an exclusive end offset in the fanged text to the original text."""
        i = bisect_left(self.new_starts, pos) - 1
        if i < 0:
            return pos
        if pos <= self.new_ends[i]:
            return self.orig_ends[i]
        return self.orig_ends[i] + pos - self.new_ends[i]

    def defanged(self, start: int, end: int) -> bool:
        """True when the fanged span ``[start, end)`` contains a refanged mark."""
        i = bisect_left(self.new_starts, end) - 1
        return i >= 0 and self.new_ends[i] > start


def _word_dot_ok(text: str, start: int) -> bool:
    word = text[start + 1 : start + 4]
    if word == "DOT":
        return True
    if word != "dot":
        return False
    head = _CHAIN_HEAD.search(text, max(0, start - 256), start)
    return bool(head and _HEAD_MARK.search(head.group(1)))


def _after_label(text: str, start: int, last: int, allowed: frozenset[str]) -> int | None:
    """Start of a dot/at mark once the label before it is confirmed (one space allowed)."""
    if start > last and text[start - 1] in allowed:
        return start
    if start - 1 > last and text[start - 1] == " " and text[start - 2] in allowed:
        return start - 1
    return None


def _replacement(m: re.Match[str], last: int) -> tuple[int, str] | None:
    """Return (original start, replacement) for a marker match, or None to keep it."""
    text, start = m.string, m.start()
    kind = m.lastgroup
    if m.group("http") or m.group("ftp"):
        base = "http" if m.group("http") else "ftp"
        return start, base + (m.group("s") or m.group("fs") or "").lower()
    if kind in _FIXED:
        return start, _FIXED[kind]
    if kind == "bsdot" or kind == "dot":
        begin = _after_label(text, start, last, _LABEL_CHARS)
        if kind == "bsdot" and begin != start:
            return None
        return None if begin is None else (begin, ".")
    if kind == "at":
        begin = _after_label(text, start, last, _LOCAL_CHARS)
        return None if begin is None else (begin, "@")
    if kind == "word" and start - 2 >= last and text[start - 2] in _LABEL_CHARS:
        return (start - 1, ".") if _word_dot_ok(text, start - 1) else None
    return None


def refang(text: str) -> Refanged:
    """Return ``text`` with defang marks undone, plus the offset map."""
    out = Refanged(text="")
    pieces: list[str] = []
    last = 0
    new_pos = 0
    lowered = text.lower()
    scheme = "xxp" in lowered or "fxp" in lowered
    markers = _MARKER_VARIANTS[scheme, " dot " in lowered]
    for m in markers.finditer(text):
        found = _replacement(m, last)
        if found is None:
            continue
        start, repl = found
        end = m.end()
        pieces.append(text[last:start])
        new_pos += start - last
        pieces.append(repl)
        out.new_starts.append(new_pos)
        out.orig_starts.append(start)
        new_pos += len(repl)
        out.new_ends.append(new_pos)
        out.orig_ends.append(end)
        last = end
    if not out.new_starts:
        out.text = text
        return out
    pieces.append(text[last:])
    out.text = "".join(pieces)
    return out


def refang_token(value: str) -> str:
    """Refang a single token (convenience for callers outside the extractor)."""
    return refang(value).text
