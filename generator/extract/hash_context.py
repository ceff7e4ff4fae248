"""Tell file hashes from other hex strings of hash length by how the text presents them.

32, 40, 64 and 128 hex digits are also password hashes (LM/NT), DPAPI master keys and
``NL$KM`` secrets, encryption keys, campaign and bot ids, mutex names, session tokens, CTF
flags, hex-encoded text and made-up placeholders. A hex string is taken as a file hash
unless the text says otherwise:

- the nearest label word before it, in its clause, names a secret rather than a hash
  (``key :``, ``bot_key =``, ``HMAC:``, ``NL$KM:``, ``flag{``, ``NT hash``, ``token``),
  while ``SHA256:``, ``MD5``, ``hash``, ``sample`` and a tool's ``sha256sum`` output keep it;
- it sits between colons, as in a ``user:rid:lmhash:nthash:::`` credential dump;
- its bytes are printable text (hex-encoded ASCII) or it repeats a shorter unit;
- it is a segment of a URL's path or a query value, and the segment or key before it does
  not name a hash (``/file/<sha256>``, ``/sample/``, ``?resource=``, ``?hash=`` do): an
  exploit kit's ``/6ktpi5xo/<64 hex>`` is a token, not a file's hash.
"""

from __future__ import annotations

import re
from bisect import bisect_right

__all__ = ["ToolOutput", "presented_as_secret"]

# Words that name what a hex string is (lowercase; a number may follow after a hyphen).
_HASH_WORDS = frozenset(
    {
        "md5", "md5sum", "sha", "sha1", "sha-1", "sha2", "sha-2", "sha256", "sha-256", "sha384",
        "sha-384", "sha512", "sha-512", "sha1sum", "sha256sum", "sha512sum", "hash", "hashes",
        "checksum", "checksums", "digest", "digests", "sample", "samples", "imphash",
        "fingerprint", "fingerprints", "file", "files",
    }
)  # fmt: skip
_SECRET_WORDS = frozenset(
    {
        "key", "keys", "secret", "secrets", "password", "passwords", "passwd", "pass", "token",
        "tokens", "session", "sessions", "id", "ids", "guid", "guids", "uuid", "uuids", "mutex",
        "mutexes", "hmac", "aes", "rc4", "xor", "iv", "salt", "nonce", "seed", "serial",
        "campaign", "bot", "bots", "masterkey", "nl$km", "flag", "cookie", "cookies", "license",
        "licence", "nthash", "lmhash", "bootkey",
    }
)  # fmt: skip
# Path segments and query keys that present the hex value after them as a hash.
_URL_HASH_KEYS = _HASH_WORDS | {"resource", "query", "q", "search", "s", "h", "ioc", "indicator"}
_URL_SEGMENT = re.compile(r"([A-Za-z0-9_.%-]{0,40})(?:%3a)?[/=:]\Z", re.IGNORECASE)
_URL_REACH = 2048
_LABEL_KIND = {**dict.fromkeys(_SECRET_WORDS, "secret"), **dict.fromkeys(_HASH_WORDS, "hash")}
# "NT hash", "LM hash", "password hash": a hash of a password, not of a file.
_CREDENTIAL_QUALIFIERS = frozenset({"nt", "ntlm", "lm", "password"})
_WORD = re.compile(r"[a-z$]+(?:-?[0-9]+)?[a-z]*")
_PRINTABLE = bytes(range(0x20, 0x7F))
_CLAUSE_END = re.compile(r"[.!?]\s|\n\s*\n")
_WINDOW = 48
# A credential dumper's command or output header: a ``mimikatz #`` prompt, a
# ``module::command`` of its credential modules, or the headers of its DPAPI output. What
# such a tool prints as hex is key material and password hashes, never a file's hash.
_CREDENTIAL_TOOL = re.compile(
    r"(?i)mimikatz\s*(?:#|\(commandline\))|\b(?:sekurlsa|lsadump|dpapi|kerberos|vault|crypto)::\w"
    r"|\*\*(?:masterkeys?|domainkey|credhist info|credential)\*\*|\[(?:masterkey|domainkey|backupkey)\]"
)
_TOOL_WINDOW = 1500
_TOOL_MARKS = ("::", "mimikatz", "**", "key]")


def presented_as_secret(text: str, start: int, end: int, tools: ToolOutput | None = None) -> bool:
    """True when the hex string ``text[start:end]`` is not presented as a file hash.

    ``tools`` is ``ToolOutput(text)``, to be shared by the calls on one text.
    """
    value = text[start:end]
    # ``_hex_text(value)`` and ``_periodic(value)``, inlined (this runs for every hash).
    if not bytes.fromhex(value).translate(None, _PRINTABLE):
        return True  # hex-encoded printable text
    if (value + value).find(value, 1) < len(value):
        return True  # a shorter unit repeated
    if start and text[start - 1] == ":" and text[end : end + 1] == ":":
        return True  # user:rid:lmhash:nthash:::
    if (tools or ToolOutput(text)).holds(start):
        return True
    if _url_token(text, start):
        return True
    lo = max(0, start - _WINDOW)
    words = _WORD.findall(text[lo:start].lower())
    label_kind = _LABEL_KIND.get
    for i in range(len(words) - 1, -1, -1):
        word = words[i]
        kind = label_kind(word)
        if kind is None:
            if not word[-1].isdigit():
                continue
            kind = label_kind(word.rstrip("0123456789").rstrip("-"))  # aes-256
            if kind is None:
                continue
        if kind == "hash":
            qualified = i > 0 and words[i - 1] in _CREDENTIAL_QUALIFIERS
            return word.startswith("hash") and qualified and _in_clause(text, start, word)
        if kind == "secret":
            if word in ("id", "ids") and i > 0 and _LABEL_KIND.get(words[i - 1]) == "hash":
                return False  # "sample id", "file id": the sample's hash
            return _in_clause(text, start, word)
    return False


