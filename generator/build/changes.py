"""The change feed's deltas (``GET /api/v1/iocs/changes``, docs/changes.md).

Each build diffs its active list, per tier, with the previous build's and writes only what
changed: one small delta per (build, tier), every change as a JSON line, a CSV row and a text
line (``worker/contract/changes.py`` describes the objects). The previous build's list is read
from a compact *state* the previous build left in the build folder (the record ids, a digest
of each record's JSON and its ``last_seen``), not from its rendered lists, so the diff costs a
hash per record and a line per change.

The deltas of earlier builds are carried forward: this build's manifest names every delta the
tiers' lookback still reaches (``changes/index.json`` lists them oldest first), so they are
published with it, survive the pruning of old builds and switch with the pointer, atomically.

The state is published beside each build (``socdef publish``) and :func:`restore` brings the
published build's state, index and deltas into a build folder that has none as new (a fresh
machine), so the feed continues there. The first build of a feed (no earlier state anywhere)
starts it with no changes: its list is the base a client reads whole. Two steps: :class:`ChangeFeed` (a derived sink: it sees every day of records and their JSON
lines) writes this build's deltas and state; :func:`write_index` (a derived stage: it knows
the build id) names them after the build and joins them to the earlier ones.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import struct
from array import array
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from exports import ioc_csv, ioc_txt
from exports.model import IOCRecord
from exports.timefmt import iso_z
from generator.build.sinks import BuildInfo, DerivedInfo, ObjectWriter
from generator.errors import CorruptFile
from generator.publish.folder import Destination
from worker.buckets.storage import Build, LocalBucket
from worker.contract import changes as contract
from worker.contract import layout
from worker.contract.tiers import TIERS

ACTIVE = layout.ACTIVE
STATE_MAGIC = b"socdef-changes-state-1\n"
Note = Callable[[str], None]
_LIST_COLUMNS = layout.CSV_HEADER.count(b",") + 1  # the columns of the list's CSV


def record_key(record_id: str) -> int:
    """A record's 64-bit key: the first 16 hex digits of its UUID (stable across builds)."""
    return int(record_id.replace("-", "")[:16], 16)


def digest(line: bytes) -> int:
    """A 64-bit digest of a record's JSON line: it changes when anything the list shows does."""
    return int.from_bytes(hashlib.blake2b(line, digest_size=8).digest(), "little")


@dataclass(slots=True)
class State:
    """The active records of a build within the longest lookback, sorted by key."""

    generated_at: int
    keys: np.ndarray  # uint64, ascending
    digests: np.ndarray  # uint64
    last_seen: np.ndarray  # int64
    names: list[bytes]  # b"id\ttype\tvalue" per key

    @classmethod
    def empty(cls, generated_at: int = 0) -> State:
        return cls(
            generated_at,
            np.zeros(0, np.uint64),
            np.zeros(0, np.uint64),
            np.zeros(0, np.int64),
            [],
        )

    def to_bytes(self) -> bytes:
        names = b"\n".join(self.names)
        head = struct.pack("<qqq", self.generated_at, len(self.keys), len(names))
        parts = [STATE_MAGIC, head]
        parts += [self.keys.tobytes(), self.digests.tobytes(), self.last_seen.tobytes(), names]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> State | None:
        if not data.startswith(STATE_MAGIC):
            return None
        at = len(STATE_MAGIC)
        generated_at, n, names_size = struct.unpack_from("<qqq", data, at)
        at += 24
        keys = np.frombuffer(data, np.uint64, n, at)
        digests = np.frombuffer(data, np.uint64, n, at + 8 * n)
        last_seen = np.frombuffer(data, np.int64, n, at + 16 * n)
        raw = data[at + 24 * n : at + 24 * n + names_size]
        names = raw.split(b"\n") if n else []
        if len(names) != n:
            return None
        return cls(generated_at, keys, digests, last_seen, names)

    def in_tier(self, low: int) -> np.ndarray:
        return (self.last_seen >= low) & (self.last_seen <= self.generated_at)


