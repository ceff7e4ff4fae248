"""The device files: one record per file a device loads as it is (data only, standard library
only), like ``worker.contract.formats`` for the list formats.

Every build writes each file per tier from the tier's records (its whole lookback, no row
cap) under ``devices/<tier>/<name>`` (parts of a split list: ``<stem>-<n>.<ext>``) and the
tier's index ``devices/<tier>/index.json``; the worker serves them at
``/api/v1/feeds/<name>`` and lists them at ``/api/v1/feeds`` (``worker.endpoints.iocs``). The
renderer of each is named by its dotted path (``exports.devices.*``),
so the worker reads this table without importing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.contract.layout import IOC_TYPES

TEXT = "text/plain; charset=utf-8"
DNS_ZONE = "text/dns"  # RFC 4027: a DNS master file
ROUTE = "/api/v1/feeds"
PREFIX = "devices"
IP_TYPES = ("ipv4", "ipv6")
FORMAT_NAMES = (
    "plain",
    "ip",
    "edl-ip",
    "edl-domain",
    "edl-url",
    "fortigate",
    "hosts",
    "rpz",
    "ipset",
    "nginx-deny",
    "suricata-dataset",
    "suricata-iprep",
    "suricata-rules",
    "zeek-intel",
)


@dataclass(frozen=True, slots=True)
class DeviceFile:
    """One file a device fetches: its download name, what it holds, and its renderer."""

    name: str  # download name: the URL's last segment and the Content-Disposition file name
    format: str  # one of FORMAT_NAMES
    types: tuple[str, ...]  # the indicator types it is rendered from
    renderer: str  # dotted path of a ``DeviceRenderer`` (``exports.devices.common``)
    media_type: str = TEXT
    scope: str = "read:iocs"  # the key scope that may fetch it
    label: str = ""  # its line on the site's download page

    @property
    def type(self) -> str | None:
        """The indicator type in the index: the one type it holds, or None for mixed files."""
        return self.types[0] if len(self.types) == 1 else None


def part_name(name: str, part: int) -> str:
    """The download name of part ``part`` (1-based) of a split file: ``edl-ip-2.txt``."""
    if part == 1:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{part}.{ext}" if dot else f"{name}-{part}"


PART = re.compile(r"^(?P<stem>.+)-(?P<part>[2-9]|[1-9][0-9]+)(?P<ext>\.[^.]+)?$")


def file_of(name: str) -> DeviceFile | None:
    """The device file a download name (a part's too: ``edl-ip-2.txt``) belongs to."""
    found = BY_NAME.get(name)
    if found is not None:
        return found
    part = PART.match(name)
    return BY_NAME.get(part["stem"] + (part["ext"] or "")) if part else None


def key(tier: str, name: str) -> str:
    return f"{PREFIX}/{tier}/{name}"


def index_key(tier: str) -> str:
    return f"{PREFIX}/{tier}/index.json"


L = "exports.devices.lists."
S = "exports.devices.suricata."
HASHES = ("md5", "sha1", "sha256")

DEVICE_FILES: tuple[DeviceFile, ...] = (
    *(
        DeviceFile(f"{t}.txt", "plain", (t,), L + "plain", label=f"{t} values, one per line")
        for t in IOC_TYPES
    ),
    DeviceFile("ip.txt", "ip", IP_TYPES, L + "ip_list", label="IPv4 and IPv6 addresses"),
    DeviceFile(
        "ip-cidr.txt", "ip", IP_TYPES, L + "ip_aggregated", label="the same, aggregated to CIDR"
    ),
    DeviceFile("edl-ip.txt", "edl-ip", IP_TYPES, L + "edl_ip", label="PAN-OS EDL, IP list"),
    DeviceFile(
        "edl-domain.txt", "edl-domain", ("domain",), L + "edl_domain", label="PAN-OS EDL, domains"
    ),
    DeviceFile("edl-url.txt", "edl-url", ("url",), L + "edl_url", label="PAN-OS EDL, URLs"),
    DeviceFile(
        "fortigate-ip.txt", "fortigate", IP_TYPES, L + "fortigate_ip", label="FortiGate, IPs"
    ),
    DeviceFile(
        "fortigate-domain.txt",
        "fortigate",
        ("domain",),
        L + "fortigate_domain",
        label="FortiGate, domains",
    ),
    DeviceFile(
        "fortigate-url.txt", "fortigate", ("url",), L + "fortigate_url", label="FortiGate, URLs"
    ),
    *(
        DeviceFile(
            f"fortigate-{h}.txt", "fortigate", (h,), L + "fortigate_hash", label=f"FortiGate, {h}"
        )
        for h in HASHES
    ),
    DeviceFile("hosts.txt", "hosts", ("domain",), L + "hosts", label="hosts file (0.0.0.0)"),
    DeviceFile(
        "rpz.zone",
        "rpz",
        ("domain", *IP_TYPES),
        "exports.devices.rpz.rpz",
        DNS_ZONE,
        label="DNS response policy zone",
    ),
    DeviceFile(
        "ipset.restore",
        "ipset",
        IP_TYPES,
        "exports.devices.net.ipset",
        label="ipset restore script (v4 and v6 sets)",
    ),
    DeviceFile(
        "nginx-deny.conf",
        "nginx-deny",
        IP_TYPES,
        "exports.devices.net.nginx_deny",
        label="nginx deny include",
    ),
    DeviceFile(
        "suricata-domain.lst",
        "suricata-dataset",
        ("domain",),
        S + "dataset_domain",
        label="Suricata dataset, domains (base64)",
    ),
    DeviceFile(
        "suricata-url.lst",
        "suricata-dataset",
        ("url",),
        S + "dataset_url",
        label="Suricata dataset, URLs (base64)",
    ),
    DeviceFile(
        "suricata-ip.lst",
        "suricata-dataset",
        IP_TYPES,
        S + "dataset_ip",
        label="Suricata dataset, IP addresses",
    ),
    *(
        DeviceFile(
            f"suricata-{h}.lst",
            "suricata-dataset",
            (h,),
            S + "dataset_hash",
            label=f"Suricata {h} list (hex)",
        )
        for h in HASHES
    ),
    DeviceFile(
        "suricata-iprep.list",
        "suricata-iprep",
        IP_TYPES,
        S + "iprep",
        label="Suricata IP reputation",
    ),
    DeviceFile(
        "suricata-iprep-categories.txt",
        "suricata-iprep",
        IP_TYPES,
        S + "iprep_categories",
        label="Suricata IP reputation categories",
    ),
    DeviceFile(
        "suricata.rules",
        "suricata-rules",
        ("domain", *IP_TYPES, *HASHES),
        S + "rules",
        label="Suricata rules loading the files above",
    ),
    DeviceFile(
        "zeek-intel.dat",
        "zeek-intel",
        ("ipv4", "ipv6", "domain", "url", "email", *HASHES, "sha512"),
        "exports.devices.zeek.intel",
        label="Zeek intel file",
    ),
)

BY_NAME: dict[str, DeviceFile] = {f.name: f for f in DEVICE_FILES}
