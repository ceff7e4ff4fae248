"""Checkers of the device files, written from each device's documented rules
(docs/formats/devices.md, with sources), for what the real tools let through and for the
devices with no tool here (PAN-OS, FortiGate, Zeek). Each returns the problems it found, one
line each; an empty list means the file passes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable, Iterator

LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
HEX = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
PANOS_MAX = 50_000
FORTIGATE_MAX_LINES = 128_000
FORTIGATE_MAX_BYTES = 10_000_000
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

Checker = Callable[[bytes], list[str]]


def _lines(data: bytes) -> Iterator[tuple[int, str]]:
    text = data.decode("utf-8")
    if text and not text.endswith("\n"):
        yield 0, "<file does not end with a line end>"
    yield from enumerate(text.split("\n")[:-1] if text else [], start=1)


def is_dns_name(name: str, wildcard: bool = False) -> bool:
    """An ASCII DNS name of LDH (and ``_``) labels, optionally ``*.``-prefixed."""
    if wildcard and name.startswith("*."):
        name = name[2:]
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(LABEL.match(lb) for lb in labels)


def is_ip(text: str, cidr: bool = True) -> bool:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return cidr or net.prefixlen == net.max_prefixlen and "/" not in text


def each_line(data: bytes, ok: Callable[[str], bool], what: str, limit: int = 0) -> list[str]:
    """A problem for each line ``ok`` refuses (naming ``what`` it should be), and one when there
    are more than ``limit`` lines (0: no limit)."""
    problems = []
    count = 0
    for n, line in _lines(data):
        if n == 0 or not ok(line):
            problems.append(f"line {n}: not {what}: {line!r}")
        count += n > 0
    if limit and count > limit:
        problems.append(f"{count} entries, more than {limit}")
    return problems


# PAN-OS external dynamic lists ---------------------------------------------------------------


def _panos_ip(line: str) -> bool:
    first, dash, last = line.partition("-")
    if dash:
        return is_ip(first, cidr=False) and is_ip(last, cidr=False)
    return is_ip(line)


def check_edl_ip(data: bytes) -> list[str]:
    """IP list: an address, CIDR block or ``a-b`` range per line, at most 50,000 entries."""
    return each_line(data, _panos_ip, "an IP, CIDR or range", PANOS_MAX)


def check_edl_domain(data: bytes) -> list[str]:
    """Domain list: no scheme, ``*.`` only as the leading token, at most 255 characters."""
    return each_line(
        data, lambda d: len(d) <= 255 and is_dns_name(d, wildcard=True), "a domain", PANOS_MAX
    )


def _panos_url(line: str) -> bool:
    bad = SCHEME.match(line) or not line or any(c.isspace() or ord(c) > 126 for c in line)
    host = line.split("/", 1)[0].split(":", 1)[0]
    return not bad and "*" not in line and "^" not in line and (is_dns_name(host) or is_ip(host))


def check_edl_url(data: bytes) -> list[str]:
    """URL list: never ``http(s)://``; ASCII, no spaces, no wildcard tokens; a host first."""
    return each_line(data, _panos_url, "a URL without scheme", PANOS_MAX)


# FortiGate threat feeds ----------------------------------------------------------------------


def check_fortigate(data: bytes, kind: str) -> list[str]:
    """One feed type per file; hashes of one algorithm only; at most 128K lines and 10 MB."""
    checks: dict[str, Callable[[str], bool]] = {
        "ip": lambda line: is_ip(line),
        "domain": lambda line: is_dns_name(line, wildcard=True),
        "url": _panos_url,
    }
    ok = checks.get(kind) or (lambda line: re.fullmatch(rf"[0-9a-f]{{{HEX[kind]}}}", line))
    problems = each_line(data, lambda line: bool(ok(line)), f"a {kind} entry", FORTIGATE_MAX_LINES)
    if len(data) > FORTIGATE_MAX_BYTES:
        problems.append(f"{len(data)} bytes, more than {FORTIGATE_MAX_BYTES}")
    return problems


# hosts ---------------------------------------------------------------------------------------


def _hosts_line(line: str) -> bool:
    if not line.strip() or line.startswith("#"):
        return True
    parts = line.split()
    return len(parts) == 2 and is_ip(parts[0], cidr=False) and is_dns_name(parts[1])


def check_hosts(data: bytes) -> list[str]:
    """``<address> <name>`` per line (ASCII DNS names), comments after ``#``."""
    return each_line(data, _hosts_line, "an address and a host name")


# RPZ -----------------------------------------------------------------------------------------