def _url_token(text: str, start: int) -> bool:
    """The hex string at ``start`` follows a path segment or query key of a URL that does
    not name a hash (the URL's host right before it does not count as a segment)."""
    if not start or text[start - 1] not in "/=:":
        return False
    lo = max(0, start - _URL_REACH)
    blank = max(text.rfind(c, lo, start) for c in " \t\r\n")
    scheme = text.find("://", max(lo, blank + 1), start)
    if scheme == -1:
        return False
    path = text.find("/", scheme + 3, start)
    if path == -1 or path == start - 1 and text.find("/", scheme + 3, start - 1) == -1:
        return False  # no path yet, or the value opens the path right after the host
    m = _URL_SEGMENT.search(text, max(scheme + 3, start - 46), start)
    segment = m.group(1).lower() if m else ""
    stem = segment.rpartition(".")[0] or segment  # sample.php: sample
    return stem not in _URL_HASH_KEYS


def _in_clause(text: str, start: int, word: str) -> bool:
    """The label ``word`` (lowercase) appears in the clause that ends at ``start``."""
    return word in text[_clause_start(text, start) : start].lower()


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
    return not bytes.fromhex(value).translate(None, _PRINTABLE)


def _periodic(value: str) -> bool:
    """A shorter unit repeated (``0123456789abcdef`` twice, ``deadbeef`` four times, one digit
    forty times): the string occurs inside itself doubled, off its own start."""
    return (value + value).find(value, 1) < len(value)


class ToolOutput:
    """Where a credential dumper's output lies in one text.

    The commands and headers that open output (``_CREDENTIAL_TOOL`` matches that open their
    line) are found once per text, and only when one of their marks occurs in it at all; a
    value is then judged by bisection instead of a scan of the 1,500 characters before it.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.ends: list[int] | None = None  # where each opening command or header ends

    def _scan(self) -> list[int]:
        """The ends of the commands and headers that open output, in order. Each is looked
        for from its literal mark (``::``, ``mimikatz``, ``**``, ``key]``) with an anchored
        match, so text without those marks costs four substring searches."""
        text = self.text
        ends: set[int] = set()
        for mark in _TOOL_MARKS:
            pos = text.find(mark)
            while pos != -1:
                if mark == "::":  # the module name before it: sekurlsa::, dpapi::, ...
                    begin = pos
                    while begin > pos - 10 and begin and text[begin - 1].isalpha():
                        begin -= 1
                elif mark == "key]":
                    begin = text.rfind("[", max(0, pos - 10), pos)
                else:
                    begin = pos
                m = _CREDENTIAL_TOOL.match(text, begin) if begin >= 0 else None
                if m and self._opens_line(m.start()):
                    ends.add(m.end())
                pos = text.find(mark, pos + len(mark))
        return sorted(ends)

    def _opens_line(self, start: int) -> bool:
        """A command or header opens its line (after a prompt such as ``mimikatz #``); one
        named in a sentence is prose about the tool."""
        text = self.text
        line_start = text.rfind("\n", max(0, start - 200), start) + 1
        if not line_start and start > 200:
            return False
        head = text[line_start:start].strip()
        return not head or head.endswith(("#", ">", "$"))

    def holds(self, start: int) -> bool:
        """The value at ``start`` sits on an indented line of a credential dumper's output:
        below its command or an output header, within ``_TOOL_WINDOW`` characters, with no
        line of prose in between (``key :`` and ``sha1:`` under a ``dpapi::masterkey``,
        ``* sha1(key)`` in ``sekurlsa::dpapi``)."""
        if self.ends is None:
            self.ends = self._scan()
        if not self.ends:
            return False  # the common case: no such tool in the text
        text = self.text
        line_start = text.rfind("\n", max(0, start - 400), start) + 1
        if line_start == 0 and start > 400:
            return False
        if text[line_start : line_start + 1] not in (" ", "\t", "*"):
            return False  # tool output is indented; an IOC list's ``SHA1:`` line is not
        i = bisect_right(self.ends, line_start) - 1
        if i < 0 or self.ends[i] < line_start - _TOOL_WINDOW:
            return False
        # A line of prose ends the tool's output: one that starts at the margin with a letter
        # and holds five or more words, none of them a ``label :`` column.
        for line in text[self.ends[i] : line_start].split("\n")[1:]:
            if (
                line[:1].isalpha()
                and len(line.split()) >= 5
                and " :" not in line
                and ":\t" not in line
            ):
                return False
        return True
