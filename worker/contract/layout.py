"""The build-tree contract: the one interface between the generator and the worker.

A *build* is a set of logical objects (``iocs/day/2026-11-28/json.dat`` …) listed in a
manifest that maps each logical key to the SHA-256 and size of its bytes. A *bucket* stores
builds content-addressed, so publishing uploads only objects whose bytes changed:

    current.json                      {"build_id": ID, "generated_at": ...}   (the pointer)
    pointers/<sha256>.minisig         the signature of the pointer with that SHA-256
    builds/<ID>.json                  the manifest of build ID
    objects/<sha[:2]>/<sha>           immutable object bytes

Logical keys inside a build (see docs/architecture.md for the full description):

    iocs/day/<YYYY-MM-DD>/ts.bin      int64 LE, one per record: last_seen, newest first
    iocs/day/<YYYY-MM-DD>/<v>.dat     records of variant v, one per line, same order as ts.bin
    iocs/day/<YYYY-MM-DD>/<v>.idx     uint64 LE byte offsets into <v>.dat, n + 1 of them
    iocs/day/<YYYY-MM-DD>/over/...    a later build's overlay on that base: per stream s (ts or a
                                      variant) s.lines.bin (uint32 logical lines), ts.bin or
                                      <v>.dat + <v>.idx with those lines (worker/buckets/days.py)
    iocs/day/<YYYY-MM-DD>/order.bin   uint32 LE logical lines in list order, when not 0..n-1
    iocs/view/<view>.json             {"days": [[day, count, start], ...]} newest day first
    iocs/view/<view>.bin              uint32 LE line numbers into the day files, per day from start
    iocs/default/<tier>/<view>.<fmt>  the default answer of (tier, view, fmt): a text format's whole
                                      body; JSON: the records alone (the worker adds the meta
                                      naming the build, its clock and total, and the links)
    iocs/search/meta.json             {"prefix_hex": L, ...}: how the search shards are cut
    iocs/search/shards.dat            search entries sorted by value hash, shard after shard
    iocs/search/shards.idx            uint64 LE byte offsets of the 16**L shards: 16**L + 1 values
    iocs/search/shards.delta.dat      entries that differ from the base shards (and tombstones)
    iocs/search/shards.delta.idx      uint64 LE byte offsets of the delta's shards: 16**L + 1 values
    iocs/stats.json                   the ``data`` member of the stats answer
    feeds/misp/<file>                 the MISP feed: manifest.json, hashes.csv, <event uuid>.json
    taxii/...                         TAXII 2.1 resources, pages and indexes (worker/contract/taxii_common.py)
    site/<path>                       the docs site: pages (<dir>/index.html), static/<asset>

Views: ``<type>.<category>.<confidence>`` (``all`` for an absent filter) holds the active
records; ``<status>.<type>.<category>.<confidence>`` those of another status (``expired``,
``suppressed``, ``withdrawn``) or of every status (``all``). The view of every record,
``all.all.all.all``, has no ``.bin``: its line numbers are a day's ``order.bin``, else 0..count-1.

Day partitions are immutable bases: a build with nothing to follow writes each day's records on
lines 0..n-1; a build that follows one keeps the bases (same bytes, not uploaded again) and
writes per day an overlay of replaced lines (a record changed in place keeps its line number)
and appended ones (records new to the day); lines of records that left are dead, named by no
view (generator/build/days.py).
"""

from __future__ import annotations

from worker.contract import formats

IOC_TYPES = (
    "ipv4",
    "ipv6",
    "domain",
    "url",
    "md5",
    "sha1",
    "sha256",
    "sha512",
    "email",
    "cve",
    "mitre_attack",
)
# Type groups a list may ask for in one ``type`` (``type=ipv4,ipv6``): each is a view type of
# its own, holding the records of its members.
TYPE_GROUPS = {"ip": ("ipv4", "ipv6")}
GROUP_OF = {member: group for group, members in TYPE_GROUPS.items() for member in members}
CATEGORIES = ("news", "research", "threat-intel", "vendor", "government")
CONFIDENCES = ("high", "medium", "low")
ALL = "all"

# The formats and the record variants stored per day are the records of worker.contract.formats.
LIST_FORMATS = tuple(f.name for f in formats.LISTED)
CSV_HEADER = formats.CSV_HEADER

POINTER_KEY = "current.json"
FORMAT_VERSION = 1
DAY_SECONDS = 86_400


ACTIVE = "active"
STATUSES = ("active", "expired", "suppressed", "withdrawn")


def view_name(
    type_: str = ALL, category: str = ALL, confidence: str = ALL, status: str = ACTIVE
) -> str:
    """``type.category.confidence`` for active records (the default), else prefixed by the
    status (or ``all``): ``expired.ipv4.all.all``."""
    name = f"{type_}.{category}.{confidence}"
    return name if status == ACTIVE else f"{status}.{name}"


def view_parts(view: str) -> tuple[str, str, str, str]:
    """(status, type, category, confidence) of a view name."""
    parts = view.split(".")
    if len(parts) == 3:
        return (ACTIVE, *parts)  # type: ignore[return-value]
    status, type_, category, confidence = parts
    return status, type_, category, confidence


# Every record of every status: its line numbers are 0..count-1 of each day (no ``.bin``).
ALL_VIEW = view_name(status=ALL)
ACTIVE_VIEW = view_name()


def all_views() -> list[str]:
    return [
        view_name(t, c, f, s)
        for s in (*STATUSES, ALL)
        for t in (ALL, *IOC_TYPES, *TYPE_GROUPS)
        for c in (ALL, *CATEGORIES)
        for f in (ALL, *CONFIDENCES)
    ]


