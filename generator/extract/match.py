"""Find and validate indicator candidates in refanged text (one regex per type).

Offsets are in the coordinates of the refanged text. URLs are matched first and their
spans claimed, then e-mail addresses, IPv6, IPv4 and standalone domains, each skipping
what an earlier type already claimed (a URL's host is not a separate domain). Hashes,
CVE ids and ATT&CK ids are found anywhere, URLs included.

Each type's pattern is tried only where a match can start, found without the regex
engine stepping through the text: from the ``://`` of URLs, the ``@`` of e-mail
addresses, the runs of address or host characters holding a ``:`` or ``.``, the runs of
32 or more hex digits, the ``cve`` of CVE ids. The matches are those of ``finditer``
over the whole text (tests/test_extract.py compares the two).
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterator
from functools import lru_cache
from itertools import chain
from operator import itemgetter

from generator.extract.code_context import CaptureWords, indexed_capture_field, used_as_code
from generator.extract.domains import (
    _pathish,
    _plain_domain,
    alt_root_domain,
    is_tld,
    is_valid_domain,
    redacted,
    standalone_domain_ok,
)
from generator.extract.hash_context import ToolOutput, presented_as_secret
from generator.extract.refang import Refanged

__all__ = ["Candidate", "find_candidates", "valid_ip", "valid_ipv4", "valid_ipv6"]

# Each pattern starts with a character class (then a look-behind on the character before
# it) so that the regex engine can skip quickly over text that cannot start a match.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_TAIL = rf"(?:(?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)(?:{_LABEL}\.)*{_TLD}"
# http, https, ftp and WCF's net.tcp.
_URL = re.compile(
    r"[hHfFnN](?<!\w[hHfFnN])(?:(?<=[hH])[tT][tT][pP][sS]?|(?<=[fF])[tT][pP]"
    r"|(?<=[nN])[eE][tT]\.[tT][cC][pP])://[^\s<>\"'`{}|\\^“”‘’«»…]+"
)
_EMAIL = re.compile(
    rf"[A-Za-z0-9](?<![\w.%+-][A-Za-z0-9])(?=[A-Za-z0-9._%+-]*+@)[A-Za-z0-9._%+-]{{0,63}}@{_LABEL}\.(?:{_LABEL}\.)*{_TLD}"
    r"(?![\w-]|\.[A-Za-z0-9])"
)
# The possessive look-ahead rejects a word without a dot after one scan of it, instead of
# letting the label pattern backtrack through the whole word.
_DOMAIN = re.compile(
    rf"[A-Za-z0-9](?<![\w@.-][A-Za-z0-9])(?=[A-Za-z0-9-]*+\.){_HOST_TAIL}(?![\w-]|\.[A-Za-z0-9])"
)
# A host written under a placeholder label (``[ID].host.tld``, ``*.host.tld``,
# ``{id}.host.tld``): the placeholder stands for a label that changes per victim or per
# request, and the indicator is the host after it. The search finds the dot after the
# placeholder's last character (led by the literal dot, which the engine finds fastest; the
# character before it by look-behind); the placeholder itself is checked on the few
# characters before.
_PLACEHOLDER_DOT = re.compile(r"\.(?<=[\]*>}]\.)(?=[A-Za-z0-9])")
_PLACEHOLDER = re.compile(r"(?:\*|\[[A-Za-z_]{1,16}\]|<[A-Za-z_]{1,16}>|\{[A-Za-z_]{1,16}\})\Z")
_PLACED_DOMAIN = re.compile(rf"[A-Za-z0-9](?=[A-Za-z0-9-]*+\.){_HOST_TAIL}(?![\w-]|\.[A-Za-z0-9])")
_IPV4 = re.compile(
    r"[0-9](?<![\w.][0-9])[0-9]{0,2}(?:\.[0-9]{1,3}){3}(?!\w|\.[0-9])"
)  # octets: valid_ip()
_IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![\w:.][0-9A-Fa-f:])"
    r"(?:(?<=:)(?=[0-9A-Fa-f]*+:)|(?=[0-9A-Fa-f]*+:[0-9A-Fa-f]*+:))[0-9A-Fa-f:]{1,38}"
    r"(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?(?![\w:]|\.[0-9])"
)
# An address glued to a label by a colon (``IPv6:2a03:b0c0::1``, ``dst:2a0e::1``): the
# label ends in a letter that is no hex digit, perhaps with one digit after it, so the
# tail of an address is never taken for one.
_LABELLED_IPV6 = re.compile(
    r":(?:(?<=[g-zG-Z]:)|(?<=[g-zG-Z][0-9]:))((?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]*+:)[0-9A-Fa-f:]{2,38}"
    r"(?:(?<=:)[0-9]{1,3}(?:\.[0-9]{1,3}){3})?)(?![\w:]|\.[0-9])"
)
_HASH = re.compile(r"[0-9A-Fa-f](?<![0-9A-Za-z][0-9A-Fa-f])[0-9A-Fa-f]{31,127}(?![0-9A-Za-z])")
_HASH_TYPES = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
# CVE and ATT&CK patterns start at their second character ("v", the "1" of T1xxx), which
# is far rarer in prose than "c" or "t" and lets the engine skip ahead; the letter before it
# is checked by look-behind, so a match starts one character after the indicator does.
# One blank may follow the first hyphen (``CVE- 2010-0188``, as some posts are typed): the
# year and the hyphen after it still fix the shape.
_CVE = re.compile(
    r"[vV](?<=[cC][vV])(?<![\w-][cC][vV])[eE][-‐‑–—][ \t\xa0]?([0-9]{4})[-‐‑–—]([0-9]{4,7})(?![0-9])"
)
# ``attack.t1071.004`` is how Sigma rules tag techniques.
_ATTACK = re.compile(
    r"1(?<=[tT]1)(?:(?<![\w.][tT]1)|(?<=[aA]ttack\.[tT]1))([0-9]{3}(?:\.[0-9]{3})?)(?!\w|\.[0-9])"
)
_VERSION_BEFORE = re.compile(
    r"(?i)(?:\bv\.?|\bver\.?|version|build|release|firmware|revision|rev\.?)\s*[:#=,]?\s*\Z"
)
_KEYWORD_ENDS = frozenset("vV.rRnNdDeE")  # the last characters of those keywords
# A version-like quad (small first number) in a clause that talks about versions.
_VERSION_WORDS = re.compile(
    r"(?i)\b(?:versions?|firmware|builds?|releases?|hotfix(?:es)?|patch(?:ed|es)?|fixed in"
    r"|upgraded? to|ver\.?)\b"
)
# A line break ends a clause unless the next line carries on in lower case (wrapped prose).
_SENTENCE_END = re.compile(r"[.!?]\s|\n(?![a-z])")
# A quad read as a version: after ``product/`` (a User-Agent token such as sgcli/4.2.0.1) or a
# CamelCase product name (SecureGate 9.1.18.2, FortiOS 7.2.4.1), or before "and later".
_PRODUCT_WORD = re.compile(r"[A-Za-z][\w.-]*\Z")  # the sgcli of sgcli/4.2.0.1
_CAMEL_WORD = re.compile(r"[A-Za-z]*[a-z][A-Z][A-Za-z]*\Z")  # SecureGate, FortiOS, vCenter
_RANGE_AFTER = re.compile(
    r"\s+(?:and|or)\s+(?:later|earlier|newer|older|above|below|higher|lower)\b"
)
# A quad of any first number read as a version: right after a word that names a version or
# a product release (``version``, ``build``, ``Player``, ``release``, ``firmware``), perhaps
# with a bound between (``Flash Player up to 31.0.0.153``, ``build >= 42.0.1.7``).
_VERSION_LEAD = re.compile(
    r"(?i)\b(?:versions?|ver|builds?|players?|releases?|firmware)"
    r"\s+(?:(?:up\s+to|through|before|prior\s+to|until|[<>]=?|=)\s*)?\Z"
)
_VERSION_LEAD_WINDOW = 40
_VERSION_LEAD_STEMS = ("ver", "build", "player", "release", "firmware")  # a cheap pre-test
_VERSION_WINDOW = 96
_VERSION_MAX_FIRST = 30
_DOTTED_DIGITS = re.compile(r"[0-9.]+")
_AUTHORITY_END = re.compile(r"[/?#]")
_URL_TRAIL = ".,;:!?)]}'\">*"
_PAIRS = {")": "(", "]": "[", "}": "{"}
_CODE_AFTER = ("!", "(")  # after a detection name, a call

# A validated indicator occurrence in the refanged text: (type, value, start, end,
# defanged, host), ``host`` being the validated host of a URL, e-mail address or domain
# ("" for the other types). A plain tuple: a few thousand are made per text, and a tuple
# is built and unpacked at C level.
Candidate = tuple[str, str, int, int, bool, str]
_START = itemgetter(2)
_END = itemgetter(3)


class _Claims:
    """Sorted, merged spans already taken by an earlier indicator type."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add_all(self, spans: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted([*zip(self.starts, self.ends, strict=True), *spans]):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]

    def covers(self, start: int, end: int) -> bool:
        i = bisect_right(self.starts, start) - 1
        return i >= 0 and self.ends[i] >= end


