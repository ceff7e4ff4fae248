"""STIX 2.1: each record as its STIX object(s), one line per record, each object followed by ``,``.

A record becomes one object, plus relationships that need nothing but the record itself:

* ipv4, ipv6, domain, url, md5, sha1, sha256, sha512, email → ``indicator`` with a STIX pattern,
  plus one ``indicates`` relationship to the ``attack-pattern`` of every ATT&CK id that the
  record's articles mention (``mitre_techniques``);
* cve → ``vulnerability`` (external reference ``cve``), plus one ``related-to`` relationship to
  each of those ``attack-pattern`` objects;
* mitre_attack → ``attack-pattern`` named as ATT&CK names the technique (the bundled table,
  ``exports/attack.py``; the id where the table lacks it), with external reference
  ``mitre-attack`` (``external_id`` and URL), so TIPs merge it with the technique they hold.

Ids are deterministic: the main object reuses the record's UUIDv5 (``indicator--<record id>``),
so the JSON feed's ``id`` and the STIX id agree; an ``attack-pattern`` id depends only on the
technique id, which is what lets an indicator name its technique without seeing that record;
relationship ids are UUIDv5 of (type, source, target) in our namespace. Timestamps are
``created`` = ``valid_from`` = ``first_seen``, ``valid_until`` the record's, and ``modified`` the
time of its state (``exports.model.state_time``: ``last_seen`` while active, ``valid_until``
once expired), in milliseconds. A suppressed or withdrawn record is a new version of the same
objects with ``revoked: true`` (docs/lifecycle.md).
Every object carries the record's TLP 2.0 marking, its source's (``sources.toml``); the
edge may swap it for a requested level without rendering (``worker/endpoints/stix.py``).

``render_objects`` hands a record's objects over with their boundaries (type, id and bytes of
each), the main object first, then its relationships in ``mitre_techniques`` order; the line is
their bytes joined. The TAXII build takes the objects as they are and never parses the line.

Plain dicts and orjson: the ``stix2`` object model is two orders of magnitude slower and this
runs once per record of every build (docs/performance.md).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from functools import lru_cache
from itertools import accumulate
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import orjson

from exports.attack import technique_name
from exports.model import IOCRecord, state_time, taken_back
from worker.contract.stix_common import (
    CONFIDENCE_SCORE,
    IDENTITY_ID,
    STIX_NAMESPACE,
    TLP_IDS,
)

# The namespace of record ids (generator.store.records.IOC_NAMESPACE; a test pins the two together):
# an attack-pattern's id is its mitre_attack record's id, computable from the technique alone.
RECORD_NAMESPACE = uuid.UUID("6f1c5a3e-2d4b-5c8e-9a7f-0b1d2e3f4a5b")

# Object path of each indicator type. Hash names with a hyphen must be quoted in the path.
PATTERN_PATHS = {
    "ipv4": "ipv4-addr:value",
    "ipv6": "ipv6-addr:value",
    "domain": "domain-name:value",
    "url": "url:value",
    "email": "email-addr:value",
    "md5": "file:hashes.MD5",
    "sha1": "file:hashes.'SHA-1'",
    "sha256": "file:hashes.'SHA-256'",
    "sha512": "file:hashes.'SHA-512'",
}
NAMES = {
    "ipv4": "Malicious IPv4 Address",
    "ipv6": "Malicious IPv6 Address",
    "domain": "Malicious Domain",
    "url": "Malicious URL",
    "email": "Malicious Email Address",
    "md5": "Malicious File (MD5)",
    "sha1": "Malicious File (SHA-1)",
    "sha256": "Malicious File (SHA-256)",
    "sha512": "Malicious File (SHA-512)",
}
CVE_ID = re.compile(r"CVE-\d{4}-(0\d{3}|[1-9]\d{3,})")  # the schema's rule for source "cve"
TECHNIQUE_ID = re.compile(r"T\d{4}(\.\d{3})?")
RESERVED_SOURCE = re.compile(r"^((cve)|(capec))$")  # source names the schema reserves
AUTHORITY = re.compile(
    r"(?:[A-Za-z0-9\-._~%!$&'()*+,;=:]*@)?"
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?"
)
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
PATH_SAFE = "%!$&'()*+,;=:@/"  # RFC 3986 pchar + "/" (unreserved are always kept)
QUERY_SAFE = PATH_SAFE + "?"


def escape_literal(value: str) -> str:
    """A pattern string literal's body: the grammar's two escapes, backslash first."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern(type_: str, value: str) -> str:
    return f"[{PATTERN_PATHS[type_]} = '{escape_literal(value)}']"