def _latest_manifest(root: Path) -> dict | None:
    """The manifest of the build folder's latest build (None: none, or unreadable)."""
    try:
        build_id = (root / "LATEST").read_text().strip()
        manifest = json.loads((root / layout.manifest_key(build_id)).read_bytes())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def latest_built(root: Path) -> tuple[str, int, dict[str, list]] | None:
    """The build folder's latest build: its id, time and manifest objects (None: none)."""
    manifest = _latest_manifest(root)
    try:
        if manifest is None:
            return None
        return str(manifest["build_id"]), int(manifest["generated_at"]), dict(manifest["objects"])
    except (ValueError, KeyError, TypeError):
        return None


def published_build(dest: Destination) -> tuple[str, int] | None:
    """The id and time of the build the bucket's pointer names (None: nothing published, or a
    damaged pointer, which the publish reports)."""
    raw = dest.get(layout.POINTER_KEY)
    if raw is None:
        return None
    try:
        pointer = json.loads(raw)
        return str(pointer["build_id"]), int(pointer["generated_at"])
    except (ValueError, KeyError, TypeError):
        return None


def previous_manifest(root: Path) -> dict | None:
    """The manifest of the build the next build in ``root`` follows: the build folder's latest,
    or the published build :func:`restore` brought from the bucket when that one is newer (its
    marker: id, time, the objects restored with how they are stored, and the SHA-256 of its
    change state under ``state``). None: neither."""
    latest = _latest_manifest(root)
    restored = None
    with contextlib.suppress(OSError, ValueError):
        restored = json.loads((root / contract.RESTORED).read_bytes())
    try:
        if restored is not None and (
            latest is None or int(restored["generated_at"]) > int(latest["generated_at"])
        ):
            return dict(restored)
        return None if latest is None else dict(latest)
    except (KeyError, TypeError, ValueError):
        return None


def previous_build(root: Path) -> tuple[dict, Build] | None:
    """The manifest of the build the next build in ``root`` follows (:func:`previous_manifest`)
    and a :class:`Build` reading its objects from the folder unmapped (a build passes over them
    once, a part at a time). None: none, or a restore marker written before it recorded how its
    objects are stored."""
    manifest = previous_manifest(root)
    if manifest is None or "framed" not in manifest:
        return None
    return manifest, Build(LocalBucket(root, mapped=False), manifest)


def _previous(root: Path) -> tuple[str, dict[str, list], State | None] | None:
    """The build this build follows (:func:`previous_manifest`): its id, manifest objects and
    change state."""
    manifest = previous_manifest(root)
    try:
        if manifest is None:
            return None
        build_id, objects = str(manifest["build_id"]), dict(manifest["objects"])
    except (KeyError, TypeError, ValueError):
        return None
    try:
        sha = manifest.get("state") or (root / contract.state_pointer(build_id)).read_text().strip()
        data = (root / layout.object_key(str(sha))).read_bytes()
    except (OSError, ValueError):
        return build_id, objects, None
    return build_id, objects, State.from_bytes(data)


def _build_dir_state(root: Path) -> tuple[str | None, State | None]:
    """The previous build and the change state it left (None: none)."""
    previous = _previous(root)
    return (None, None) if previous is None else (previous[0], previous[2])


def _windows(generated_at: int) -> dict[str, int]:
    """The oldest ``last_seen`` each tier's list holds at ``generated_at``."""
    return {
        name: generated_at - tier.lookback_days * layout.DAY_SECONDS for name, tier in TIERS.items()
    }


@dataclass(slots=True)
class _Change:
    kind: str  # added | updated | removed
    type: str
    value: str
    id: str
    line: bytes = b""  # the record's JSON (added, updated)
    record: IOCRecord | None = None
    reason: str = ""  # removed: expired | suppressed | withdrawn | aged-out