@lru_cache(maxsize=65536)
def valid_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse an IP and keep it only when it is globally routable unicast."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return None
    return ip


# IPv4 ranges that valid_ip() rejects (not global, multicast, reserved or unspecified):
# the iana-ipv4-special-registry blocks ``ipaddress`` treats as private, 100.64.0.0/10
# (shared address space), 224.0.0.0/4 (multicast) and 240.0.0.0/4 (reserved).
_IPV4_BLOCKED_NETS = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/29", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)  # fmt: skip


def _blocked_ranges() -> tuple[tuple[int, ...], tuple[int, ...]]:
    nets = sorted(ipaddress.IPv4Network(n) for n in _IPV4_BLOCKED_NETS)
    return (
        tuple(int(n.network_address) for n in nets),
        tuple(int(n.broadcast_address) for n in nets),
    )


_BLOCKED_FIRST, _BLOCKED_LAST = _blocked_ranges()
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # 0-255, no leading zero
_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def valid_ipv4(text: str) -> str | None:
    """``valid_ip`` for dotted-quad IPv4 without ``ipaddress``: the address or None.

    Octets are decimal, 0-255, without leading zeros (``ipaddress`` rejects those as
    ambiguous), so a valid address is already in its normal form.
    """
    if not _QUAD.fullmatch(text):
        return None
    a, b, c, d = map(int, text.split("."))
    n = a << 24 | b << 16 | c << 8 | d
    i = bisect_right(_BLOCKED_FIRST, n) - 1
    if i >= 0 and n <= _BLOCKED_LAST[i]:
        return None
    return text