@lru_cache(maxsize=8192)
def timestamp(ts: int) -> str:
    """STIX timestamps: UTC, millisecond precision, ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid5(namespace: bytes, name: str) -> str:
    """``str(uuid.uuid5(UUID(bytes=namespace), name))`` without building ``uuid.UUID`` objects."""
    x = hashlib.sha1(namespace + name.encode()).hexdigest()
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


_RECORD_NS = RECORD_NAMESPACE.bytes
_STIX_NS = STIX_NAMESPACE.bytes


@lru_cache(maxsize=4096)
def attack_pattern_id(technique: str) -> str:
    return f"attack-pattern--{uuid5(_RECORD_NS, f'mitre_attack:{technique}')}"


def relationship_id(kind: str, source: str, target: str) -> str:
    return f"relationship--{uuid5(_STIX_NS, f'{kind}:{source}:{target}')}"


def to_uri(url: str) -> str | None:
    """``url`` as an RFC 3986 URI (non-ASCII and stray characters percent-encoded), or None."""
    try:
        parts = urlsplit(BAD_PERCENT.sub("%25", url.strip()))
    except ValueError:
        return None
    netloc = quote(parts.netloc, safe="%!$&'()*+,;=:@[]")
    if not SCHEME.fullmatch(parts.scheme) or not netloc or not AUTHORITY.fullmatch(netloc):
        return None
    out = f"{parts.scheme}://{netloc}" + quote(parts.path, safe=PATH_SAFE)
    if parts.query:
        out += "?" + quote(parts.query, safe=QUERY_SAFE)
    if parts.fragment:
        out += "#" + quote(parts.fragment, safe=QUERY_SAFE)
    return out


def article_reference(r: IOCRecord) -> dict[str, str]:
    """Where the record came from: the latest article that reported it (shared, read-only)."""
    return _article_reference(r.feed_name, r.article_title, r.article_id, r.article_url)


@lru_cache(maxsize=4096)
def _article_reference(feed: str, title: str, article_id: str, url: str) -> dict[str, str]:
    source = feed or "socdef"
    if RESERVED_SOURCE.search(source):  # "cve"/"capec" would demand a CVE/CAPEC external_id
        source = f"feed {source}"
    ref = {"source_name": source, "description": title, "external_id": article_id}
    uri = to_uri(url)
    if uri:
        ref["url"] = uri
    return ref


def _description(r: IOCRecord) -> str:
    return r.context or f"Reported by {r.feed_name}: {r.article_title}"


def _common(r: IOCRecord, stix_type: str) -> dict[str, Any]:
    return {
        "type": stix_type,
        "spec_version": "2.1",
        "id": f"{stix_type}--{r.id}",
        "created": timestamp(r.first_seen),
        "modified": timestamp(state_time(r)),
        "created_by_ref": IDENTITY_ID,
    }


def _tail(obj: dict[str, Any], r: IOCRecord, refs: list[dict[str, str]]) -> dict[str, Any]:
    if r.tags:
        obj["labels"] = list(r.tags)
    obj["confidence"] = CONFIDENCE_SCORE[r.confidence]
    obj["external_references"] = refs
    if taken_back(r):
        obj["revoked"] = True
    obj["object_marking_refs"] = [TLP_IDS[r.tlp]]
    return obj


def indicator(r: IOCRecord) -> dict[str, Any]:
    obj = _common(r, "indicator")
    obj["name"] = f"{NAMES[r.type]} - {r.value}"
    obj["description"] = _description(r)
    obj["indicator_types"] = ["malicious-activity"]
    obj["pattern"] = pattern(r.type, r.value)
    obj["pattern_type"] = "stix"
    obj["pattern_version"] = "2.1"
    obj["valid_from"] = obj["created"]
    if r.valid_until > r.first_seen:
        obj["valid_until"] = timestamp(r.valid_until)
    return _tail(obj, r, [article_reference(r)])


def vulnerability(r: IOCRecord) -> dict[str, Any]:
    obj = _common(r, "vulnerability")
    obj["name"] = r.value
    obj["description"] = _description(r)
    refs = [article_reference(r)]
    if CVE_ID.fullmatch(r.value):
        url = f"https://www.cve.org/CVERecord?id={r.value}"
        refs.insert(0, {"source_name": "cve", "external_id": r.value, "url": url})
    return _tail(obj, r, refs)


def attack_pattern(r: IOCRecord) -> dict[str, Any]:
    obj = _common(r, "attack-pattern")
    obj["name"] = technique_name(r.value) or r.value  # ATT&CK's name, as TIPs match it
    obj["description"] = _description(r)
    ref = {"source_name": "mitre-attack", "external_id": r.value}
    if TECHNIQUE_ID.fullmatch(r.value):
        ref["url"] = f"https://attack.mitre.org/techniques/{r.value.replace('.', '/')}/"
    return _tail(obj, r, [ref, article_reference(r)])


RELATIONSHIP_KINDS = {"cve": "related-to", "mitre_attack": None}  # indicators: "indicates"
RELATIONSHIP_HEAD = '{"type":"relationship","spec_version":"2.1","id":"'


def relationships(r: IOCRecord, source: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """``source`` --kind--> the attack-pattern of each technique the record's articles name."""
    out = []
    for technique in r.mitre_techniques:
        target = attack_pattern_id(technique)
        out.append(
            {
                "type": "relationship",
                "spec_version": "2.1",
                "id": relationship_id(kind, source["id"], target),
                "created": source["created"],
                "modified": source["modified"],
                "created_by_ref": IDENTITY_ID,
                "relationship_type": kind,
                "source_ref": source["id"],
                "target_ref": target,
                **({"revoked": True} if source.get("revoked") else {}),
                "object_marking_refs": source["object_marking_refs"],
            }
        )
    return out