class ChangeFeed:
    """Diffs this build's active lists with the previous build's, per tier (a derived sink:
    its objects do not enter the build id, which stays a function of store and clock)."""

    def __init__(self, info: BuildInfo, out: ObjectWriter) -> None:
        self.out = out
        self.generated_at = info.generated_at
        self.lows = _windows(info.generated_at)
        self.widest = min(self.lows.values())
        _, previous = _build_dir_state(out.root)
        # without an earlier build the feed starts here, with no changes: its base is this
        # build's list (a client starts from the full list)
        self.first = previous is None
        self.previous = previous or State.empty()
        self.previous_lows = _windows(self.previous.generated_at)
        self.previous_in = {t: self.previous.in_tier(low) for t, low in self.previous_lows.items()}
        self.keys = array("Q")
        self.digests = array("Q")
        self.last_seen = array("q")
        self.names: list[bytes] = []
        # per tier: key → the change (added and updated, found day by day)
        self.changes: dict[str, dict[int, _Change]] = {t: {} for t in TIERS}
        self.status_of: dict[int, str] = {}  # earlier keys that are no longer active

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        raise TypeError("ChangeFeed reads the JSON lines: feed it with add_rendered")

    def add_rendered(
        self, day: str, records: list[IOCRecord], rendered: Mapping[str, list[bytes]]
    ) -> None:
        lines = rendered["json"]
        previous = self.previous
        start = len(self.keys)
        picked: list[int] = []
        keys, digests, seen = self.keys, self.digests, self.last_seen
        others: list[int] = []
        for i, r in enumerate(records):
            key = record_key(r.id)
            if r.status != ACTIVE or not self.widest <= r.last_seen <= self.generated_at:
                others.append(i)
                continue
            picked.append(i)
            keys.append(key)
            digests.append(digest(lines[i]))
            seen.append(r.last_seen)
            self.names.append(f"{r.id}\t{r.type}\t{r.value}".encode())
        if others and len(previous.keys):  # why an earlier record left the list
            other_keys = np.array([record_key(records[i].id) for i in others], np.uint64)
            at = np.minimum(np.searchsorted(previous.keys, other_keys), len(previous.keys) - 1)
            for j in np.flatnonzero(previous.keys[at] == other_keys):
                self.status_of[int(other_keys[j])] = records[others[j]].status
        if not picked or self.first:
            return
        day_keys = np.frombuffer(keys, np.uint64)[start:]
        day_digests = np.frombuffer(digests, np.uint64)[start:]
        day_seen = np.frombuffer(seen, np.int64)[start:]
        where = np.searchsorted(previous.keys, day_keys)
        where = np.minimum(where, max(len(previous.keys) - 1, 0))
        found = (
            previous.keys[where] == day_keys
            if len(previous.keys)
            else np.zeros(len(day_keys), bool)
        )
        same = found & (previous.digests[where] == day_digests) if len(previous.keys) else found
        for tier, low in self.lows.items():
            now_in = day_seen >= low
            was_in = found & self.previous_in[tier][where] if len(previous.keys) else found
            added = now_in & ~was_in
            updated = now_in & was_in & ~same
            for j in np.flatnonzero(added | updated):
                r = records[picked[j]]
                kind = "added" if added[j] else "updated"
                self.changes[tier][int(day_keys[j])] = _Change(
                    kind, r.type, r.value, r.id, lines[picked[j]], r
                )

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        keys = np.frombuffer(self.keys, np.uint64)
        order = np.argsort(keys, kind="stable")
        state = State(
            self.generated_at,
            keys[order],
            np.frombuffer(self.digests, np.uint64)[order],
            np.frombuffer(self.last_seen, np.int64)[order],
            [self.names[i] for i in order],
        )
        self.out.put(contract.NEXT_STATE, state.to_bytes())
        previous = self.previous
        if len(previous.keys) and len(state.keys):
            where = np.minimum(np.searchsorted(state.keys, previous.keys), len(state.keys) - 1)
            found = state.keys[where] == previous.keys
        else:
            where = np.zeros(len(previous.keys), np.int64)
            found = np.zeros(len(previous.keys), bool)
        build_time = iso_z(self.generated_at)
        for tier, low in self.lows.items():
            still = found & (state.last_seen[where] >= low) if len(state.keys) else found
            gone = self.previous_in[tier] & ~still
            changes = self.changes[tier]
            for j in np.flatnonzero(gone):
                key = int(previous.keys[j])
                record_id, type_, value = previous.names[j].decode().split("\t", 2)
                reason = self.status_of.get(key, contract.AGED_OUT)
                if reason == ACTIVE:
                    reason = contract.AGED_OUT
                changes[key] = _Change("removed", type_, value, record_id, reason=reason)
            _write_delta(self.out, tier, sorted(changes.values(), key=_order), build_time)


def _order(change: _Change) -> tuple[str, str]:
    return change.type, change.value


