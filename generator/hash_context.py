"""Tell file hashes from other hex strings of hash length by how the text presents them.

32, 40, 64 and 128 hex digits are also password hashes (LM/NT), DPAPI master keys and
``NL$KM`` secrets, encryption keys, campaign and bot ids, mutex names, session tokens, CTF
flags, hex-encoded text and made-up placeholders. A hex string is taken as a file hash
unless the text says otherwise:

- the nearest label before it, in its clause, names a secret rather than a hash
  (``key :``, ``bot_key =``, ``HMAC:``, ``NL$KM:``, ``flag{``, ``NT hash``, ``token``),
  while ``SHA256:``, ``MD5``, ``hash``, ``sample`` and a tool's ``sha256sum`` output keep it;
- it sits between colons, as in a ``user:rid:lmhash:nthash:::`` credential dump;
- its bytes are printable text (hex-encoded ASCII) or it repeats a shorter unit.
"""

from __future__ import annotations

import re

__all__ = ["presented_as_secret"]

_LABELS = re.compile(
    r"(?i)(?<![A-Za-z])(?:"
    r"(?P<hash>md5|sha-?1|sha-?2|sha-?256|sha-?384|sha-?512|sha\d*sum|md5sum|hash(?:es)?"
    r"|checksums?|digests?|samples?|imphash|fingerprints?|files?)"
    r"|(?P<secret>(?:nt|ntlm|lm|password)\s+hash(?:es)?|keys?|secrets?|passwords?|passwd|pass"
    r"|tokens?|sessions?|ids?|guids?|uuids?|mutex(?:es)?|hmac|aes(?:-\d+)?|rc4|xor|iv|salt"
    r"|nonce|seed|serial|campaign|bots?|masterkey|nl\$km|flag|cookies?|licen[cs]e|nthash"
    r"|lmhash|bootkey))"
    r"(?![A-Za-z])"
)
_CLAUSE_END = re.compile(r"[.!?]\s|\n\s*\n")
_WINDOW = 60


def presented_as_secret(text: str, start: int, end: int) -> bool:
    """True when the hex string ``text[start:end]`` is not presented as a file hash."""
    value = text[start:end]
    if _hex_text(value) or _periodic(value):
        return True
    if start and text[start - 1] == ":" and text[end : end + 1] == ":":
        return True  # user:rid:lmhash:nthash:::
    lo = _clause_start(text, start)
    labels = [m.lastgroup for m in _LABELS.finditer(text, lo, start)]
    return bool(labels) and labels[-1] == "secret"


def _clause_start(text: str, start: int) -> int:
    """Where the label search begins: the clause start, at most ``_WINDOW`` characters back.

    Wrapped prose carries a clause over a line break; a table row or a line of cells does
    not (its labels belong to the row above's columns, not to this value).
    """
    lo = max(0, start - _WINDOW)
    for m in _CLAUSE_END.finditer(text, lo, start):
        lo = m.end()
    line_start = text.rfind("\n", lo, start) + 1
    if line_start:
        previous = text[text.rfind("\n", max(0, line_start - 400), line_start - 1) + 1 : line_start]
        if "|" in previous or "\t" in previous:
            return line_start
    return lo


def _hex_text(value: str) -> bool:
    """Hex-encoded printable ASCII (``68747470733a2f2f…`` is ``https://…``)."""
    data = bytes.fromhex(value)
    return all(0x20 <= b < 0x7F for b in data)


def _periodic(value: str) -> bool:
    """A shorter unit repeated: ``0123456789abcdef`` twice, ``deadbeef`` four times."""
    size = len(value)
    return any(
        size % unit == 0 and value == value[:unit] * (size // unit)
        for unit in (1, 2, 4, 8, 16, 32)
        if unit < size
    )
