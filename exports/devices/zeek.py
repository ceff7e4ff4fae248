"""A Zeek Intelligence Framework file: ``#fields`` header, then one tab-separated indicator per
line with its type (``Intel::ADDR``, ``DOMAIN``, ``URL`` without scheme, ``EMAIL``,
``FILE_HASH``) and ``meta.source`` / ``meta.desc`` / ``meta.url``. Rules:
docs/formats/devices.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from exports.devices.common import (
    DeviceMeta,
    net_text,
    networks,
    one_line,
    wire_domain,
    wire_url,
    without_scheme,
)
from exports.model import IOCRecord

HEADER = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.desc\tmeta.url\n"
INTEL_TYPES = {
    "ipv4": "Intel::ADDR",
    "ipv6": "Intel::ADDR",
    "domain": "Intel::DOMAIN",
    "url": "Intel::URL",
    "email": "Intel::EMAIL",
    "md5": "Intel::FILE_HASH",
    "sha1": "Intel::FILE_HASH",
    "sha256": "Intel::FILE_HASH",
    "sha512": "Intel::FILE_HASH",
}
UNSET = "-"  # Zeek's unset field
EMPTY = "(empty)"  # Zeek's empty field


def indicator(r: IOCRecord) -> str | None:
    """The value as Zeek matches it, or None when it cannot be one (no tab, no line end)."""
    if r.type in ("ipv4", "ipv6"):
        nets = networks([r.value])
        value = net_text(nets[0]) if nets else None
    elif r.type == "domain":
        value = wire_domain(r.value)
    elif r.type == "url":
        url = wire_url(r.value)
        value = None if url is None else without_scheme(url)
    elif r.type in ("md5", "sha1", "sha256", "sha512"):
        value = r.value.lower()
    else:
        value = r.value
    return None if not value or value != one_line(value) or value in (UNSET, EMPTY) else value


def field(text: str) -> str:
    """Free text as one field: on one line, ``-`` when empty."""
    flat = one_line(text)
    return UNSET if flat in ("", UNSET, EMPTY) else flat


def _rows(records: Sequence[IOCRecord], meta: DeviceMeta) -> Iterator[str]:
    seen: set[tuple[str, str]] = set()
    for r in records:
        intel = INTEL_TYPES.get(r.type)
        value = indicator(r) if intel else None
        if intel is None or value is None or (value, intel) in seen:
            continue
        seen.add((value, intel))
        desc = field(r.context or r.article_title)
        yield f"{value}\t{intel}\t{meta.source_name}\t{desc}\t{field(r.article_url)}\n"


def intel(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    return [(HEADER + "".join(_rows(records, meta))).encode()]