def views_of(type_: str, category: str, confidence: str, status: str = ACTIVE) -> list[str]:
    """The views a record with these attributes belongs to: eight of its status and eight of
    every status (twelve each for a type of a ``TYPE_GROUPS`` group: its group's four too)."""
    group = GROUP_OF.get(type_)
    types = (ALL, type_) if group is None else (ALL, type_, group)
    return [
        view_name(t, c, f, s)
        for s in (status, ALL)
        for t in types
        for c in (ALL, category)
        for f in (ALL, confidence)
    ]


def day_ts_key(day: str) -> str:
    return f"iocs/day/{day}/ts.bin"


def day_data_key(day: str, variant: str) -> str:
    return f"iocs/day/{day}/{variant}.dat"


def day_index_key(day: str, variant: str) -> str:
    return f"iocs/day/{day}/{variant}.idx"


# A day's overlay (docs/architecture.md, "Day partitions: bases and overlays"): a later build
# keeps the day's base objects above as they were and writes what moved here.
TS_STREAM = "ts"


def day_order_key(day: str) -> str:
    """uint32 LE logical lines of the day's records in list order (only when not 0..n-1)."""
    return f"iocs/day/{day}/order.bin"


def overlay_lines_key(day: str, stream: str) -> str:
    """uint32 LE ascending logical lines the overlay of ``stream`` (``ts`` or a variant) holds."""
    return f"iocs/day/{day}/over/{stream}.lines.bin"


def overlay_ts_key(day: str) -> str:
    return f"iocs/day/{day}/over/ts.bin"


def overlay_data_key(day: str, variant: str) -> str:
    return f"iocs/day/{day}/over/{variant}.dat"


def overlay_index_key(day: str, variant: str) -> str:
    return f"iocs/day/{day}/over/{variant}.idx"


def view_index_key(view: str) -> str:
    return f"iocs/view/{view}.json"


def view_lines_key(view: str) -> str:
    return f"iocs/view/{view}.bin"


DEFAULT_PREFIX = "iocs/default/"


def default_key(tier: str, view: str, fmt: str) -> str:
    return f"{DEFAULT_PREFIX}{tier}/{view}.{fmt}"


SEARCH_META_KEY = "iocs/search/meta.json"
SEARCH_SHARDS_KEY = "iocs/search/shards.dat"
SEARCH_OFFSETS_KEY = "iocs/search/shards.idx"
SEARCH_DELTA_KEY = "iocs/search/shards.delta.dat"
SEARCH_DELTA_OFFSETS_KEY = "iocs/search/shards.delta.idx"
STATS_KEY = "iocs/stats.json"
SUPPRESSED_PREFIX = "iocs/suppressed/"


def suppressed_key(tier: str, fmt: str) -> str:
    """The suppression report of ``tier`` (``json``: its ``data`` member; ``csv``: whole)."""
    return f"{SUPPRESSED_PREFIX}{tier}.{fmt}"


def feed_key(feed: str, name: str) -> str:
    """A file of a subscribable feed, e.g. ``feeds/misp/manifest.json``."""
    return f"feeds/{feed}/{name}"


def site_key(url_path: str) -> str:
    """The site object a URL path names: ``/docs/`` → ``site/docs/index.html``."""
    return "site/" + url_path.lstrip("/") + ("index.html" if url_path.endswith("/") else "")


def taxii_key(name: str) -> str:
    """A TAXII 2.1 object, e.g. ``taxii/c/all/index.bin`` (names: worker/contract/taxii_common.py)."""
    return f"taxii/{name}"


def manifest_key(build_id: str) -> str:
    return f"builds/{build_id}.json"


def object_key(sha256: str) -> str:
    return f"objects/{sha256[:2]}/{sha256}"


# Signed builds (docs/publish.md): written at publish time, beside the build, never inside it.
SIGNING_KEY_OBJECT = "signing.pub"  # the publisher's minisign public key, at the bucket's root
SIGNATURE_SUFFIX = ".minisig"
SUMS_NAME = "SHA256SUMS"


def signature_key(build_id: str) -> str:
    """The minisign signature of a build's manifest."""
    return manifest_key(build_id) + SIGNATURE_SUFFIX


def download_set(logical_key: str) -> str | None:
    """The download set a logical key belongs to, as a prefix ending in ``/``: a feed folder
    (``feeds/misp/``) or a tier's default answers (``iocs/default/free/``); None otherwise."""
    parts = logical_key.split("/")
    if parts[0] == "feeds" and len(parts) >= 3:
        return "/".join(parts[:2]) + "/"
    if parts[:2] == ["iocs", "default"] and len(parts) >= 4:
        return "/".join(parts[:3]) + "/"
    return None


# The pointer's signature (docs/publish.md, "The signed pointer"): named by the SHA-256 of the
# pointer's bytes, written before the pointer, so a reader never finds a pointer without its own.
POINTER_SIGNATURES = "pointers/"


def pointer_signature_key(pointer_sha256: str) -> str:
    """The minisign signature of the pointer whose bytes have this SHA-256."""
    return f"{POINTER_SIGNATURES}{pointer_sha256}{SIGNATURE_SUFFIX}"


def sums_key(build_id: str, download_set: str) -> str:
    """The ``SHA256SUMS`` of one download set of a build, e.g.
    ``builds/<id>/feeds/misp/SHA256SUMS``; its signature adds ``.minisig``."""
    return f"builds/{build_id}/{download_set}{SUMS_NAME}"