def main_object(r: IOCRecord) -> dict[str, Any]:
    if r.type == "mitre_attack":
        return attack_pattern(r)
    if r.type == "cve":
        return vulnerability(r)
    return indicator(r)


def record_objects(r: IOCRecord) -> list[dict[str, Any]]:
    """The STIX objects of one record: the main object, then its relationships."""
    main = main_object(r)
    kind = RELATIONSHIP_KINDS.get(r.type, "indicates")
    return [main, *relationships(r, main, kind)] if kind else [main]


class StixObject(NamedTuple):
    """One rendered STIX object: its type, its id and its JSON followed by a comma."""

    type: str
    id: str
    data: bytes


class StixObjects(NamedTuple):
    """A record's rendered STIX objects, the main object first, then its relationships in
    ``mitre_techniques`` order: object ``k`` has type ``types[k]``, id ``ids[k]`` and bytes
    ``line[ends[k - 1]:ends[k]]`` (from 0 for the first; ``ends[-1] == len(line)``).

    One tuple per record, not one per object: this runs once per record of every build.
    """

    line: bytes
    types: tuple[str, ...]
    ids: tuple[str, ...]
    ends: tuple[int, ...]

    def objects(self) -> list[StixObject]:
        """Each object on its own: (type, id, bytes)."""
        starts = (0, *self.ends[:-1])
        return [
            StixObject(type_, id_, self.line[start:end])
            for type_, id_, start, end in zip(self.types, self.ids, starts, self.ends, strict=True)
        ]


_new = tuple.__new__  # StixObjects without its Python-level __new__ (a call per record)


def render_objects(r: IOCRecord) -> StixObjects:
    """``record_objects`` as JSON, each object followed by a comma (joined into ``objects``),
    with each object's type, id and where its bytes end, so nobody needs to parse them back.

    Relationships are written as text, not through orjson: every value in them is an id, a
    timestamp or a fixed word, so the text is the JSON orjson would write (a test pins the two
    equal) at a third of the cost; it is ASCII, so its length in characters is its length in
    bytes. This runs once per record of every build.
    """
    main = main_object(r)
    source = main["id"]
    line = orjson.dumps(main) + b","
    kind = RELATIONSHIP_KINDS.get(r.type, "indicates")
    if not (kind and r.mitre_techniques):
        return _new(StixObjects, (line, (main["type"],), (source,), (len(line),)))
    middle = (
        f'","created":"{main["created"]}","modified":"{main["modified"]}",'
        f'"created_by_ref":"{IDENTITY_ID}","relationship_type":"{kind}",'
        f'"source_ref":"{source}","target_ref":"'
    )
    revoked = '","revoked":true' if main.get("revoked") else '"'
    tail = f'{revoked},"object_marking_refs":["{main["object_marking_refs"][0]}"]}},'
    named = f"{kind}:{source}:"
    ids = [source]
    rels = []
    for technique in r.mitre_techniques:
        target = attack_pattern_id(technique)
        rid = f"relationship--{uuid5(_STIX_NS, named + target)}"
        ids.append(rid)
        rels.append(f"{RELATIONSHIP_HEAD}{rid}{middle}{target}{tail}")
    types = (main["type"],) + ("relationship",) * len(rels)
    ends = tuple(accumulate(map(len, rels), initial=len(line)))
    return _new(StixObjects, (line + "".join(rels).encode(), types, tuple(ids), ends))


def render_line(r: IOCRecord) -> bytes:
    """A record's line: the bytes of its ``render_objects``."""
    return render_objects(r).line
