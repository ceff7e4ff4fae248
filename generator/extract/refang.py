"""Undo the common ways analysts "defang" indicators, keeping a map back to the original text.

Handled forms: ``hxxp``/``hXXp``/``hxxps``/``fxp`` schemes, ``[:]``, ``(:)``, ``[://]``,
``[/]``, ``[.]``, ``(.)``, ``{.}``, ``[dot]``, ``(dot)``, ``\\.``, ``[at]``, ``(at)``,
``[@]``, and `` dot `` between labels. A lowercase `` dot `` is only refanged inside a
token that already shows another defang mark (``hxxp://evil dot com``,
``info[at]evil dot com``); the uppercase `` DOT `` is always refanged. Prose such as
"the red dot in" is left alone.

The marks are found by one regex (one scan per trigger character the text holds) and
the whole text is rewritten in one pass; every replacement is recorded so that a span of
the fanged text can be mapped back to the original (for context) and so that one can
tell whether a span contained a defang mark.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import methodcaller
from typing import cast

__all__ = ["Refanged", "refang", "refang_token"]

_SCHEME_END = r"(?=:|\[:\]|\(:\)|\{:\}|\[://\])"
# Every alternative starts with one trigger character so the regex engine can skip
# ahead quickly; conditions on the characters before a mark are checked in Python. The
# defanged schemes are matched from their first "x" (rare in prose, unlike "h" or "f"),
# the letter before it by look-behind: such a match starts one character after its mark.
# (the trigger characters an alternative can follow, the alternative)
_ALTERNATIVES = (
    ("xX", r"(?<=[hH][xX])(?<![A-Za-z][hH][xX])(?P<http>[xX][pP])(?P<s>[sS]?)" + _SCHEME_END),
    ("xX", r"(?<=[fF][xX])(?<![A-Za-z][fF][xX])(?P<ftp>[pP])(?P<fs>[sS]?)" + _SCHEME_END),
    ("[", r"(?<=\[)(?P<sep>://\])"),
    ("[({", r"(?<=[\[({])(?P<colon>:[\])}])"),
    ("[", r"(?<=\[)(?P<slash>/\])"),
    ("\\", r"(?<=\\)(?P<bsdot>\.)(?=[A-Za-z0-9-])"),
    ("[({", r"(?<=[\[({])(?P<dot>\s?(?i:\.|dot)\s?[\])}])\x20?(?=[A-Za-z0-9-])"),
    ("[({", r"(?<=[\[({])(?P<at>\s?(?i:at|@)\s?[\])}])\x20?(?=[A-Za-z0-9])"),
    ("dD", r"(?<=\x20[dD])(?P<word>ot|OT)\x20(?=[A-Za-z0-9])"),
)
_MARKERS = re.compile(r"[\[({\\xXdD](?:" + "|".join(alt for _, alt in _ALTERNATIVES) + ")")
# The same alternatives led by one literal trigger character each, which the regex engine
# finds much faster than a character class, and holding only the alternatives whose
# look-behind accepts that character. A text is scanned for the triggers it holds; the
# letters only when a letter-led mark can occur ("xxp"/"fxp" for the schemes, " dot " for
# the word), since "x" and "d" are common in prose.
_MARKERS_LED_BY = {
    char: re.compile(
        re.escape(char)
        + "(?:"
        + "|".join(alt for chars, alt in _ALTERNATIVES if char in chars)
        + ")"
    )
    for char in "[({\\xXdD"
}
_START = methodcaller("start")


def _marker_matches(text: str) -> Iterable[re.Match[str]]:
    """The matches of the trigger-led patterns for ``text``, ordered by start.

    No two of them start at one position (their first characters differ), so when no two
    overlap they are exactly the matches of ``_MARKERS.finditer(text)``; ``refang`` checks.
    """
    lowered = text.lower()
    triggers = "[({\\"
    if "xxp" in lowered or "fxp" in lowered:
        triggers += "xX"
    if " DOT " in text:
        triggers += "D"
    if " dot " in text and _HEAD_MARK.search(text):
        # A lowercase " dot " counts only after a token with a mark from _HEAD_MARK.
        triggers += "d"
    patterns = [_MARKERS_LED_BY[char] for char in triggers if char in text]
    if len(patterns) == 1:
        return patterns[0].finditer(text)  # streamed: no list of every match at once
    matches = [m for pattern in patterns for m in pattern.finditer(text)]
    matches.sort(key=_START)
    return matches


_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_LOCAL_CHARS = _LABEL_CHARS | frozenset("._%+")
# A `` dot `` chain is a token followed by `` dot label`` pieces; its head is that token.
_CHAIN_WINDOW = 256  # how far back from a piece the token before it is looked for
_DOT_WORDS = (" dot ", " DOT ")
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

    def orig_span(self, start: int, end: int) -> tuple[int, int]:
        """``(orig_start(start), orig_end(end))`` in one call."""
        new_starts, new_ends, orig_ends = self.new_starts, self.new_ends, self.orig_ends
        i = bisect_right(new_starts, start) - 1
        if i < 0:
            first = start
        elif start < new_ends[i]:
            first = self.orig_starts[i]
        else:
            first = orig_ends[i] + start - new_ends[i]
        i = bisect_left(new_starts, end) - 1
        if i < 0:
            return first, end
        if end <= new_ends[i]:
            return first, orig_ends[i]
        return first, orig_ends[i] + end - new_ends[i]

    def defanged(self, start: int, end: int) -> bool:
        """True when the fanged span ``[start, end)`` contains a refanged mark."""
        new_starts = self.new_starts
        if not new_starts:
            return False  # nothing was refanged (most texts)
        i = bisect_left(new_starts, end) - 1
        return i >= 0 and self.new_ends[i] > start


def _head_marked(text: str, space: int, heads: dict[int, bool]) -> bool:
    """True when the head of the `` dot `` chain ending at ``space`` shows a defang mark.

    ``space`` is the position of the space before a ``dot``/``DOT`` word. The token before
    it (whitespace-free, at most ``_CHAIN_WINDOW`` characters) is the head unless it is a
    label that another `` dot ``/`` DOT `` piece precedes; then the chain goes on leftwards.
    ``heads`` keeps the verdict for every chain end already seen, so that each piece of a
    long chain is walked once, not once per `` dot `` after it (which was quadratic).
    """
    known = heads.get(space)
    if known is not None:
        return known
    pending = [space]
    while True:
        lo = space - _CHAIN_WINDOW if space > _CHAIN_WINDOW else 0
        begin = text.rfind(" ", lo, space) + 1 or lo
        token = text[begin:space]
        is_label = _LABEL_CHARS.issuperset(token)
        if not is_label:  # then it may hold other whitespace
            token = token.rsplit(None, 1)[-1] if token and not token[-1].isspace() else ""
            begin = space - len(token)
            is_label = _LABEL_CHARS.issuperset(token)
        if (
            is_label
            and token
            and begin > 5
            and text[begin - 5 : begin] in _DOT_WORDS
            and not text[begin - 6].isspace()
        ):
            space = begin - 5  # a piece of the chain: its head is the chain's head
            known = heads.get(space)
            if known is not None:
                break
            pending.append(space)
            continue
        known = bool(token) and _HEAD_MARK.search(token) is not None
        break
    for end in pending:
        heads[end] = known
    return known


def _after_label(text: str, start: int, last: int, allowed: frozenset[str]) -> int | None:
    """Start of a dot/at mark once the label before it is confirmed (one space allowed)."""
    if start > last and text[start - 1] in allowed:
        return start
    if start - 1 > last and text[start - 1] == " " and text[start - 2] in allowed:
        return start - 1
    return None


def _replacement(
    m: re.Match[str], start: int, last: int, heads: dict[int, bool]
) -> tuple[int, str] | None:
    """Return (original start, replacement) for a marker match starting at ``start``, or
    None to keep it.

    ``heads`` caches ``_head_marked`` verdicts for the text being refanged.
    """
    text = m.string
    # The alternatives are exclusive, so the last group a match closed tells which one
    # matched: a scheme's always closes its (possibly empty) "s" group.
    kind = m.lastgroup
    if kind == "dot":
        begin = _after_label(text, start, last, _LABEL_CHARS)
        return None if begin is None else (begin, ".")
    if kind == "word":
        if start - 2 < last or text[start - 2] not in _LABEL_CHARS:
            return None
        word = text[start : start + 3]  # the match starts on the "d" after the space
        if word == "DOT" or (word == "dot" and _head_marked(text, start - 1, heads)):
            return start - 1, "."
        return None
    if kind == "s" or kind == "fs":
        base = "http" if kind == "s" else "ftp"
        # The mark starts on the letter before the match; no match ends on that letter.
        return start - 1, base + m.group(kind).lower()
    if kind in _FIXED:
        return start, _FIXED[kind]
    if kind == "bsdot":  # only right after a label: "evil\.com"
        return (start, ".") if start > last and text[start - 1] in _LABEL_CHARS else None
    if kind == "at":
        begin = _after_label(text, start, last, _LOCAL_CHARS)
        return None if begin is None else (begin, "@")
    return None


def refang(text: str) -> Refanged:
    """Return ``text`` with defang marks undone, plus the offset map."""
    out = _refang(text, _marker_matches(text))
    # Overlapping matches of different triggers: the one alternation decides which counts.
    # The matches of one alternation never overlap, so this second pass never returns None.
    return out if out is not None else cast(Refanged, _refang(text, _MARKERS.finditer(text)))


def _refang(text: str, matches: Iterable[re.Match[str]]) -> Refanged | None:
    """Apply the marker ``matches`` in order; None when two of them overlap."""
    out = Refanged(text="")
    pieces: list[str] = []
    new_starts, new_ends = out.new_starts, out.new_ends
    orig_starts, orig_ends = out.orig_starts, out.orig_ends
    last = 0
    new_pos = 0
    scanned = 0  # end of the previous match
    heads: dict[int, bool] = {}
    add_new_start, add_new_end = new_starts.append, new_ends.append
    add_orig_start, add_orig_end = orig_starts.append, orig_ends.append
    for m in matches:
        start, end = m.span()
        if start < scanned:
            return None
        scanned = end
        if m.lastgroup == "dot":  # the commonest mark: ``_replacement`` inlined
            if start > last and text[start - 1] in _LABEL_CHARS:
                pass
            elif start - 1 > last and text[start - 1] == " " and text[start - 2] in _LABEL_CHARS:
                start -= 1
            else:
                continue
            repl = "."
        else:
            found = _replacement(m, start, last, heads)
            if found is None:
                continue
            start, repl = found
        pieces += (text[last:start], repl)
        new_pos += start - last
        add_new_start(new_pos)
        add_orig_start(start)
        new_pos += len(repl)
        add_new_end(new_pos)
        add_orig_end(end)
        last = end
    if not new_starts:
        out.text = text
        return out
    pieces.append(text[last:])
    out.text = "".join(pieces)
    return out


def refang_token(value: str) -> str:
    """Refang a single token (convenience for callers outside the extractor)."""
    return refang(value).text
