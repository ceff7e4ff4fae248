"""Tag articles with well-known malware families and threat actors.

The names come from ``generator/data/families.txt``: one entry a line, the canonical
tag first, then optional aliases, all separated by ``|``; ``#`` starts a comment.
Matching is whole-word and case-insensitive, and a space, ``-`` or ``_`` inside a
name matches any run of those characters ("cobalt strike" = "Cobalt-Strike").
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

__all__ = ["find_tags", "load_families"]

_SEP = re.compile(r"[\s_-]+")


def _norm(name: str) -> str:
    return _SEP.sub(" ", name.strip().lower())


def load_families(text: str | None = None) -> dict[str, str]:
    """Map each normalised name and alias to its canonical tag."""
    if text is None:
        text = resources.files("generator").joinpath("data/families.txt").read_text("utf-8")
    names: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p for p in (_norm(x) for x in line.split("|")) if p]
        canonical = parts[0].replace(" ", "-")
        for name in parts:
            names.setdefault(name, canonical)
    return names


_END = ""


def _token(ch: str) -> str:
    return r"[\s_-]+" if ch == " " else re.escape(ch)


def _trie_regex(node: dict) -> str:
    """Regex for a character trie: one branch per next character, so it stays fast."""
    alts = [_token(ch) + _trie_regex(child) for ch, child in sorted(node.items()) if ch != _END]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if _END in node else body


@lru_cache(maxsize=1)
def _matcher() -> tuple[re.Pattern[str], dict[str, str]]:
    names = load_families()
    trie: dict = {}
    for name in names:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[_END] = {}
    pattern = re.compile(rf"(?<![\w$])(?:{_trie_regex(trie)})(?![\w$])", re.IGNORECASE)
    return pattern, names


def find_tags(text: str) -> list[str]:
    """Sorted, unique canonical tags of the families and actors named in ``text``."""
    if not text:
        return []
    pattern, names = _matcher()
    found = {names.get(_norm(m.group()), "") for m in pattern.finditer(text)}
    found.discard("")
    return sorted(found)