# IPv6 ranges that valid_ip() rejects: every /3 but 2000::/3 is reserved (with fe00::/9),
# save fc00::/7 (private), fe80::/10 (private), fec0::/10 (site-local, kept) and ff00::/8
# (multicast); inside 2000::/3, 2001::/23 and 2001:db8::/32 are private. ::, ::1 and
# ::ffff:0:0/96 (IPv4-mapped) lie in the reserved ::/8.
_IPV6_BLOCKED_NETS = (
    "::/3", "2001::/23", "2001:db8::/32", "4000::/2", "8000::/2", "c000::/3", "e000::/4",
    "f000::/5", "f800::/6", "fc00::/7", "fe00::/9", "fe80::/10", "ff00::/8",
)  # fmt: skip


def _blocked_ranges_v6() -> tuple[tuple[int, ...], tuple[int, ...]]:
    nets = sorted(ipaddress.IPv6Network(n) for n in _IPV6_BLOCKED_NETS)
    return (
        tuple(int(n.network_address) for n in nets),
        tuple(int(n.broadcast_address) for n in nets),
    )


_BLOCKED6_FIRST, _BLOCKED6_LAST = _blocked_ranges_v6()
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def _hextets(text: str) -> list[str] | None:
    """The 8 hextets of a plain IPv6 address (hex groups, at most one ``::``), or None.

    None also for the forms left to ``ipaddress`` (an embedded IPv4 address, a zone),
    so every list returned is one that ``ipaddress`` accepts as the same address.
    """
    head, sep, tail = text.partition("::")
    groups = head.split(":") if head else []
    if sep:
        rest = tail.split(":") if tail else []
        if len(groups) + len(rest) > 7:
            return None
        groups += ["0"] * (8 - len(groups) - len(rest)) + rest
    elif len(groups) != 8:
        return None
    for group in groups:
        if not 0 < len(group) <= 4 or not _HEX_DIGITS.issuperset(group):
            return None
    return groups


