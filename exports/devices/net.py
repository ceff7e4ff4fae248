"""Address blocklists for Linux hosts: an ``ipset restore`` script and an nginx ``deny``
include. Both take the tier's IPv4 and IPv6 addresses aggregated to CIDR blocks
(``exports.devices.common.aggregate``); docs/formats/devices.md shows how to load them.
"""

from __future__ import annotations

from collections.abc import Sequence

from exports.devices.common import Block, DeviceMeta, aggregate, net_text, networks, unique
from exports.model import IOCRecord
from exports.timefmt import iso_z

IPSET_V4 = "socdef-v4"
IPSET_V6 = "socdef-v6"
IPSET_MIN_MAXELEM = 65_536  # ipset's default; a larger list gets the next power of two


def blocks(records: Sequence[IOCRecord]) -> list[Block]:
    return aggregate(networks(unique(r.value for r in records)))


def maxelem(count: int) -> int:
    """Room for ``count`` members: the default 65536, or the next power of two above it."""
    size = IPSET_MIN_MAXELEM
    while size < count:
        size *= 2
    return size


def _ipset_family(name: str, family: str, nets: list[Block]) -> list[str]:
    """Load ``name`` atomically: fill ``<name>-new``, swap it in, drop the old members."""
    new = f"{name}-new"
    size = maxelem(len(nets))
    create = f"hash:net family {family} maxelem {size} -exist"
    return [
        f"create {name} {create}",
        f"create {new} {create}",
        f"flush {new}",
        *(f"add {new} {net_text(n)} -exist" for n in nets),
        f"swap {new} {name}",
        f"destroy {new}",
    ]


def ipset(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """An ``ipset restore`` script: sets ``socdef-v4`` (family inet) and ``socdef-v6``
    (family inet6) of type ``hash:net``, each refilled through a temporary set and ``swap``, so
    a rule matching the set never sees it half loaded."""
    nets = blocks(records)
    v4 = [n for n in nets if n[0] == 4]
    v6 = [n for n in nets if n[0] == 6]
    script = [
        f"# {meta.source_name} addresses, tier {meta.tier}, as of {iso_z(meta.generated_at)}",
        "# load with: ipset restore -f <this file>",
        *_ipset_family(IPSET_V4, "inet", v4),
        *_ipset_family(IPSET_V6, "inet6", v6),
    ]
    return ["".join(f"{line}\n" for line in script).encode()]


def nginx_deny(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """An nginx include of ``deny <address|CIDR>;`` lines for an ``http``, ``server`` or
    ``location`` block (no ``allow all;``: the including block decides the rest)."""
    head = f"# {meta.source_name} addresses, tier {meta.tier}, as of {iso_z(meta.generated_at)}\n"
    body = "".join(f"deny {net_text(n)};\n" for n in blocks(records))
    return [(head + body).encode()]
