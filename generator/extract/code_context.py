"""Context that marks a plain dotted token as code or a file name rather than a host.

``ADODB.Stream``, ``objShell.Run``, ``okhttp3.internal.ws`` and ``kworker.run`` end in real
top-level domains; what tells them apart from host names is how the text uses them:

- call, member, assignment and comparison syntax right after the token
  (``x.open("GET")``, ``objHTTP.open "GET"``, ``obj.Type = 1``, ``tp.Privileges[0].Luid``,
  the display filter ``tcp.stream eq 0``);
- a COM class given to ``CreateObject("…")``, ``GetObject``, ``ActiveXObject`` or
  ``New-Object -ComObject``;
- a file listing: an ``ls -l`` line, or a bare name among bare file names whose extensions
  are not top-level domains (``proxies.txt``, ``targets.csv``);
- a clause that names code (a package, module, class, library, namespace, plugin, method or
  function) with no network verb or preposition between that word and the token.

Every check looks at a bounded window around the token, so extraction stays linear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

__all__ = ["CaptureWords", "indexed_capture_field", "used_as_code"]

# A capture field with a stream or frame index in prose (``In tcp.stream 2, …``,
# ``delivered in tcp.stream 8.``): a two-label identifier, a blank, a number that closes the
# phrase, in a text that speaks of a packet capture before the token, with no network word
# or host noun right before it (``to loader.live 4,`` stays a host).
_INDEX_AFTER = re.compile(r" [0-9]{1,6}(?=[,;)]|\.(?:\s|\Z)|\s*\Z)")
_NETWORK_BEFORE = re.compile(
    r"(?i)\b(?:to|at|via|connects?|contact(?:s|ed)?|resolv\w*|beacons?|reach\w*|hosts?"
    r"|servers?|domains?)\s+\Z"
)
_CAPTURE_WORDS = re.compile(
    r"(?i)\b(?:pcap(?:ng)?s?|packets?|captures?|wireshark|tshark|tcpdump|display filters?)\b"
)

_CALL_AFTER = re.compile(
    r"""\(|\[[^\]\s]*\]\s*[.=]|\s?=(?!=)|\s*[=!]=|\s(?:eq|ne|contains|matches)\s|\s["']|->"""
)
_COM_BEFORE = re.compile(r"(?i)(?:Object\s*\(?|-ComObject)\s*[\"']?\s*\Z")
_LS_LINE = re.compile(r"[-dlcbps][rwxsStT-]{9}[.+@]?\s")
_FILE_NAME_LINE = re.compile(r"[\w-]+\.([A-Za-z0-9]{1,5})")
_CODE_WORDS = re.compile(
    r"(?i)\b(?:packages?|modules?|class(?:es)?|namespaces?|librar(?:y|ies)|plugins?"
    r"|imports?|methods?|functions?|resources?)\b"
)
# A cheap pre-test: every code word above holds one of these (lowercase) stems, tested one
# by one in ``_in_code_clause``.
_CODE_STEMS = (
    "packag", "modul", "class", "namespac", "librar", "plugin", "import", "method", "function",
    "resourc",
)  # fmt: skip
_NETWORK_WORDS = re.compile(
    r"(?i)\b(?:to|from|at|via|connects?|contacts?|resolv\w*|beacons?|reach\w*|download\w*"
    r"|fetch\w*|hosted|served)\b"
)
_CLAUSE_END = re.compile(r"[.!?]\s|\n\s*\n")
# ``module.member``: two lowercase identifier labels (``requests.post``, ``stream.read``).
_MEMBER_TOKEN = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
# A dotted code identifier in prose: identifier labels, the last at least 3 characters
# (``os.walk``, ``json.loads``, ``zipfile.ZipFile``, ``socket.create_connection``).
_CODE_IDENTIFIER = re.compile(
    r"(?<![\w.@/\\-])[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\.([A-Za-z_][A-Za-z0-9_]{2,})"
    r"(?![\w-]|\.\w)"
)
# Words after a token that present it as a host (``pkgstats.live is its beacon host``).
_HOST_NOUNS = re.compile(
    r"(?i)\b(?:hosts?|servers?|domains?|c2|c&c|cnc|panel|beacon|endpoints?|infrastructure"
    r"|sites?|websites?|address(?:es)?)\b"
)
_CLAUSE_STOP = re.compile(r"[,;]")
_DOT_LETTER = re.compile(r"\.[A-Za-z_]")
_SENTENCE_STOP = re.compile(r"[.!?](?:\s|\Z)|\n\s*\n")
_SENTENCE_WINDOW = 200
# Common file extensions that are not top-level domains: ``hook.bin`` and ``update.exe`` in a
# sentence are file names, not code.
FILE_EXTENSIONS = frozenset(
    {
        "exe", "dll", "bin", "dat", "txt", "log", "ps1", "psm1", "bat", "cmd", "vbs", "vbe",
        "js", "jse", "wsf", "hta", "lnk", "doc", "docx", "docm", "dot", "dotm", "xls", "xlsx",
        "xlsm", "ppt", "pptx", "pdf", "rtf", "iso", "img", "vhd", "vhdx", "tmp", "cfg", "conf",
        "ini", "json", "xml", "yml", "yaml", "csv", "htm", "html", "php", "asp", "aspx", "jsp",
        "sys", "scr", "msi", "msp", "jar", "war", "apk", "elf", "gz", "tgz", "tar", "rar", "bz2",
        "xz", "dmg", "pkg", "deb", "rpm", "pyw", "pyc", "whl", "egg", "dylib", "cpp", "java",
        "class", "lua", "db", "sqlite", "key", "pem", "crt", "cer", "pfx", "p12", "eml", "msg",
        "ova", "vmdk", "png", "jpg", "jpeg", "gif", "bmp", "ico", "svg", "mp3", "mp4", "wav",
        "avi", "dex", "xll", "cpl", "ocx", "drv", "inf", "reg", "url", "chm", "bak", "old",
    }
)  # fmt: skip
_CLAUSE_WINDOW = 240
_LISTING_LINES = 6


