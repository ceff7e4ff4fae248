"""STIX 2.1 facts shared by the build (``exports/stix21.py``) and the edge (``worker/endpoints/stix.py``).

Our namespace for deterministic UUIDv5 ids, the producer identity, the TLP 2.0 marking
definitions with their official ids, and the confidence rules. Standard library only: the
worker imports it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

# Our own namespace for UUIDv5 ids of SDOs, SROs and bundles. STIX reserves
# 00abedb4-aa42-466c-9c01-fed23315a9b7 for SCO ids; this is deliberately another one.
STIX_NAMESPACE = uuid.UUID("85539558-bc2c-4e19-8bf9-0092323b389d")


def stix_id(stix_type: str, name: str) -> str:
    """A deterministic ``<type>--<uuid5>`` id for ``name`` within ``stix_type``."""
    return f"{stix_type}--{uuid.uuid5(STIX_NAMESPACE, f'{stix_type}:{name}')}"


IDENTITY_ID = stix_id("identity", "socdef")
IDENTITY: dict[str, Any] = {
    "type": "identity",
    "spec_version": "2.1",
    "id": IDENTITY_ID,
    "created": "2026-01-01T00:00:00.000Z",
    "modified": "2026-01-01T00:00:00.000Z",
    "name": "socdef",
    "description": "socdef threat-intelligence feed: indicators extracted from public "
    "security articles, with the article each one came from.",
    "identity_class": "system",
}

# TLP 2.0 (OASIS extension definition, cti-stix-common-objects): fixed ids and objects.
TLP_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
TLP_IDS: dict[str, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

# Our confidence levels: the STIX scale value (None/Low/Med/High = 0/15/50/85, STIX 2.1
# appendix B). A record's TLP is its source's (``sources.toml``), not its confidence.
CONFIDENCE_SCORE = {"high": 85, "medium": 50, "low": 15}
DEFAULT_TLPS = TLP_LEVELS  # the levels records may carry before any override


def tlp_marking(level: str) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP_IDS[level],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{level.upper()}",
        "extensions": {
            TLP_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": level},
        },
    }


def _compact(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def marking_ref(level: str) -> bytes:
    """How a rendered object refers to its marking: unique to that property, see worker/endpoints/stix.py."""
    return b'"object_marking_refs":["' + TLP_IDS[level].encode() + b'"]'


IDENTITY_BYTES = _compact(IDENTITY)
MARKING_BYTES = {level: _compact(tlp_marking(level)) for level in TLP_LEVELS}
