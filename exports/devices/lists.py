"""Line lists for firewalls and resolvers: plain values per type, a mixed IP list (optionally
aggregated to CIDR blocks), PAN-OS external dynamic lists, FortiGate threat feeds and a hosts
file. Every function is a ``DeviceRenderer`` (``exports.devices.common``); docs/formats/devices.md
gives each file's rules and where they come from.
"""

from __future__ import annotations

from collections.abc import Sequence

from exports.devices.common import (
    DeviceMeta,
    aggregate,
    lines,
    net_text,
    networks,
    split,
    unique,
    wire_domain,
    wire_url,
    without_scheme,
)
from exports.model import IOCRecord
from exports.timefmt import iso_z

# PAN-OS (7.1 web interface help, "Objects > External Dynamic Lists"): per firewall at most
# 50,000 IP addresses (150,000 on PA-5000/PA-7000), 50,000 URLs and 50,000 domains over all
# lists; entries past the limit are skipped with a System log. A list is split in parts of
# this size, newest first, so the parts can be referenced in order of importance.
PANOS_MAX_ENTRIES = 50_000
PANOS_MAX_DOMAIN = 255  # characters of one domain entry
PANOS_WILDCARDS = ("*", "^")  # wildcard tokens in PAN-OS URL and domain entries
# FortiGate before 7.4.4: a threat feed holds at most 128K lines and 10 MB; later versions
# cap per feed type globally. Parts of at most this many lines and bytes load on every version.
FORTIGATE_MAX_LINES = 128_000
FORTIGATE_MAX_BYTES = 10_000_000


def values(records: Sequence[IOCRecord]) -> list[str]:
    return unique(r.value for r in records)


def plain(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """One value per line, as published, newest first."""
    return [lines(values(records))]


def ip_list(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """IPv4 and IPv6 addresses in one list, newest first."""
    return [lines(unique(net_text(n) for n in networks(values(records))))]


def ip_aggregated(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """The same addresses as the fewest CIDR blocks covering exactly them: IPv4 then IPv6,
    ascending."""
    return [lines(net_text(n) for n in aggregate(networks(values(records))))]


def domains(records: Sequence[IOCRecord]) -> list[str]:
    """Domains as DNS carries them (IDNA, lower case); names DNS cannot carry are left out."""
    return unique(d for d in (wire_domain(r.value) for r in records) if d is not None)


def urls_without_scheme(records: Sequence[IOCRecord]) -> list[str]:
    """URLs in their wire form without ``scheme://``; URLs holding PAN-OS wildcard tokens
    (``*``, ``^``) are left out: a device would read them as patterns."""
    out = (wire_url(r.value) for r in records)
    bare = (without_scheme(u) for u in out if u is not None)
    return unique(u for u in bare if not any(w in u for w in PANOS_WILDCARDS))


def edl_ip(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """PAN-OS IP list: addresses and CIDR blocks (aggregated), no comments."""
    return split([net_text(n) for n in aggregate(networks(values(records)))], PANOS_MAX_ENTRIES)


def edl_domain(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """PAN-OS domain list: one domain per line, no scheme, at most 255 characters."""
    found = [d for d in domains(records) if len(d) <= PANOS_MAX_DOMAIN]
    return split(found, PANOS_MAX_ENTRIES)


def edl_url(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """PAN-OS URL list: URLs without ``http://`` / ``https://``."""
    return split(urls_without_scheme(records), PANOS_MAX_ENTRIES)


def fortigate_ip(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """FortiGate IP address threat feed: addresses and subnets (aggregated)."""
    entries = [net_text(n) for n in aggregate(networks(values(records)))]
    return split(entries, FORTIGATE_MAX_LINES, FORTIGATE_MAX_BYTES)


def fortigate_domain(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """FortiGate domain name threat feed: one domain per line."""
    return split(domains(records), FORTIGATE_MAX_LINES, FORTIGATE_MAX_BYTES)


def fortigate_url(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """FortiGate FortiGuard category (URL) threat feed: one URL per line, without scheme."""
    return split(urls_without_scheme(records), FORTIGATE_MAX_LINES, FORTIGATE_MAX_BYTES)


def fortigate_hash(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """FortiGate malware hash threat feed, one hash type per file: ``<hex>`` per line."""
    found = unique(r.value.lower() for r in records)
    return split(found, FORTIGATE_MAX_LINES, FORTIGATE_MAX_BYTES)


HOSTS_SINK = "0.0.0.0"


def hosts(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """A hosts file: ``0.0.0.0 <domain>`` per domain (exact names only, as hosts files
    match), after a comment naming the feed, the tier and the build time."""
    head = (
        f"# {meta.source_name} blocked domains, tier {meta.tier}, "
        f"last {meta.lookback_days} day(s), as of {iso_z(meta.generated_at)}\n"
    )
    return [head.encode() + lines(f"{HOSTS_SINK} {d}" for d in domains(records))]