def _compressed(n: int) -> str:
    """``ipaddress.IPv6Address(n).compressed``: the longest run of two or more zero
    hextets (the first, on a tie) becomes ``::``."""
    hextets = [f"{n >> shift & 0xFFFF:x}" for shift in range(112, -16, -16)]
    best_start, best_len, start, length = -1, 0, -1, 0
    for i, hextet in enumerate(hextets):
        if hextet == "0":
            if start == -1:
                start = i
            length += 1
            if length > best_len:
                best_start, best_len = start, length
        else:
            start, length = -1, 0
    if best_len > 1:
        best_end = best_start + best_len
        if best_end == len(hextets):
            hextets.append("")
        hextets[best_start:best_end] = [""]
        if best_start == 0:
            hextets.insert(0, "")
    return ":".join(hextets)


def valid_ipv6(text: str) -> str | None:
    """``valid_ip`` for IPv6: the compressed address, or None when invalid or not global.

    Plain forms are parsed and checked here (no ``ipaddress`` objects); the rest, such as
    an embedded IPv4 address, go through ``valid_ip``.
    """
    groups = _hextets(text)
    if groups is None:
        ip = valid_ip(text)
        return ip.compressed if ip is not None and ip.version == 6 else None
    n = int("".join(g.rjust(4, "0") for g in groups), 16)
    i = bisect_right(_BLOCKED6_FIRST, n) - 1
    if i >= 0 and n <= _BLOCKED6_LAST[i]:
        return None
    return _compressed(n)


def _trim_url(url: str) -> str:
    """Drop trailing punctuation, keeping a closing bracket that an opening one balances.

    The brackets are counted once and the count of the closing one dropped is kept up to
    date (the opening ones are never dropped), so a URL ending in a long run of ``)``
    costs linear time, not one count of the whole URL per character dropped.
    """
    end = len(url)
    counts: dict[str, int] = {}
    while end and url[end - 1] in _URL_TRAIL:
        last = url[end - 1]
        opener = _PAIRS.get(last)
        if opener:
            if last not in counts:
                counts[last] = url.count(last, 0, end)
                counts[opener] = url.count(opener, 0, end)
            if counts[opener] >= counts[last]:
                break
            counts[last] -= 1
        end -= 1
    return url[:end]


def _url_host(hostport: str) -> tuple[str, str] | None:
    """Return (normalised host for display, bare host) or None when invalid."""
    if hostport.startswith("["):
        inner, sep, rest = hostport[1:].partition("]")
        ip = valid_ipv6(inner) if sep and (not rest or rest[1:].isdigit()) else None
        if ip is None:
            return None
        return f"[{ip}]" + rest, ip
    host, _, port = hostport.partition(":")
    if port and not port.isdigit():
        return None
    host = host.lower().rstrip(".")
    if _DOTTED_DIGITS.fullmatch(host):
        ipv4 = valid_ipv4(host)
        if ipv4 is None:
            return None
        host = ipv4
    elif not (is_valid_domain(host) or alt_root_domain(host)):
        return None
    return host + (f":{port}" if port else ""), host


def _normalise_url(url: str) -> tuple[str, str] | None:
    scheme, _, rest = url.partition("://")
    found = _AUTHORITY_END.search(rest)
    split = found.start() if found else len(rest)
    authority, tail = rest[:split], rest[split:]
    userinfo, at, hostport = authority.rpartition("@")
    parsed = _url_host(hostport)
    if parsed is None:
        return None
    display, host = parsed
    return f"{scheme.lower()}://{userinfo}{at}{display}{tail}", host


_LOCAL_PART_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_HOST_RUN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


# Led by the literal "@", which the engine finds fastest; the character before it by
# look-behind.
_LOCAL_AT = re.compile(rb"@(?<=[A-Za-z0-9._%+\-]@)")
# With more than one "@" per this many characters, ``_EMAIL.finditer`` (about 20 ns per
# character) is cheaper than one anchored match per "@" (about 1 µs each).
_DENSE_AT = 50