def _csv_row(change: _Change, build_time: str) -> bytes:
    """The row ``GET /api/v1/iocs?format=csv`` lists for the record (for a removal: its id,
    type and value, the other columns empty), then the change columns."""
    tail = [change.kind, change.reason, build_time]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    if change.record is not None:
        writer.writerow(tail)
        return ioc_csv.render_line(change.record).rstrip(b"\n") + b"," + text.getvalue().encode()
    writer.writerow([change.id, change.type, change.value] + [""] * (_LIST_COLUMNS - 3) + tail)
    return text.getvalue().encode()


def _txt_line(change: _Change, build_time: str) -> bytes:
    """The line ``GET /api/v1/iocs?format=txt`` lists (the value), then the change, the
    reason (``-`` for an addition or update) and the build time, separated by spaces."""
    line = (
        ioc_txt.render_line(change.record)
        if change.record is not None
        else change.value.encode() + b"\n"
    )
    return line.rstrip(b"\n") + f" {change.kind} {change.reason or '-'} {build_time}\n".encode()


def _json_line(change: _Change, build_time: str) -> bytes:
    head: dict[str, str] = {
        "change": change.kind,
        "build_time": build_time,
        "id": change.id,
        "type": change.type,
        "value": change.value,
    }
    if change.kind == "removed":
        head["reason"] = change.reason
        return orjson.dumps(head) + b"\n"
    return orjson.dumps(head)[:-1] + b',"record":' + change.line.rstrip(b",") + b"}\n"


def _write_delta(out: ObjectWriter, tier: str, changes: list[_Change], build_time: str) -> None:
    """One tier's delta: the JSON lines, then the CSV rows, then the text lines, in one
    object, and the offsets of every line of each (``worker/contract/changes.py``)."""
    if not changes:
        return
    data = bytearray()
    offsets = array("Q")
    for render in (_json_line, _csv_row, _txt_line):
        offsets.append(len(data))
        for change in changes:
            data += render(change, build_time)
            offsets.append(len(data))
    out.put(contract.next_key(tier, "dat"), bytes(data))
    out.put(contract.next_key(tier, "idx"), offsets.tobytes())


def write_index(out: ObjectWriter, info: DerivedInfo) -> None:
    """Name this build's deltas after it and join them to the earlier builds' (read from the
    build folder's latest manifest) the tiers' lookback still reaches."""
    build = info.build
    fresh = {k: out.objects.pop(k) for k in list(out.objects) if k.startswith(contract.NEXT)}
    state = fresh.pop(contract.NEXT_STATE, None)
    entries: list[list] = []
    carried: dict[str, list] = {}
    # the earlier deltas continue only where this build diffed with the earlier build's state
    previous = _previous_index(out.root) if _build_dir_state(out.root)[1] else None
    if previous is not None:
        old_entries, old_objects = previous
        again = bool(old_entries) and old_entries[-1][0] == build.build_id
        if again:  # this very build, built again: the feed stays as it was
            fresh = {}
        oldest = build.generated_at - contract.MAX_LOOKBACK
        kept = [e for e in old_entries if e[1] >= oldest]
        if not again and any(e[0] == build.build_id for e in kept):
            kept = []  # an earlier build made again: the feed starts again here
        kept = kept[-(contract.MAX_BUILDS - (0 if again else 1)) :]
        for entry in kept:
            names = [
                contract.delta_key(entry[0], t, part) for t in entry[2] for part in contract.PARTS
            ]
            if not all(
                n in old_objects and (out.root / layout.object_key(old_objects[n][0])).exists()
                for n in names
            ):
                entries, carried = [], {}  # a gap: the feed starts again after it
                continue
            entries.append(entry)
            carried.update({n: old_objects[n] for n in names})
    counts: dict[str, int] = {}
    for tier in TIERS:
        idx = fresh.get(contract.next_key(tier, "idx"))
        if idx is None:
            continue
        counts[tier] = idx[1] // 8 // 3 - 1
        for part in contract.PARTS:
            carried[contract.delta_key(build.build_id, tier, part)] = fresh[
                contract.next_key(tier, part)
            ]
    if not entries or entries[-1][0] != build.build_id:
        entries.append([build.build_id, build.generated_at, counts])
    out.objects.update(carried)
    index = {"version": contract.INDEX_VERSION, "builds": entries}
    out.put(contract.INDEX_KEY, json.dumps(index, separators=(",", ":")).encode())
    if state is not None:  # for the next build into this folder (not published)
        pointer = out.root / contract.state_pointer(build.build_id)
        pointer.parent.mkdir(parents=True, exist_ok=True)
        temporary = pointer.with_name(pointer.name + ".tmp")
        temporary.write_text(state[0] + "\n")
        os.replace(temporary, pointer)  # whole or absent: a killed build leaves no half
        (out.root / contract.RESTORED).unlink(missing_ok=True)  # this build follows from now