def rpz_ip(owner: str) -> bool:
    """A well-formed ``rpz-ip`` trigger: prefix length, the address reversed, host bits 0."""
    parts = owner.split(".")
    if len(parts) < 3 or parts[-1] != "rpz-ip" or not parts[0].isdigit():
        return False
    prefix, groups = int(parts[0]), parts[1:-1][::-1]
    try:
        if len(groups) == 4 and "zz" not in groups:
            net = ipaddress.IPv4Network(f"{'.'.join(groups)}/{prefix}", strict=True)
        else:
            if groups.count("zz") > 1 or len(groups) > 8:
                return False
            text = ":".join("" if g == "zz" else g for g in groups)
            text = "::" if text == "" else text
            text = ":" + text if text.startswith(":") and not text.startswith("::") else text
            text = text + ":" if text.endswith(":") and not text.endswith("::") else text
            net = ipaddress.IPv6Network(f"{text}/{prefix}", strict=True)
    except ValueError:
        return False
    return net.prefixlen == prefix


def check_rpz(data: bytes, serial: int) -> list[str]:
    """One SOA (serial = the build's), an NS, ``$TTL``; every owner a DNS name (``*.`` allowed)
    or an ``rpz-ip`` trigger (no URL owners); no CNAME beside other data; a name at most
    once."""
    problems: list[str] = []
    soa = ns = ttl = 0
    types: dict[str, set[str]] = {}
    for n, line in _lines(data):
        body = line.split(";", 1)[0].rstrip()
        if n == 0:
            problems.append(line)
            continue
        if not body:
            continue
        if body.startswith("$TTL"):
            ttl += 1
            continue
        fields = body.split()
        if body[0].isspace():
            owner, rest = "@", fields
        else:
            owner, rest = fields[0], fields[1:]
        rest = rest[1:] if rest and rest[0] == "IN" else rest
        rtype = rest[0] if rest else ""
        if rtype == "SOA":
            soa += 1
            numbers = [f for f in rest if f.isdigit()]
            if not numbers or int(numbers[0]) != serial:
                problems.append(f"line {n}: SOA serial is not {serial}")
            continue
        if rtype == "NS":
            ns += 1
            continue
        if owner != "@" and not (is_dns_name(owner, wildcard=True) or rpz_ip(owner)):
            problems.append(f"line {n}: owner is neither a DNS name nor an rpz-ip: {owner!r}")
        if owner.endswith(".rpz-ip") and not rpz_ip(owner):
            problems.append(f"line {n}: malformed rpz-ip trigger {owner!r}")
        if rtype != "CNAME" or rest[1:] not in (
            [
                ".",
            ],
            ["*."],
            ["rpz-passthru."],
            ["rpz-drop."],
        ):
            problems.append(f"line {n}: not an RPZ action: {' '.join(rest)!r}")
        seen = types.setdefault(owner, set())
        if rtype in seen or (seen and "CNAME" in seen | {rtype}):
            problems.append(f"line {n}: {owner!r} already has a record (CNAME and other data)")
        seen.add(rtype)
    if soa != 1 or ns < 1 or ttl < 1:
        problems.append(f"{soa} SOA, {ns} NS, {ttl} $TTL: needs one SOA, an NS and a $TTL")
    return problems


# ipset ---------------------------------------------------------------------------------------


def check_ipset(data: bytes) -> list[str]:
    """``ipset restore`` commands: every ``add`` names a set created before it with the
    address's family, within ``maxelem``; ``swap`` and ``destroy`` name created sets."""
    problems: list[str] = []
    family: dict[str, int] = {}
    room: dict[str, int] = {}
    for n, line in _lines(data):
        words = line.split()
        if n == 0:
            problems.append(line)
        if not words or words[0].startswith("#"):
            continue
        cmd, args = words[0], words[1:]
        if cmd == "create" and len(args) >= 4 and args[1] == "hash:net":
            opts = dict(zip(args[2::2], args[3::2], strict=False))
            family[args[0]] = {"inet": 4, "inet6": 6}.get(opts.get("family", "inet"), 0)
            room[args[0]] = int(opts.get("maxelem", "65536"))
        elif cmd == "add" and len(args) >= 2 and args[0] in family:
            if not is_ip(args[1]):
                problems.append(f"line {n}: not an address or block: {args[1]!r}")
            elif ipaddress.ip_network(args[1]).version != family[args[0]]:
                problems.append(f"line {n}: {args[1]} is not of the family of {args[0]}")
            room[args[0]] -= 1
            if room[args[0]] < 0:
                problems.append(f"line {n}: {args[0]} is full (maxelem)")
        elif cmd in ("flush", "destroy") and len(args) == 1 and args[0] in family:
            continue
        elif cmd == "swap" and len(args) == 2 and all(a in family for a in args):
            continue
        else:
            problems.append(f"line {n}: not a command for created sets: {line!r}")
    return problems


# nginx ---------------------------------------------------------------------------------------


def check_nginx_deny(data: bytes) -> list[str]:
    """``deny <address|CIDR>;`` per line (no names, no host bits), comments after ``#``."""

    def ok(line: str) -> bool:
        if not line.strip() or line.startswith("#"):
            return True
        found = re.fullmatch(r"deny (\S+);", line)
        return bool(found) and is_ip(found[1])

    return each_line(data, ok, "deny <address>;")