def _email_matches(text: str, ascii_text: bytes | None = None) -> Iterator[re.Match[str]]:
    """The matches of ``_EMAIL.finditer(text)``, found from the ``@`` signs.

    The pattern may only start where the run of local-part characters before an ``@``
    starts (inside the run the look-behind fails), so one anchored match per ``@`` finds
    the same matches without trying the pattern at every word in the text. The runs are
    found in ``ascii_text`` (``text`` one byte per character) with every other character
    blanked, so that each run's start is one ``rfind`` away. A text dense in ``@`` takes
    ``finditer`` itself.
    """
    if text.count("@") * _DENSE_AT > len(text):
        # Text thick with "@" (a list of addresses, or a hostile run): one C-level scan
        # costs less than a Python step per "@".
        yield from _EMAIL.finditer(text)
        return
    if ascii_text is None:
        ascii_text = text.encode("ascii", "replace")
    # An "@" with no local-part character before it starts no match: a run of "@" is
    # skipped by the engine.
    found = _LOCAL_AT.search(ascii_text)
    if not found:
        return
    runs = ascii_text.translate(_RUN_TABLES[_LOCAL_PART_CHARS])
    last = 0
    while found:
        at = found.start()
        start = runs.rfind(b" ", 0, at) + 1
        if start >= last:
            m = _EMAIL.match(text, start)
            if m:
                yield m
                last = m.end()
        # An "@" at or before ``last`` has its run start before ``last`` (the look-behind
        # saw a local-part character before it) and would be skipped: resume after both.
        found = _LOCAL_AT.search(ascii_text, (at if at > last else last) + 1)


_IPV6_RUN_CHARS = frozenset("0123456789abcdefABCDEF:.")
_IPV4_RUN_CHARS = frozenset("0123456789.")


def _run_classes(run_chars: frozenset[str]) -> bytes:
    """A ``bytes.translate`` table keeping the ASCII ``run_chars`` and blanking the rest."""
    return bytes(b if chr(b) in run_chars else 32 for b in range(256))


_RUN_TABLES = {
    chars: _run_classes(chars)
    for chars in (_HOST_RUN_CHARS, _IPV4_RUN_CHARS, _IPV6_RUN_CHARS, _LOCAL_PART_CHARS)
}


def _mark_in_run(mark: str) -> re.Pattern[bytes]:
    """``mark`` followed by another run character (translated text blanks the others)."""
    return re.compile(re.escape(mark.encode()) + b"[^ ]")


_MARK_IN_RUN = {mark: _mark_in_run(mark) for mark in ".:"}
# What every IPv4 address and every standalone domain holds: three dots between runs of
# one to three digits; a dot between a letter or digit and the letter that starts the
# top-level domain. A run without it (a run of dots and hyphens, a version number, an
# ATT&CK id, an address among host characters) is then skipped by the engine instead of
# being tried one run at a time.
# Led by the literal dot, which the engine finds fastest (the character before it is
# checked by look-behind).
_IPV4_NEEDLE = re.compile(rb"\.(?<=[0-9]\.)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]")
_DOMAIN_NEEDLE = re.compile(rb"\.(?<=[A-Za-z0-9]\.)[A-Za-z]")


def _run_matches(
    text: str,
    pattern: re.Pattern[str],
    mark: str,
    run_chars: frozenset[str],
    ascii_text: bytes | None = None,
    claims: _Claims | None = None,
    needle: re.Pattern[bytes] | None = None,
) -> Iterator[re.Match[str]]:
    """The matches of ``pattern.finditer(text)``, found from the ``mark`` characters.

    For patterns whose matches hold ``mark`` at least twice or followed by another run
    character, lie in a run of ``run_chars`` and cannot start inside such a run (their
    look-behind rejects every run character): one anchored match at the start of each run
    finds the same matches without trying the pattern at every word in the text. A run
    whose first ``mark`` is its last character (a full stop, a colon after a word) is
    skipped without being matched.

    ``run_chars`` are ASCII. The runs are found in ``ascii_text`` (``text`` encoded one
    byte per character, non-ASCII characters as ``?``) with its other characters blanked,
    so that each run's ends are one ``find`` away. With ``claims``, a run that lies inside
    a claimed span is skipped: every match in it would be claimed. ``needle``, when given,
    replaces the ``mark`` search: a pattern that every match holds, in the translated text.
    """
    if ascii_text is None:
        ascii_text = text.encode("ascii", "replace")
    table = _RUN_TABLES.get(run_chars) or _run_classes(run_chars)
    runs = ascii_text.translate(table)
    n = len(runs)
    search = (needle or _MARK_IN_RUN.get(mark) or _mark_in_run(mark)).search
    claim_starts = claims.starts if claims is not None else []
    claim_ends = claims.ends if claims is not None else []
    found = search(runs)
    while found:
        pos = found.start()
        start = runs.rfind(b" ", 0, pos) + 1
        end = runs.find(b" ", pos + 1)
        if end == -1:
            end = n
        if claim_starts:
            k = bisect_right(claim_starts, start) - 1  # ``claims.covers(start, end)``
            if k >= 0 and claim_ends[k] >= end:
                found = search(runs, end)
                continue
        m = pattern.match(text, start)
        if m:
            yield m
        found = search(runs, end)


