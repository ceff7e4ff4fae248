"""What every device-file renderer shares: the file's context, values as devices see them on the
wire, and splitting a list that exceeds a device's entry limit.

A device file is rendered whole from a tier's records (newest first) by a function of this
signature: ``render(records, meta) -> list[bytes]``, one ``bytes`` per part (most files have
one part; a list a device cannot take in one piece is split, see :func:`split`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from exports.model import IOCRecord


@dataclass(frozen=True, slots=True)
class DeviceMeta:
    """The context of one device file: whose lookback it covers and as of when."""

    tier: str
    generated_at: int  # the build's time (Unix seconds); RPZ's SOA serial
    lookback_days: int
    source_name: str = "socdef"


DeviceRenderer = Callable[[Sequence[IOCRecord], DeviceMeta], list[bytes]]


def unique(values: Iterable[str]) -> list[str]:
    """``values`` without repeats, first occurrence kept (records are newest first)."""
    return list(dict.fromkeys(values))


def wire_domain(domain: str) -> str | None:
    """A domain as it travels in DNS: lower case, IDNA (``bücher.example`` →
    ``xn--bcher-kva.example``), no trailing dot. None when it cannot be one (an empty or
    over-long label, a name over 253 octets, a character IDNA refuses)."""
    name = domain.strip().rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2:
        return None
    if any(not 0 < len(label) <= 63 for label in labels):
        return None
    return ascii_name


# Printable ASCII a URL keeps as it is; everything else is percent-encoded as UTF-8.
URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%") + "%"


def wire_url(url: str) -> str | None:
    """A URL as it travels in HTTP: host in IDNA, every other non-ASCII or space byte of the
    path and query percent-encoded as UTF-8. None when the host cannot be a DNS name or IP."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    wire_host = _wire_host(host)
    if wire_host is None:
        return None
    netloc = wire_host if port is None else f"{wire_host}:{port}"
    path = quote(parts.path, safe=URL_SAFE)
    query = quote(parts.query, safe=URL_SAFE)
    return urlunsplit((parts.scheme.lower(), netloc, path, query, ""))


def _wire_host(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return wire_domain(host)
    return f"[{address}]" if address.version == 6 else str(address)


def without_scheme(url: str) -> str:
    """``http://a.example/x`` → ``a.example/x`` (PAN-OS, FortiGate, Zeek: no scheme)."""
    scheme, sep, rest = url.partition("://")
    return rest if sep and scheme.isalpha() else url


# An address block as plain integers: (IP version, first address, prefix length). The lists
# of a large tier hold hundreds of thousands of addresses; ``ipaddress`` objects cost about
# ten times more to parse and collapse than these (docs/formats/devices.md, "Aggregation").
Block = tuple[int, int, int]
BITS = {4: 32, 6: 128}
FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}


def parse_block(value: str) -> Block | None:
    """An IP address or CIDR value as a block (host bits cleared); None when it is neither."""
    text = value.strip()
    for version in (4, 6):
        try:
            packed = socket.inet_pton(FAMILY[version], text)
        except OSError:
            continue
        return version, int.from_bytes(packed, "big"), BITS[version]
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return net.version, int(net.network_address), net.prefixlen


def networks(values: Iterable[str]) -> list[Block]:
    """Each IP or CIDR value as a block, in order; values that are neither are left out."""
    return [b for b in map(parse_block, values) if b is not None]


def aggregate(blocks: Iterable[Block]) -> list[Block]:
    """The fewest CIDR blocks covering exactly ``blocks``: IPv4 then IPv6, each ascending (what
    ``ipaddress.collapse_addresses`` answers per family, tests/test_device_files.py)."""
    out: list[Block] = []
    for version in (4, 6):
        bits = BITS[version]
        spans = sorted(
            (first, first + (1 << (bits - prefix)) - 1)
            for v, first, prefix in blocks
            if v == version
        )
        for first, last in _merged(spans):
            out += [(version, start, prefix) for start, prefix in _cidrs(first, last, bits)]
    return out


def _merged(spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Sorted (first, last) spans with the touching or overlapping ones joined."""
    current: tuple[int, int] | None = None
    for first, last in spans:
        if current is not None and first <= current[1] + 1:
            current = (current[0], max(current[1], last))
            continue
        if current is not None:
            yield current
        current = (first, last)
    if current is not None:
        yield current


def _cidrs(first: int, last: int, bits: int) -> Iterator[tuple[int, int]]:
    """The CIDR blocks (start, prefix) exactly covering first..last, ascending."""
    while first <= last:
        aligned = (first & -first).bit_length() - 1 if first else bits
        step = min(aligned, (last - first + 1).bit_length() - 1)
        yield first, bits - step
        first += 1 << step


def address_text(version: int, address: int) -> str:
    """IPv4 dotted; IPv6 in ``ipaddress``'s compressed form (the C library writes some
    addresses as ``::0.1.0.0``)."""
    if version == 6:
        return str(ipaddress.IPv6Address(address))
    return socket.inet_ntop(socket.AF_INET, address.to_bytes(4, "big"))


def net_text(block: Block) -> str:
    """A single address without its prefix length, a block as CIDR."""
    version, first, prefix = block
    text = address_text(version, first)
    return text if prefix == BITS[version] else f"{text}/{prefix}"


def is_single(block: Block) -> bool:
    return block[2] == BITS[block[0]]


def lines(entries: Iterable[str]) -> bytes:
    return "".join(f"{entry}\n" for entry in entries).encode()


def split(entries: Sequence[str], max_entries: int, max_bytes: int = 0) -> list[bytes]:
    """``entries`` as parts of at most ``max_entries`` lines (and ``max_bytes`` bytes, when
    given), in order: part 1 holds the newest. Always at least one part (maybe empty)."""
    return list(_parts(entries, max_entries, max_bytes)) or [b""]


def _parts(entries: Sequence[str], max_entries: int, max_bytes: int) -> Iterator[bytes]:
    part: list[bytes] = []
    size = 0
    for entry in entries:
        line = f"{entry}\n".encode()
        if part and (len(part) >= max_entries or (max_bytes and size + len(line) > max_bytes)):
            yield b"".join(part)
            part, size = [], 0
        part.append(line)
        size += len(line)
    if part:
        yield b"".join(part)


def one_line(text: str) -> str:
    """Free text on one line: every run of whitespace (tabs, line ends) one space."""
    return " ".join(text.split())