def _previous_index(root: Path) -> tuple[list[list], dict[str, list]] | None:
    """The change index of the previous build (:func:`_previous`) and that build's objects."""
    previous = _previous(root)
    if previous is None:
        return None
    _, objects, _ = previous
    try:
        sha = objects[contract.INDEX_KEY][0]
        index = json.loads((root / layout.object_key(sha)).read_bytes())
        if index.get("version") != contract.INDEX_VERSION:
            return None  # deltas rendered otherwise: the feed starts again with this build
        return index["builds"], objects
    except (OSError, ValueError, KeyError, TypeError):
        return None


def restore(
    root: Path, dest: Destination, *, jobs: int = 8, note: Note | None = None
) -> str | None:
    """Bring the published build's change state, index and deltas into the build folder
    when the folder has no state of its own as new as it (a new machine, a lost cache), so
    this build continues the feed instead of starting it again. The id of the build restored,
    or None (nothing to do, or nothing published to continue from)."""
    published = published_build(dest)
    if published is None:
        return None
    build_id, generated_at = published
    previous = _previous(root)
    if previous is not None and previous[0] == build_id and previous[2] is not None:
        return None
    latest = latest_built(root)
    if latest is not None and latest[1] >= generated_at and previous and previous[2]:
        return None  # the folder's own build is as new: it continues the feed
    packed = dest.get(contract.published_state_key(build_id))
    try:
        state = None if packed is None else gzip.decompress(packed)
    except (OSError, EOFError) as exc:
        raise CorruptFile(
            f"the change state of build {build_id} in the bucket is damaged ({exc}); the build "
            "stops rather than start the change feed again (docs/changes.md)"
        ) from None
    manifest_raw = dest.get(layout.manifest_key(build_id))
    if state is None or manifest_raw is None or State.from_bytes(state) is None:
        if note:
            note(
                f"the published build {build_id} has no change state: the change feed starts again"
            )
        return None
    manifest = json.loads(manifest_raw)
    objects = manifest["objects"]
    # the change feed's objects, TAXII's (its log continues: generator/build/taxii_log.py), the
    # day partitions (their overlays continue: generator/build/days.py) and the search index
    # (its base is kept: generator/build/search_index.py)
    kept = (
        "changes/",
        "taxii/",
        "iocs/day/",
        "iocs/search/",
        layout.view_index_key(layout.ALL_VIEW),
    )
    wanted = {k: v for k, v in objects.items() if k.startswith(kept)}
    todo = sorted({sha for sha, size in wanted.values() if not holds(root, sha, size)})

    def fetch(sha: str) -> None:
        data = dest.get_stored(layout.object_key(sha))  # TAXII's may be stored compressed
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            problem = "missing" if data is None else "damaged (its hash does not match)"
            raise CorruptFile(
                f"the change feed object {layout.object_key(sha)} of build {build_id} is "
                f"{problem}; the build stops rather than start the change feed again (docs/changes.md)"
            )
        _write_object(root, sha, data)

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="changes") as pool:
        list(pool.map(fetch, todo))
    state_sha = hashlib.sha256(state).hexdigest()
    _write_object(root, state_sha, state)
    marker = {"build_id": build_id, "generated_at": generated_at, "objects": wanted}
    marker["state"] = state_sha
    # how its objects are stored: framed ones read by range, coded ones stored compressed
    for section in ("framed", "coded"):
        marker[section] = {k: v for k, v in (manifest.get(section) or {}).items() if k in wanted}
    path = root / contract.RESTORED
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(marker, separators=(",", ":")))
    os.replace(temporary, path)
    if note:
        note(f"restored the change feed of build {build_id} ({len(todo)} objects downloaded)")
    return build_id


def holds(root: Path, sha: str, size: int) -> bool:
    """Whether the build folder holds the object ``sha`` with ``size`` bytes."""
    try:
        return (root / layout.object_key(sha)).stat().st_size == size
    except OSError:
        return False


def _write_object(root: Path, sha: str, data: bytes) -> None:
    path = root / layout.object_key(sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
