"""Rendering the device files of ``worker.contract.device_files``: each file's renderer,
loaded from its dotted path, fed the records of the types the file holds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

from exports.devices.common import DeviceMeta, DeviceRenderer
from exports.model import IOCRecord
from exports.registry import named
from worker.contract.device_files import DEVICE_FILES, DeviceFile

RENDERERS: dict[str, DeviceRenderer] = {
    f.name: cast(DeviceRenderer, named(f.renderer)) for f in DEVICE_FILES
}


def render(file: DeviceFile, records: Sequence[IOCRecord], meta: DeviceMeta) -> list[bytes]:
    """The parts of ``file`` (one unless a device's entry limit splits it) from ``records``
    (newest first; those of other types are left out)."""
    return RENDERERS[file.name]([r for r in records if r.type in file.types], meta)


def render_all(
    records: Sequence[IOCRecord], meta: DeviceMeta
) -> Iterator[tuple[DeviceFile, list[bytes]]]:
    """Every device file's parts from one tier's ``records``, each file fed the records of its
    types (newest first): one pass groups them by type, a file of several types filters once
    per set of types."""
    by_type: dict[str, list[IOCRecord]] = {}
    for r in records:
        by_type.setdefault(r.type, []).append(r)
    chosen: dict[tuple[str, ...], list[IOCRecord]] = {}
    for file in DEVICE_FILES:
        selected = chosen.get(file.types)
        if selected is None:
            if len(file.types) == 1:
                selected = by_type.get(file.types[0], [])
            else:
                types = frozenset(file.types)
                selected = [r for r in records if r.type in types]
            chosen[file.types] = selected
        yield file, RENDERERS[file.name](selected, meta)
