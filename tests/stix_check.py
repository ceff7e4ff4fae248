"""The STIX gate: stix2-validator in strict mode and stix2-patterns, with every exception named.

Strict mode turns every SHOULD check into an error. Two checks are disabled, on purpose:

* ``uuid-check`` (103) wants UUIDv4 for SDO/SRO/bundle ids. Ours are UUIDv5 so that every
  build, installation and re-import names an object the same way; STIX 2.1 §2.9 allows other
  versions when the producer avoids collisions, and our namespace is not the reserved SCO one.
* ``extref-hashes`` (302) wants a hash beside every external-reference ``url``. Our URLs point
  at news articles, ATT&CK pages and CVE records: live web pages whose bytes change, so a hash
  would be false the day it is published.

Passing ``disabled`` makes stix2-validator build its check list by hand, and that list omits a
few checks of the default set; ``enabled`` puts every one of them back, so the gate is "all
checks minus the two above", plus ``strict_types`` and ``strict_properties``.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from stix2patterns.validator import run_validator
from stix2validator import ValidationOptions, validate_instance
from stix2validator.v21.shoulds import CHECKS

DISABLED = ("uuid-check", "extref-hashes")
ENABLED = tuple(
    name
    for name, check in CHECKS.items()
    if callable(check) and check in CHECKS["all"] and name not in DISABLED
)


def options(*, enforce_refs: bool = False) -> ValidationOptions:
    """The gate; ``enforce_refs`` also demands that every reference resolves in the bundle."""
    return ValidationOptions(
        strict=True,
        strict_types=True,
        strict_properties=True,
        enforce_refs=enforce_refs,
        disabled=list(DISABLED),
        enabled=list(ENABLED),
    )


def problems(document: dict[str, Any], *, enforce_refs: bool = False) -> list[str]:
    """Every error of a bundle (warnings are errors under strict); [] when valid."""
    try:
        result = validate_instance(document, options(enforce_refs=enforce_refs))
    except Exception as exc:  # the validator crashes on some unparsable patterns
        return [f"validator raised {type(exc).__name__}: {exc}"]
    found = [str(e) for e in result.errors] + [str(w) for w in result.warnings]
    return found if found or result.is_valid else ["invalid without a message"]


def pattern_problems(objects: list[dict[str, Any]]) -> list[str]:
    """stix2-patterns' verdict on every indicator pattern."""
    found = []
    for obj in objects:
        if obj.get("type") == "indicator":
            found += [
                f"{obj['pattern']}: {e}" for e in run_validator(obj["pattern"], stix_version="2.1")
            ]
    return found


def as_bundle(objects: list[dict[str, Any]], bundle_id: str) -> dict[str, Any]:
    return {"type": "bundle", "id": bundle_id, "objects": objects}


def _chunk_problems(args: tuple[str, list[dict[str, Any]]]) -> list[str]:
    return problems(as_bundle(args[1], args[0]))


def problems_parallel(bundle: dict[str, Any], workers: int | None = None) -> list[str]:
    """``problems`` of a large bundle, its objects split over processes (the validator is
    ~3 ms per object). Duplicate ids across chunks are checked here, as check 203 would."""
    objects = bundle.get("objects", [])
    workers = workers or os.cpu_count() or 1
    size = -(-len(objects) // workers) or 1
    chunks = [(bundle["id"], objects[i : i + size]) for i in range(0, len(objects), size)]
    with ProcessPoolExecutor(workers) as pool:
        found = [p for chunk in pool.map(_chunk_problems, chunks) for p in chunk]
    seen: dict[tuple[str, str], int] = {}
    for obj in objects:
        key = (obj["id"], obj.get("modified", ""))
        seen[key] = seen.get(key, 0) + 1
    found += [f"duplicate id {k[0]} with modified {k[1]}" for k, n in seen.items() if n > 1]
    return found
