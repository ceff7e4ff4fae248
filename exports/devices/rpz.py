"""A DNS Response Policy Zone (RPZ) answering NXDOMAIN for the tier's domains (the name and
every name under it) and for answers that resolve to its addresses (``rpz-ip`` triggers).

The zone is written relative to its origin, which the resolver's configuration names
(``zone "rpz.socdef" { type primary; file "…"; };`` + ``response-policy { zone "rpz.socdef"; };``
in BIND, ``rpz:`` in Unbound). The SOA serial is the build's time in Unix seconds, so it rises
with every build. Rules: docs/formats/devices.md.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from exports.devices.common import Block, DeviceMeta, aggregate, networks, unique
from exports.devices.lists import domains
from exports.model import IOCRecord
from exports.timefmt import iso_z

TTL = 300
NXDOMAIN = "CNAME ."
# Room left for the origin the resolver appends: a trigger plus an origin of up to this many
# octets stays within DNS's 255-octet name limit.
ORIGIN_ROOM = 64
MAX_NAME = 253


def ip_trigger(block: Block) -> str:
    """The RPZ owner name of an address block: prefix length, then the address reversed
    (``198.51.100.7`` → ``32.7.100.51.198.rpz-ip``; IPv6 by 16-bit groups, the ``::`` run as
    ``zz``: ``2001:db8::1`` → ``128.1.zz.db8.2001.rpz-ip``)."""
    version, first, prefix = block
    if version == 4:
        groups = str(ipaddress.IPv4Address(first)).split(".")
    else:
        compressed = ipaddress.IPv6Address(first).compressed
        groups = _one_zz(["zz" if g == "" else g for g in compressed.split(":")])
    return ".".join([str(prefix), *reversed(groups), "rpz-ip"])


def _one_zz(groups: list[str]) -> list[str]:
    """``::`` at either end splits into two empty strings: keep one ``zz``."""
    out: list[str] = []
    for g in groups:
        if not (g == "zz" and out and out[-1] == "zz"):
            out.append(g)
    return out


def _fits(name: str) -> bool:
    return len(name) + 1 + ORIGIN_ROOM <= MAX_NAME


def rpz(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """The zone file: ``$TTL``, SOA (serial = build time), NS, then per domain ``name`` and
    ``*.name`` → ``CNAME .`` and per IP block its ``rpz-ip`` trigger → ``CNAME .``."""
    names = [d for d in domains([r for r in records if r.type == "domain"]) if _fits("*." + d)]
    ips = [r for r in records if r.type in ("ipv4", "ipv6")]
    nets = aggregate(networks(unique(r.value for r in ips)))
    head = [
        f"; {meta.source_name} response policy zone, tier {meta.tier}, "
        f"as of {iso_z(meta.generated_at)}",
        f"$TTL {TTL}",
        f"@ IN SOA localhost. hostmaster.localhost. ( {meta.generated_at} 3600 600 604800 {TTL} )",
        "  IN NS localhost.",
    ]
    body = [f"{owner} {NXDOMAIN}" for d in names for owner in (d, f"*.{d}")]
    body += [f"{ip_trigger(n)} {NXDOMAIN}" for n in nets]
    return ["".join(f"{line}\n" for line in head + body).encode()]