def used_as_code(text: str, start: int, end: int, is_tld: Callable[[str], bool]) -> bool:
    """True when the token ``text[start:end]`` is used as code or a file name.

    ``is_tld`` tells whether a lowercase label is a top-level domain (a file listing is
    recognised by its other names' extensions not being ones). The code-clause check
    applies to identifier-like tokens only (no hyphen).
    """
    if _CALL_AFTER.match(text, end):
        return True
    if _COM_BEFORE.search(text, max(0, start - 24), start):
        return True
    if _in_file_listing(text, start, end, is_tld):
        return True
    if "-" in text[start:end]:
        return False
    return _in_code_clause(text, start) or _in_code_sentence(text, start, end, is_tld)


class CaptureWords:
    """Where a text speaks of a packet capture; found on first use, once per text."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._first: int | None = None

    def before(self, pos: int) -> bool:
        """True when a capture word ends at or before ``pos``."""
        if self._first is None:
            m = _CAPTURE_WORDS.search(self._text)
            self._first = m.end() if m else len(self._text) + 1
        return self._first <= pos


def indexed_capture_field(text: str, start: int, end: int, capture: CaptureWords) -> bool:
    """True for ``tcp.stream 2,`` in a text about a packet capture: a lowercase two-label
    identifier followed by a closing index number, after a capture word."""
    return (
        _INDEX_AFTER.match(text, end) is not None
        and _MEMBER_TOKEN.fullmatch(text, start, end) is not None
        and capture.before(start)
        and _NETWORK_BEFORE.search(text, max(0, start - 24), start) is None
    )


def _line_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    return line_start, len(text) if line_end == -1 else line_end


def _in_file_listing(text: str, start: int, end: int, is_tld: Callable[[str], bool]) -> bool:
    # Both kinds of listing line end with the name: most tokens in prose fail this cheap
    # test, before the line is cut out of the text.
    newline = text.find("\n", end, end + 64)
    tail = text[end:newline] if newline != -1 else text[end : end + 64]
    if tail and not tail.isspace():
        return False
    line_start, line_end = _line_bounds(text, start, end)
    line = text[line_start:line_end].strip()
    if _LS_LINE.match(line) and line.endswith(text[start:end]):
        return True
    if line != text[start:end]:
        return False
    return _file_name_neighbours(text, line_start, line_end, is_tld) >= 2


def _file_name_neighbours(
    text: str, line_start: int, line_end: int, is_tld: Callable[[str], bool]
) -> int:
    """Bare ``name.ext`` lines in this line's block (up to a blank line, at most
    ``_LISTING_LINES`` lines of at most 600 characters either side) whose extension is not
    a TLD."""
    before = text[max(0, line_start - 600) : line_start].split("\n")[:-1]
    after = text[line_end + 1 : line_end + 600].split("\n")
    block = _until_blank(reversed(before)) + _until_blank(after)
    count = 0
    for line in block:
        m = _FILE_NAME_LINE.fullmatch(line.strip())
        if m and not is_tld(m.group(1).lower()):
            count += 1
    return count


def _until_blank(lines: Iterable[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if not line.strip() or len(out) == _LISTING_LINES:
            break
        out.append(line)
    return out


def _in_code_clause(text: str, start: int) -> bool:
    lo = max(0, start - _CLAUSE_WINDOW)
    w = text[lo:start].lower()
    if not (  # the common case, decided by substring tests alone (``_CODE_STEMS``)
        "packag" in w or "modul" in w or "class" in w or "namespac" in w or "librar" in w
        or "plugin" in w or "import" in w or "method" in w or "function" in w or "resourc" in w
    ):  # fmt: skip
        return False
    for m in _CLAUSE_END.finditer(text, lo, start):
        lo = m.end()
    words = list(_CODE_WORDS.finditer(text, lo, start))
    if not words:
        return False
    return not _NETWORK_WORDS.search(text, words[-1].end(), start)


def _in_code_sentence(text: str, start: int, end: int, is_tld: Callable[[str], bool]) -> bool:
    """``module.member`` in a sentence that also uses a dotted code identifier which is no
    host and no file name (``Exfiltration uses requests.post, not os.walk``), with no network
    word before the token in its clause and no host noun after it."""
    if not _MEMBER_TOKEN.fullmatch(text, start, end):
        return False
    # Only prose holds such a sentence: a name alone on its line or among a few words (an IOC
    # list, a table cell) is judged without the sentence scan.
    line_start = text.rfind("\n", max(0, start - _SENTENCE_WINDOW), start) + 1
    line_end = text.find("\n", end, end + _SENTENCE_WINDOW)
    if text.count(" ", line_start, end + _SENTENCE_WINDOW if line_end == -1 else line_end) < 4:
        return False
    lo = max(0, start - _SENTENCE_WINDOW)
    for m in _SENTENCE_STOP.finditer(text, lo, start):
        lo = m.end()
    stop = _SENTENCE_STOP.search(text, end, end + _SENTENCE_WINDOW)
    hi = stop.start() if stop else min(len(text), end + _SENTENCE_WINDOW)
    if not (_DOT_LETTER.search(text, lo, start) or _DOT_LETTER.search(text, end, hi)):
        return False  # no other dotted name in the sentence: the common case in prose
    cut = -1 if stop else hi  # a name running past the window's end is not judged
    if not any(
        m.start() != start
        and m.end() != cut
        and not is_tld(last := m.group(1).lower())
        and last not in FILE_EXTENSIONS
        for m in _CODE_IDENTIFIER.finditer(text, lo, hi)
    ):
        return False
    clause = max(text.rfind(",", lo, start), text.rfind(";", lo, start), lo)
    if _NETWORK_WORDS.search(text, clause, start):
        return False
    after = _CLAUSE_STOP.search(text, end, hi)
    return not _HOST_NOUNS.search(text, end, after.start() if after else hi)