def _url_matches(text: str) -> Iterator[re.Match[str]]:
    """The matches of ``_URL.finditer(text)``, found from the ``://`` separators.

    A match starts 3 to 7 characters before its ``://`` (``ftp``, ``http``, ``https``,
    ``net.tcp``), so one anchored match per candidate start, leftmost first, finds the same
    matches.
    """
    last = 0
    sep = text.find("://")
    while sep != -1:
        for start in (sep - 7, sep - 5, sep - 4, sep - 3):
            if start >= last:
                m = _URL.match(text, start)
                if m:
                    yield m
                    last = m.end()
                    break
        sep = text.find("://", max(sep + 1, last))


def _link_text_start(url: str) -> int:
    """Where AsciiDoc's ``url[link text]`` (or a wiki's) puts its text after a URL, else -1.

    A ``[`` after the host opens link text unless its bracket closes before ``=`` (a query
    array such as ``a[]=1``).
    """
    if "[" not in url:
        return -1  # most URLs
    host_end = url.find("/", url.find("://") + 3)
    bracket = url.find("[", host_end) if host_end != -1 else -1
    if bracket == -1:
        return -1
    close = url.find("]", bracket)
    return -1 if close != -1 and url[close + 1 : close + 2] == "=" else bracket


def _urls(rf: Refanged, out: list[Candidate]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    text = rf.text
    defanged_at = rf.defanged if rf.new_starts else _never
    for m in _url_matches(text):
        url = m.group()
        start = m.start()
        if start and text[start - 1] == ",":
            url = url.split(",", 1)[0]  # a CSV field: an unquoted field holds no comma
        text_start = _link_text_start(url)
        url = _trim_url(url[:text_start] if text_start != -1 else url)
        end = start + len(url)
        spans.append((start, end))
        parsed = _normalise_url(url)
        if parsed:
            defanged = defanged_at(start, end)
            out.append(("url", parsed[0], start, end, defanged, parsed[1]))
            kind = _ip_kind(parsed[1])
            if kind:  # a firewall blocks the address a URL names
                out.append((kind, parsed[1], start, end, defanged, ""))
    return spans


def _ip_kind(host: str) -> str:
    """ "ipv4" or "ipv6" when a URL's (validated) host is an address, else ""."""
    if ":" in host:
        return "ipv6"
    return "ipv4" if _DOTTED_DIGITS.fullmatch(host) else ""


def _emails(
    rf: Refanged, ascii_text: bytes, claims: _Claims, out: list[Candidate]
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    claimed = claims.covers if claims.starts else None
    for m in _email_matches(rf.text, ascii_text):
        start, end = m.span()
        if claimed is not None and claimed(start, end):
            continue
        spans.append((start, end))
        local, _, host = m.group().lower().rpartition("@")
        defanged = rf.defanged(start, end)
        if is_valid_domain(host) and not local.endswith(".") and (defanged or not redacted(host)):
            out.append(("email", f"{local}@{host}", start, end, defanged, host))
    return spans


def _ipv6(
    rf: Refanged, ascii_text: bytes, claims: _Claims, out: list[Candidate]
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    matches = _run_matches(rf.text, _IPV6, ":", _IPV6_RUN_CHARS, ascii_text)
    for m in chain(matches, _LABELLED_IPV6.finditer(rf.text)):
        raw, start = m.group(m.lastindex or 0), m.start(m.lastindex or 0)
        if raw.endswith(":") and not raw.endswith("::"):
            raw = raw[:-1]
        end = start + len(raw)
        if claims.covers(start, end) or raw == "::":
            continue
        if "::" not in raw and not any(len(g) >= 2 for g in raw.split(":")):
            continue
        ip = valid_ipv6(raw)
        if ip is not None:
            spans.append((start, end))
            out.append(("ipv6", ip, start, end, rf.defanged(start, end), ""))
    return spans


def _in_version_clause(text: str, start: int, end: int, quad: str) -> bool:
    """A quad such as 7.0.15.1 in a clause about versions, builds or firmware, named with
    its product, or given as a bound (``9.1.19.0 and later``). A quad whose first number is
    above ``_VERSION_MAX_FIRST`` is a version only right after a version word
    (``_VERSION_LEAD``): a real address may stand further on in a clause about versions."""
    lead = text[max(0, start - _VERSION_LEAD_WINDOW) : start]
    low = lead.lower()
    if (  # the stems of ``_VERSION_LEAD_STEMS``, tested one by one
        "ver" in low or "build" in low or "player" in low or "release" in low or "firmware" in low
    ) and _VERSION_LEAD.search(lead):
        return True
    if int(quad.split(".", 1)[0]) > _VERSION_MAX_FIRST:
        return False
    if _product_before(text, start) or _RANGE_AFTER.match(text, end):
        return True
    lo = max(0, start - _VERSION_WINDOW)
    for m in _SENTENCE_END.finditer(text, lo, start):
        lo = m.end()
    return bool(_VERSION_WORDS.search(text, lo, start))


def _product_before(text: str, start: int) -> bool:
    """``product/`` or a CamelCase product name and one blank right before ``start``."""
    if start < 2:
        return False
    mark = text[start - 1]
    if mark == "/":
        return _PRODUCT_WORD.search(text, max(0, start - 41), start - 1) is not None
    if mark not in " \t":
        return False
    word_start = max(text.rfind(" ", max(0, start - 41), start - 1), text.rfind("\n", 0, start - 1))
    return _CAMEL_WORD.search(text, word_start + 1, start - 1) is not None


def _version_before(text: str, start: int) -> bool:
    """``_VERSION_BEFORE`` matches the 12 characters before ``start``.

    Its keyword must end where the trailing blanks and one ``:#=,`` mark begin, so the
    regex runs only when the character there can end a keyword.
    """
    lo = max(0, start - 12)
    head = text[lo:start].rstrip()
    if head and head[-1] in ":#=,":
        head = head[:-1].rstrip()
    if not head or head[-1] not in _KEYWORD_ENDS:
        return False
    return _VERSION_BEFORE.search(text, lo, start) is not None


def _ipv4(rf: Refanged, ascii_text: bytes, claims: _Claims, out: list[Candidate]) -> None:
    text = rf.text
    defanged = rf.defanged if rf.new_starts else _never
    for m in _run_matches(text, _IPV4, ".", _IPV4_RUN_CHARS, ascii_text, claims, _IPV4_NEEDLE):
        start, end = m.span()
        if claims.covers(start, end) or _version_before(text, start):
            continue
        ipv4 = valid_ipv4(m.group())
        if ipv4 is None or _in_version_clause(text, start, end, ipv4):
            continue
        out.append(("ipv4", ipv4, start, end, defanged(start, end), ""))


def _domains(rf: Refanged, ascii_text: bytes, claims: _Claims, out: list[Candidate]) -> None:
    """Standalone domains. A name the text uses as code or a file name at one place is that
    everywhere in the text, unless written defanged (``kworker.run`` in a listing and in
    prose)."""
    text = rf.text
    found: list[Candidate] = []
    code: set[str] = set()
    capture = CaptureWords(text)
    covers = claims.covers if claims.starts else _never
    defanged_at = rf.defanged if rf.new_starts else _never
    for m in _run_matches(text, _DOMAIN, ".", _HOST_RUN_CHARS, ascii_text, claims, _DOMAIN_NEEDLE):
        start, end = m.span()
        if covers(start, end):
            continue
        defanged = defanged_at(start, end)
        if defanged:
            domain = standalone_domain_ok(m.group(), defanged=True, before="", after="")
        else:
            before, after = text[max(0, start - 2) : start], text[end : end + 1]
            if _pathish(before) or after in _CODE_AFTER:
                continue  # ``standalone_domain_ok``'s checks of the text around, done here
            domain = _plain_domain(m.group().rstrip("."))
        if not domain:
            continue
        if not defanged and (
            domain in code
            or used_as_code(text, start, end, is_tld)
            or indexed_capture_field(text, start, end, capture)
        ):
            code.add(domain)
        else:
            found.append(("domain", domain, start, end, defanged, domain))
    found += _placed_domains(rf, claims)
    out += [c for c in found if c[4] or c[1] not in code]  # defanged, or not code


def _placed_domains(rf: Refanged, claims: _Claims) -> list[Candidate]:
    """Hosts right after a placeholder label and its dot (``[ID].trapgo[.]host``)."""
    text = rf.text
    found: list[Candidate] = []
    for p in _PLACEHOLDER_DOT.finditer(text):
        dot = p.start()
        if not _PLACEHOLDER.search(text, max(0, dot - 18), dot):
            continue
        m = _PLACED_DOMAIN.match(text, dot + 1)
        if m is None or claims.covers(*m.span()):
            continue
        start, end = m.span()
        defanged = rf.defanged(start, end)
        after = text[end : end + 1]
        domain = standalone_domain_ok(m.group(), defanged=defanged, before="", after=after)
        if domain and (defanged or not used_as_code(text, start, end, is_tld)):
            found.append(("domain", domain, start, end, defanged, domain))
    return found


def _hex_class(byte: int) -> int:
    """Hex digits become "x", other ASCII letters and digits "a", everything else a space."""
    char = chr(byte)
    if char in _HEX_DIGITS:
        return ord("x")
    return ord("a") if char.isascii() and char.isalnum() else ord(" ")


_HEX_CLASSES = bytes(_hex_class(b) for b in range(256))
_HEX_RUN = b"x" * 32
_X_RUN = re.compile(rb"x*")


def _never(start: int, end: int) -> bool:
    """``Refanged.defanged`` for a text where nothing was refanged."""
    return False


def _hash_matches(text: str, ascii_text: bytes) -> Iterator[re.Match[str]]:
    """The matches of ``_HASH.finditer(text)``, found from the runs of 32 or more hex digits.

    ``ascii_text`` is ``text`` encoded one byte per character (non-ASCII characters as
    ``?``). A match starts a run of hex digits that is at least 32 long (inside a run the
    look-behind fails), so one anchored match per such run finds the same matches.
    """
    classes = ascii_text.translate(_HEX_CLASSES)
    pos = classes.find(_HEX_RUN)
    while pos != -1:
        m = _HASH.match(text, pos)
        if m:
            yield m
            run_end = m.end()  # a match ends where its run does
        else:
            run_end = _X_RUN.match(classes, pos).end()  # type: ignore[union-attr]  # x* matches
        pos = classes.find(_HEX_RUN, run_end)


def _cve_matches(text: str, lowered: bytes) -> Iterator[re.Match[str]]:
    """The matches of ``_CVE.finditer(text)``, found from the ``cve`` in ``lowered``.

    ``lowered`` is ``text`` encoded one byte per character and lowercased; a match starts
    on the ``v`` of a ``cve``.
    """
    last = 0
    pos = lowered.find(b"cve")
    while pos != -1:
        if pos + 1 >= last:
            m = _CVE.match(text, pos + 1)
            if m:
                yield m
                last = m.end()
        pos = lowered.find(b"cve", pos + 1)


def _simple(rf: Refanged, ascii_text: bytes, out: list[Candidate]) -> None:
    text = rf.text
    tools = ToolOutput(text)
    defanged = rf.defanged if rf.new_starts else _never
    for m in _hash_matches(text, ascii_text):
        value = m.group()
        kind = _HASH_TYPES.get(len(value))
        start, end = m.span()
        if kind and not presented_as_secret(text, start, end, tools):
            out.append((kind, value.lower(), start, end, defanged(start, end), ""))
    for m in _cve_matches(text, ascii_text.lower()):
        value = f"CVE-{m.group(1)}-{m.group(2)}"
        start, end = m.start() - 1, m.end()
        out.append(("cve", value, start, end, defanged(start, end), ""))
    for m in _ATTACK.finditer(text):
        out.append(("mitre_attack", "T1" + m.group(1), m.start() - 1, m.end(), False, ""))


def find_candidates(rf: Refanged) -> list[Candidate]:
    """All validated indicator occurrences, ordered by position."""
    out: list[Candidate] = []
    claims = _Claims()
    text = rf.text
    ascii_text = text.encode("ascii", "replace")  # one byte per character
    # A pass whose required character is absent cannot match: skip its scan.
    if "://" in text:
        claims.add_all(_urls(rf, out))
    if "@" in text:
        claims.add_all(_emails(rf, ascii_text, claims, out))
    if ":" in text:
        claims.add_all(_ipv6(rf, ascii_text, claims, out))
    _ipv4(rf, ascii_text, claims, out)
    _domains(rf, ascii_text, claims, out)
    _simple(rf, ascii_text, out)
    # By start, the longer first at one start: two stable sorts, with C-level keys.
    out.sort(key=_END, reverse=True)
    out.sort(key=_START)
    return out
