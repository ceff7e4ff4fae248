"""The change feed's objects and cursor, shared by the build and the worker (docs/changes.md).

A build's manifest holds ``changes/index.json``: ``{"version": 2, "builds": [[build_id,
generated_at, {tier: count}], ...]}``, oldest first, every build whose delta the tiers' lookback still
reaches (at most ``MAX_BUILDS``). A build's delta for a tier with changes is two objects:

- ``changes/<build_id>/<tier>.dat``: its ``count`` changes three times over, in one order: as
  JSON lines, then as CSV rows, then as text lines;
- ``changes/<build_id>/<tier>.idx``: uint64 LE offsets into the ``.dat``, ``count + 1`` per
  rendering (JSON, CSV, text), so line ``k`` of a rendering is one range read.

A *position* is (build, offset): the client holds the list as of the build before ``build``
plus the first ``offset`` changes of ``build``'s delta. A cursor is that position and the tier,
with a checksum, in URL-safe base64; it carries no state of its own and grants nothing (every
bound is checked against the build served). Standard library only: the worker imports it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from worker.contract import layout

INDEX_KEY = "changes/index.json"
NEXT = "changes/next/"  # this build's objects until the build id names them
NEXT_STATE = NEXT + "state.bin"
RESTORED = "changes/restored.json"  # in a build folder: the published build restored (not built)
PARTS = ("dat", "idx")
RENDERINGS = ("json", "csv", "txt")  # the order of the renderings in a delta
MAX_LOOKBACK = 365 * 86_400  # the longest tier lookback: older deltas are dropped
MAX_BUILDS = 1_000  # deltas kept at most (about six weeks of hourly builds)
AGED_OUT = "aged-out"
REASONS = ("expired", "suppressed", "withdrawn", AGED_OUT)
INDEX_VERSION = 2  # how the deltas are rendered; an index of another version is not carried
# the list's CSV columns (``GET /api/v1/iocs?format=csv``), then the change's
CSV_HEADER = layout.CSV_HEADER.rstrip(b"\n") + b",change,reason,build_time\n"
_CURSOR = re.compile(r"[A-Za-z0-9_-]{16,400}")
_PAYLOAD = re.compile(
    r"([a-z]+)\.([0-9]{8}T[0-9]{6}Z-[0-9a-f]{12})\.(0|[1-9][0-9]{0,9})\.([0-9a-f]{16})"
)
_BUILD_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")


def next_key(tier: str, part: str) -> str:
    return f"{NEXT}{tier}.{part}"


def delta_key(build_id: str, tier: str, part: str) -> str:
    return f"changes/{build_id}/{tier}.{part}"


def published_state_key(build_id: str) -> str:
    """Where a bucket keeps a build's change state (gzip): beside its manifest, pruned with it, not
    in the manifest (no reader needs it: the next build restores it from there)."""
    return f"builds/{build_id}/changes-state.bin.gz"


def state_pointer(build_id: str) -> str:
    """Where a build folder keeps the SHA-256 of a build's change state (not published)."""
    return f"builds/{build_id}.changes-state"


@dataclass(frozen=True, slots=True)
class Cursor:
    tier: str
    build_id: str
    offset: int


def _check(payload: str) -> str:
    return hashlib.sha256(b"socdef-changes-cursor\0" + payload.encode()).hexdigest()[:16]


def encode(cursor: Cursor) -> str:
    payload = f"{cursor.tier}.{cursor.build_id}.{cursor.offset}"
    raw = f"{payload}.{_check(payload)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(text: str) -> Cursor | None:
    """The cursor ``text`` names; None when it is not one this feed wrote (garbled, cut,
    edited: the checksum covers every byte)."""
    if not _CURSOR.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    match = _PAYLOAD.fullmatch(raw)
    if match is None:
        return None
    tier, build_id, offset, check = match.groups()
    if check != _check(f"{tier}.{build_id}.{offset}"):
        return None
    if encode(Cursor(tier, build_id, int(offset))) != text:
        return None  # one spelling per cursor
    return Cursor(tier, build_id, int(offset))


def build_time(build_id: str) -> int | None:
    """The time a build id names (its first part), as Unix seconds."""
    import calendar

    match = _BUILD_TIME.match(build_id)
    if match is None:
        return None
    y, mo, d, h, mi, s = map(int, match.groups())
    try:
        return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