# Suricata ------------------------------------------------------------------------------------


def _b64_text(line: str) -> bool:
    try:
        text = binascii.a2b_base64(line, strict_mode=True).decode()
    except (binascii.Error, ValueError):
        return False
    return bool(text) and base64.b64encode(text.encode()).decode() == line and text.isprintable()


def check_dataset(data: bytes, kind: str) -> list[str]:
    """A dataset: ``string`` base64 of printable text; hashes lower-case hex of their length;
    ``ip`` single addresses (a dataset takes no CIDR)."""
    if kind == "string":
        return each_line(data, _b64_text, "base64 text")
    if kind == "ip":
        return each_line(data, lambda line: is_ip(line, cidr=False), "an address")
    return each_line(data, lambda line: bool(re.fullmatch(rf"[0-9a-f]{{{HEX[kind]}}}", line)), kind)


def check_iprep(reputation: bytes, categories: bytes) -> list[str]:
    """Categories ``<id 1..60>,<name>,<description>``; reputation ``<ip|CIDR>,<id>,<1..127>``
    with every id in the categories file (Suricata's ``-T`` passes bad lines)."""
    problems: list[str] = []
    ids: set[str] = set()
    for n, line in _lines(categories):
        parts = line.split(",")
        if n == 0 or len(parts) != 3 or not parts[0].isdigit() or not 0 < int(parts[0]) <= 60:
            problems.append(f"categories line {n}: {line!r}")
        elif not re.fullmatch(r"[A-Za-z0-9_-]+", parts[1]) or parts[0] in ids:
            problems.append(f"categories line {n}: bad or repeated category {line!r}")
        else:
            ids.add(parts[0])
    for n, line in _lines(reputation):
        parts = line.split(",")
        ok = len(parts) == 3 and is_ip(parts[0]) and parts[1] in ids and parts[2].isdigit()
        if n == 0 or not ok or not 1 <= int(parts[2]) <= 127:
            problems.append(f"reputation line {n}: {line!r}")
    return problems


RULE = re.compile(r"^alert (\S+) (\S+) (\S+) -> (\S+) (\S+) \((.*)\)$")
FILE_OPTIONS = re.compile(r"(?:\bload |filemd5:|filesha1:|filesha256:)\s*([^;,\s]+)")


def check_rules(data: bytes, files: set[str]) -> list[str]:
    """Rules: ``alert`` with a header and options ending ``;``, ``msg`` and ``rev``, unique
    ``sid`` in the local range 1000000-1999999, every file it loads among ``files``."""
    problems: list[str] = []
    sids: set[int] = set()
    for n, line in _lines(data):
        if n == 0:
            problems.append(line)
        if not line or line.startswith("#"):
            continue
        found = RULE.match(line)
        options = found[6] if found else ""
        sid = re.search(r"\bsid:(\d+);", options)
        if not found or not options.endswith(";") or "msg:" not in options or not sid:
            problems.append(f"line {n}: not a rule: {line!r}")
            continue
        if not 1_000_000 <= int(sid[1]) <= 1_999_999 or int(sid[1]) in sids:
            problems.append(f"line {n}: sid {sid[1]} outside the local range or repeated")
        sids.add(int(sid[1]))
        problems += [
            f"line {n}: loads {f!r}, not published"
            for f in FILE_OPTIONS.findall(line)
            if f not in files
        ]
    return problems


# Zeek ----------------------------------------------------------------------------------------

ZEEK_HEADER = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url"
ZEEK_TYPES: dict[str, Callable[[str], bool]] = {
    "Intel::ADDR": lambda v: is_ip(v, cidr=False),
    "Intel::SUBNET": lambda v: is_ip(v) and "/" in v,
    "Intel::DOMAIN": is_dns_name,
    "Intel::URL": lambda v: not SCHEME.match(v) and bool(v) and " " not in v,
    "Intel::EMAIL": lambda v: "@" in v,
    "Intel::FILE_HASH": lambda v: bool(
        re.fullmatch(
            r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|"
            r"[0-9a-f]{128}",
            v,
        )
    ),
}


def check_zeek(data: bytes) -> list[str]:
    """The ``#fields`` header (single tabs), then five tab-separated fields per line, none
    empty (``-`` for unset), a known ``Intel::`` type and a value of that type (URLs without
    scheme)."""
    problems: list[str] = []
    for n, line in _lines(data):
        if n == 1:
            if line != ZEEK_HEADER:
                problems.append(f"line 1: not the #fields header: {line!r}")
            continue
        fields = line.split("\t")
        check = ZEEK_TYPES.get(fields[1]) if len(fields) == 5 else None
        if n == 0 or check is None or "" in fields or not check(fields[0]):
            problems.append(f"line {n}: not an intel item: {line!r}")
    return problems
