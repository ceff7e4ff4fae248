"""Day partitions as immutable bases with per-build overlays (the writer's side).

A build with nothing to follow writes each UTC day's base: ``ts.bin``, ``<v>.dat``, ``<v>.idx``
with the day's records as lines 0..n-1 in list order. A build that follows one in the same
folder (``changes.previous_manifest``: the folder's latest build, or the published one
``changes.restore`` brought) keeps a day's base objects as they were (the same SHA-256: a
publish does not upload them) and writes per stream only an overlay (reader:
``worker/buckets/days.py``):

- a record the day held keeps its logical line; when its line of a stream changed in place
  (new context, confidence, status …) the stream's overlay holds the new line under the same
  number, so views and search refs stay put;
- a record new to the day gets a line after every line the day holds (n, n+1, …);
- a record that left the day leaves a dead line no view names;
- ``order.bin`` lists the logical lines in list order when that is not 0..count-1.

Which lines moved is decided by the first process from the previous build's partitions (each
live line's record id, from its JSON line) and shipped to the second with the day's records, so
both processes number lines alike. A day whose overlay and dead lines would pass
``COMPACT`` of its base is written afresh as a new base, as is a day the previous build did not
have (or whose base objects the folder lacks).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from exports.model import IOCRecord
from generator.build import changes
from generator.build.sinks import ObjectWriter
from worker.buckets import days as reader
from worker.buckets.storage import Build
from worker.contract import layout

COMPACT = 0.25  # overlay lines + dead lines over base lines beyond which a day is written afresh
ID_PREFIX = b'{"id":"'  # a JSON line starts with its record id (exports/ioc_json.py)


@dataclass(frozen=True, slots=True)
class Plan:
    """How one day is written: ``lines`` None for a fresh base (records on lines 0..n-1),
    else each record's logical line over a kept base of ``base`` lines."""

    lines: list[int] | None = None
    base: int = 0


FRESH = Plan()


def _id_of(line: bytes) -> str:
    if line.startswith(ID_PREFIX):
        end = line.index(b'"', len(ID_PREFIX))
        return line[len(ID_PREFIX) : end].decode()
    raise ValueError("a JSON line that does not start with its id")


class Previous:
    """The day partitions of the build this one follows, as far as the writer needs them."""

    def __init__(self, root: Path, manifest: dict, build: Build) -> None:
        self.root = root
        self.manifest = manifest
        self.build = build
        self.framed: dict[str, int] = dict(manifest.get("framed") or {})
        index = self.build.read_json(layout.view_index_key(layout.ALL_VIEW))
        rows = index.get("days", []) if isinstance(index, dict) else []
        self.counts = {str(day): int(count) for day, count, *_ in rows}

    @classmethod
    def of(cls, root: Path) -> Previous | None:
        previous = changes.previous_build(root)
        if previous is None:
            return None
        try:
            return cls(root, *previous)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def base_keys(self, day: str, variants: Iterable[str]) -> list[str]:
        keys = [layout.day_ts_key(day)]
        for variant in variants:
            keys += [layout.day_data_key(day, variant), layout.day_index_key(day, variant)]
        return keys

    def holds(self, keys: Iterable[str]) -> bool:
        """Whether the previous build has these objects and the folder holds their bytes."""
        objects = self.manifest["objects"]
        for key in keys:
            entry = objects.get(key)
            if entry is None or key not in self.framed:
                return False
            if not changes.holds(self.root, entry[0], entry[1]):
                return False
        return True

    def base_count(self, day: str) -> int:
        return self.framed[layout.day_ts_key(day)] // 8

    def live(self, day: str) -> dict[str, int]:
        """Record id → logical line of every record the day held."""
        count = self.counts[day]
        listed = reader.list_lines(self.build, day, count)
        lines = reader.day_lines(self.build, day, "json", count)
        return {_id_of(text): number for number, text in zip(listed, lines, strict=True)}

    def base_lines(self, day: str, variant: str) -> list[bytes]:
        data = self.build.read(layout.day_data_key(day, variant)) or b""
        offsets = reader.offsets(self.build, day, variant)
        return [data[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]

    def base_stamps(self, day: str) -> array[int]:
        stamps = array("q")
        stamps.frombytes(self.build.read(layout.day_ts_key(day)) or b"")
        return stamps

    def reuse(self, out: ObjectWriter, keys: Iterable[str]) -> None:
        """List the previous build's objects under ``keys`` in this build, bytes untouched."""
        for key in keys:
            out.carry(key, self.manifest["objects"][key], self.framed[key])


def plan(
    previous: Previous | None,
    day: str,
    records: list[IOCRecord],
    variants: Iterable[str],
    rendered: Mapping[str, list[bytes]],
) -> Plan:
    """Decide how ``day`` is written (the first process; the second follows its plan)."""
    if previous is None or day not in previous.counts:
        return FRESH
    if not previous.holds(previous.base_keys(day, variants)):
        return FRESH
    try:
        base = previous.base_count(day)
        live = previous.live(day)
    except (OSError, ValueError, KeyError):
        return FRESH
    top = max([base - 1, *live.values()]) + 1
    lines: list[int] = []
    used: set[int] = set()
    for r in records:
        number = live.get(r.id)
        if number is None or number in used:
            number, top = top, top + 1
        used.add(number)
        lines.append(number)
    kept = sum(1 for n in lines if n < base)
    moved = len(lines) - kept + (base - kept)  # appended lines and dead base lines
    if "stix" in rendered:  # lines changed in place: the first process renders stix
        old = previous.base_lines(day, "stix")
        moved += sum(
            1
            for n, text in zip(lines, rendered["stix"], strict=True)
            if n < base and old[n] != text
        )
    if moved > COMPACT * base:
        return FRESH
    return Plan(lines, base)


def write_overlay(
    out: ObjectWriter,
    previous: Previous,
    day: str,
    records: list[IOCRecord],
    rendered: Mapping[str, list[bytes]],
    timestamps: bool,
    day_plan: Plan,
) -> None:
    """Keep the day's base objects; write the overlay of each stream that moved."""
    lines, base = day_plan.lines, day_plan.base
    assert lines is not None
    streams = list(rendered)
    previous.reuse(out, previous.base_keys(day, streams)[0 if timestamps else 1 :])
    if timestamps:
        old_stamps = previous.base_stamps(day)
        held = sorted(
            (n, r.last_seen)
            for n, r in zip(lines, records, strict=True)
            if n >= base or old_stamps[n] != r.last_seen
        )
        if held:
            numbers = array("I", [n for n, _ in held]).tobytes()
            out.put(layout.overlay_lines_key(day, layout.TS_STREAM), numbers)
            out.put(layout.overlay_ts_key(day), array("q", [t for _, t in held]).tobytes())
        if lines != list(range(len(lines))):
            out.put(layout.day_order_key(day), array("I", lines).tobytes())
    for variant in streams:
        old = previous.base_lines(day, variant)
        new = rendered[variant]
        moved = sorted((n, i) for i, n in enumerate(lines) if n >= base or old[n] != new[i])
        if not moved:
            continue
        offsets = array("Q", [0])
        total = 0
        for _, i in moved:
            total += len(new[i])
            offsets.append(total)
        numbers = array("I", [n for n, _ in moved]).tobytes()
        out.put(layout.overlay_lines_key(day, variant), numbers)
        out.put(layout.overlay_data_key(day, variant), b"".join(new[i] for _, i in moved))
        out.put(layout.overlay_index_key(day, variant), offsets.tobytes())
