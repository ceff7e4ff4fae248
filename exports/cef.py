"""CEF events, one line per record, bare or framed as RFC 5424 syslog messages.

    CEF:0|socdef|socdef|1|ioc:<type>|<name>|<severity>|<extension>

Escaping follows the CEF specification: in header fields ``\\`` and ``|``; in extension values
``\\``, ``=`` and line breaks (``\\n``, ``\\r``). Other control characters are dropped, and
surrounding whitespace is trimmed (a value runs until the next `` key=``, so parsers disagree
about edge spaces). Header fields are fixed strings free of ``\\``, ``|`` and ``=``, which some
parsers cannot read even escaped. An IPv6 indicator goes in ``c6a1``: ``src``/``dst`` are IPv4.
"""

from __future__ import annotations

import re
from functools import lru_cache

from exports.model import IOCRecord
from exports.timefmt import iso_z
from worker.contract.stix_common import CONFIDENCE_SCORE

VENDOR, PRODUCT, VERSION = "socdef", "socdef", "1"
SEVERITY = {"high": 8, "medium": 5, "low": 3}  # CEF bands: 7-8 High, 4-6 Medium, 0-3 Low
# RFC 5424 PRI: facility local0 (16), severity warning / notice / informational.
SYSLOG_PRI = {level: 16 * 8 + sev for level, sev in (("high", 4), ("medium", 5), ("low", 6))}
SYSLOG_APP, SYSLOG_MSGID = "socdef", "ioc"
BOM = "\ufeff"  # RFC 5424 §6.4: a UTF-8 MSG starts with the byte order mark
MSG_MAX = 1023  # ``msg`` is 1023 characters at most
CS_MAX = 4000  # ``csN`` strings

# our type → (extension key for the value, the event name)
VALUE_KEYS: dict[str, tuple[str, str]] = {
    "ipv4": ("dst", "IPv4 address indicator"),
    "ipv6": ("c6a1", "IPv6 address indicator"),
    "domain": ("dhost", "Domain indicator"),
    "url": ("request", "URL indicator"),
    "md5": ("fileHash", "MD5 file hash indicator"),
    "sha1": ("fileHash", "SHA-1 file hash indicator"),
    "sha256": ("fileHash", "SHA-256 file hash indicator"),
    "sha512": ("fileHash", "SHA-512 file hash indicator"),
    "email": ("suser", "E-mail sender indicator"),
    "cve": ("flexString1", "Vulnerability reference"),
    "mitre_attack": ("flexString1", "ATT&CK technique reference"),
}
VALUE_LABELS = {
    "ipv6": ("c6a1Label", "indicator"),
    "cve": ("flexString1Label", "cve"),
    "mitre_attack": ("flexString1Label", "mitreTechnique"),
}
_DROP = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(text: str) -> str:
    """Control characters other than TAB, LF and CR dropped (a fast path for plain text)."""
    return text if text.isprintable() else _DROP.sub("", text)


def escape_header(text: str) -> str:
    """A header field: ``\\`` and ``|`` escaped; line breaks cannot appear in a header."""
    flat = _clean(text).replace("\r", " ").replace("\n", " ")
    return flat.replace("\\", "\\\\").replace("|", "\\|")


def escape_value(text: str, limit: int = 0) -> str:
    """An extension value: ``\\``, ``=``, CR and LF escaped; ``limit`` characters at most."""
    clean = _clean(text).strip()
    if limit and len(clean) > limit:
        clean = clean[:limit].rstrip()
    return clean.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


HEADERS = {
    (type_, level): "|".join(
        (
            "CEF:0",
            VENDOR,
            PRODUCT,
            VERSION,
            f"ioc:{type_}",
            escape_header(name),
            str(SEVERITY[level]),
        )
    )
    + "|"
    for type_, (_, name) in VALUE_KEYS.items()
    for level in SEVERITY
}


def _optional(pairs: tuple[tuple[str, str, str], ...]) -> str:
    """`` csNLabel=label csN=value`` for each non-empty value (an empty value would swallow
    the next key in common parsers)."""
    out = []
    for key, label, text in pairs:
        value = escape_value(text, CS_MAX)
        if value:
            out.append(f" {key}Label={label} {key}={value}")
    return "".join(out)


@lru_cache(maxsize=4096)
def _article(category: str, feed: str, title: str, url: str) -> str:
    """The part shared by every indicator of an article, rendered once."""
    return f" cat={escape_value(category)}" + _optional(
        (("cs4", "sourceFeed", feed), ("cs5", "articleTitle", title), ("cs6", "articleUrl", url))
    )


@lru_cache(maxsize=4096)
def _labels(tags: tuple[str, ...], techniques: tuple[str, ...]) -> str:
    return _optional(
        (("cs2", "tags", ",".join(tags)), ("cs3", "mitreTechniques", ",".join(techniques)))
    )


def extension(r: IOCRecord) -> str:
    key, _ = VALUE_KEYS[r.type]
    label = VALUE_LABELS.get(r.type)
    context = escape_value(r.context, MSG_MAX)
    return "".join(
        (
            f"{key}={escape_value(r.value)}",
            f" {label[0]}={label[1]}" if label else "",
            f" externalId={r.id} cnt={r.sightings} start={r.first_seen}000 end={r.last_seen}000"
            f" rt={r.last_seen}000 cn1Label=confidenceScore cn1={CONFIDENCE_SCORE[r.confidence]}"
            f" cs1Label=confidence cs1={r.confidence}",
            _article(r.category, r.feed_name, r.article_title, r.article_url),
            _labels(r.tags, r.mitre_techniques),
            f" msg={context}" if context else "",
        )
    )


def cef_event(r: IOCRecord) -> str:
    return HEADERS[(r.type, r.confidence)] + extension(r)


def render_line(r: IOCRecord) -> bytes:
    return (cef_event(r) + "\n").encode()


def syslog_head(r: IOCRecord) -> str:
    return f"<{SYSLOG_PRI[r.confidence]}>1 {iso_z(r.last_seen)} - {SYSLOG_APP} - {SYSLOG_MSGID} - "


def render_syslog_line(r: IOCRecord) -> bytes:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG``: RFC 5424, one per line."""
    return (syslog_head(r) + BOM + cef_event(r) + "\n").encode()


def render_lines(records: list[IOCRecord]) -> tuple[list[bytes], list[bytes]]:
    """``render_line`` and ``render_syslog_line`` of every record, each event rendered once."""
    bare, framed = [], []
    for r in records:
        line = (cef_event(r) + "\n").encode()
        bare.append(line)
        framed.append((syslog_head(r) + BOM).encode() + line)
    return bare, framed
