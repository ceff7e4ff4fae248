"""TAXII 2.1 facts shared by the build (``generator/build/taxii.py``) and the edge (``worker/taxii*``).

The collections and their stable ids, the media types, the binary formats of the precomputed
indexes and the keys under ``taxii/`` in a build (docs/taxii.md describes them all):

    taxii/discovery.json               discovery resource without ``api_roots``/``default``
    taxii/root.json                    API root resource
    taxii/collections.json             ``{"collections": [...]}``
    taxii/c/<name>/info.json           one collection resource
    taxii/c/<name>/meta.json           counts and fences of the collection and its type indexes
    taxii/c/<name>/index/<k>.bin       ENTRYs in date_added order, PART a partition: one per
                                       object, served or dead (taxii/dead.bin), kept in place
    taxii/c/<name>/type/<stix type>/<k>.bin  the entries of one STIX type, same format
    taxii/dead.bin                     the build dates of the entries no longer served
    taxii/c/all/obj/<k>.dat            the k-th run of objects of "all" (generator/build/taxii.py
                                       chunk_lasts), each followed by ","
    taxii/c/all/man/<k>.dat            their manifest records, each followed by ","
                                       (every collection's entries point into these chunks;
                                       a per-type meta.json names them: "data": "all")
    taxii/ids.bin                      the id index's base: ID_ENTRYs sorted by UUID then type
                                       (kept from build to build; a row whose build date no
                                       entry has names an object no longer served)
    taxii/ids.new.bin                  the rows the base lacks (new build dates), same order;
                                       looked up first
    taxii/ids.fence                    the UUID of every ID_BLOCK-th entry of ids.bin

Standard library only: the worker imports it.
"""

from __future__ import annotations

import struct
import time
import uuid
from functools import lru_cache

from worker.contract import formats, layout
from worker.contract.stix_common import STIX_NAMESPACE

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE = formats.BY_NAME["stix"].media_type  # one media type for STIX, from the table
SPEC_VERSION = "2.1"
API_ROOT = "/api/taxii2/api/"
DISCOVERY = "/api/taxii2/"
CHUNK = 1_000  # objects per data chunk and entries per fence
MAX_PAGE = 1_000

# STIX object types the collections hold; an entry names its type by the position here.
STIX_TYPES = (
    "indicator",
    "relationship",
    "vulnerability",
    "attack-pattern",
    "identity",
    "marking-definition",
)
TYPE_CODES = {name: i for i, name in enumerate(STIX_TYPES)}
# Types served whatever the tier's lookback: what the others refer to (the producer identity,
# the TLP markings, the ATT&CK techniques), so every reference resolves.
TIMELESS = frozenset(TYPE_CODES[t] for t in ("attack-pattern", "identity", "marking-definition"))

# date_added µs, modified µs, chunk, object [start, end), manifest record [start, end), type code
ENTRY = struct.Struct("<qqIIIIII")
# object UUID, STIX type code, IOC type code (its collection), build date (its entry's date_added)
ID_ENTRY = struct.Struct("<16sBBq")
ID_BLOCK = 1_024
EVERY_COLLECTION = 255  # the IOC type code of an object every collection holds (identity, TLP)

ALL_COLLECTION = "all"
COLLECTIONS = (ALL_COLLECTION, *layout.IOC_TYPES)
TYPE_LABELS = {
    "ipv4": "IPv4 addresses",
    "ipv6": "IPv6 addresses",
    "domain": "domain names",
    "url": "URLs",
    "md5": "MD5 file hashes",
    "sha1": "SHA-1 file hashes",
    "sha256": "SHA-256 file hashes",
    "sha512": "SHA-512 file hashes",
    "email": "e-mail addresses",
    "cve": "CVEs",
    "mitre_attack": "ATT&CK techniques",
}


def collection_id(name: str) -> str:
    """A UUIDv4-format id that every build and installation gives ``name`` (Sentinel demands v4).

    Derived like a UUIDv5 in our STIX namespace, then the version and variant bits set to 4.
    """
    raw = bytearray(uuid.uuid5(STIX_NAMESPACE, f"taxii-collection:{name}").bytes)
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(raw)))


COLLECTION_IDS = {collection_id(name): name for name in COLLECTIONS}


def collection_key(name: str, item: str) -> str:
    return layout.taxii_key(f"c/{name}/{item}")


def chunk_key(name: str, kind: str, chunk: int) -> str:
    """``kind`` is ``obj`` (objects) or ``man`` (manifest records)."""
    return collection_key(name, f"{kind}/{chunk}.dat")


def type_index_key(name: str, stix_type: str) -> str:
    return collection_key(name, f"type/{stix_type}.bin")


DISCOVERY_KEY = layout.taxii_key("discovery.json")
ROOT_KEY = layout.taxii_key("root.json")
COLLECTIONS_KEY = layout.taxii_key("collections.json")
ID_INDEX_KEY = layout.taxii_key("ids.bin")
ID_FENCE_KEY = layout.taxii_key("ids.fence")
ID_NEW_KEY = layout.taxii_key("ids.new.bin")
DEAD_KEY = layout.taxii_key("dead.bin")  # build dates of entries no longer served (int64, sorted)
PART = 16 * CHUNK  # entries per partition of an entry file


def part_key(base: str, part: int) -> str:
    """Partition ``part`` of the entry file ``base`` (``collection_key(name, "index")`` or
    ``type_index_key(name, t)`` without ``.bin``)."""
    return f"{base}/{part}.bin"


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def timestamp_us(us: int) -> str:
    """A TAXII timestamp with microseconds: ``2026-11-28T12:00:00.000123Z``."""
    seconds, micro = divmod(us, 1_000_000)
    return f"{_second(seconds)}.{micro:06d}Z"


def version_string(us: int) -> str:
    """A STIX ``modified`` value (milliseconds), as the objects carry it."""
    seconds, micro = divmod(us, 1_000_000)
    return f"{_second(seconds)}.{micro // 1000:03d}Z"
