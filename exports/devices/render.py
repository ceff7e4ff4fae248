"""Rendering the device files of ``worker.contract.device_files``: each file's renderer, loaded from its
dotted path, fed the records of the types the file holds."""

from __future__ import annotations

from collections.abc import Sequence
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
