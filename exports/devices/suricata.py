"""Suricata 7 inputs: datasets (one value per line: base64 for ``type string``, hex for
hashes, addresses for ``type ip``), an IP-reputation file with its categories file, and a rule
file that loads them. Rules: docs/formats/devices.md.

The rule file refers to the other files by their download names; place them next to it (the
directory of ``default-rule-path``) and point ``reputation-categories-file`` /
``reputation-files`` at the two reputation files.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from exports.devices.common import DeviceMeta, is_single, net_text, networks, unique, wire_url
from exports.devices.lists import domains
from exports.model import IOCRecord

# iprep: one category, a score per confidence (1..127; rules compare with ``>``)
CATEGORY_ID = 1
CATEGORY = "socdef"
SCORES = {"high": 100, "medium": 60, "low": 30}
# local rule ids (1000000-1999999 are for local use); each rule's sid is BASE + its index
SID_BASE = 1_960_000

# Download names of the files the rule file loads (worker.contract.device_files names them the same).
DOMAIN_SET = "suricata-domain.lst"
MD5_LIST = "suricata-md5.lst"
SHA1_LIST = "suricata-sha1.lst"
SHA256_LIST = "suricata-sha256.lst"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def dataset_domain(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """``type string`` dataset of domains: each name in its DNS form, base64-encoded."""
    return ["".join(f"{b64(d)}\n" for d in domains(records)).encode()]


def dataset_url(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """``type string`` dataset of URLs (their wire form, scheme included), base64-encoded."""
    found = unique(u for u in (wire_url(r.value) for r in records) if u is not None)
    return ["".join(f"{b64(u)}\n" for u in found).encode()]


def dataset_hash(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """``type md5`` / ``type sha256`` dataset, or a ``filemd5`` / ``filesha1`` / ``filesha256``
    list: lower-case hex, one per line."""
    return ["".join(f"{v}\n" for v in unique(r.value.lower() for r in records)).encode()]


def dataset_ip(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """``type ip`` dataset: single IPv4 and IPv6 addresses (a dataset takes no CIDR)."""
    nets = networks(unique(r.value for r in records))
    single = unique(net_text(n) for n in nets if is_single(n))
    return ["".join(f"{a}\n" for a in single).encode()]


def iprep_categories(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """The categories file: ``<id>,<short name>,<description>``."""
    return [f"{CATEGORY_ID},{CATEGORY},{meta.source_name} indicators\n".encode()]


def iprep(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """The reputation file: ``<address or CIDR>,<category id>,<score>``, score by confidence
    (high 100, medium 60, low 30); an address listed twice keeps its first (newest) score."""
    scored: dict[str, int] = {}
    for r in records:
        for net in networks([r.value]):
            scored.setdefault(net_text(net), SCORES.get(r.confidence, SCORES["low"]))
    return ["".join(f"{ip},{CATEGORY_ID},{s}\n" for ip, s in scored.items()).encode()]


def _rule(index: int, proto: str, msg: str, match: str) -> str:
    return (
        f'alert {proto} any any -> any any (msg:"SOCDEF {msg}"; {match} '
        f"classtype:trojan-activity; sid:{SID_BASE + index}; rev:1;)"
    )


def _domain_match(buffer: str) -> str:
    return f"{buffer}; dataset:isset,socdef-domain,type string,load {DOMAIN_SET};"


RULES = (
    ("dns", "domain in DNS query", _domain_match("dns.query")),
    ("tls", "domain in TLS SNI", _domain_match("tls.sni")),
    ("http", "domain in HTTP Host", _domain_match("http.host")),
    ("ip", "IP reputation destination", f"iprep:dst,{CATEGORY},>,0;"),
    ("ip", "IP reputation source", f"iprep:src,{CATEGORY},>,0;"),
    ("http", "file MD5", f"filemd5:{MD5_LIST};"),
    ("http", "file SHA1", f"filesha1:{SHA1_LIST};"),
    ("http", "file SHA256", f"filesha256:{SHA256_LIST};"),
)


def rules(records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """The rule file: domains in DNS queries, TLS SNI and HTTP Host (the domain dataset),
    traffic to or from a listed address (iprep), files by MD5, SHA1 and SHA256."""
    head = f"# {meta.source_name} rules for Suricata 7, tier {meta.tier}\n"
    body = "".join(_rule(i, *rule) + "\n" for i, rule in enumerate(RULES, start=1))
    return [(head + body).encode()]
