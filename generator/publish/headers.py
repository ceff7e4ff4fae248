"""HTTP metadata of published objects: Content-Type per object class and Cache-Control.

An object's type follows from the logical key(s) that name it in the manifest. Day partitions
and TAXII data chunks are stored framed (independently compressed blocks with a block table,
``worker/contract/framing.py``), so they are binary to HTTP; offsets, line numbers and
timestamps are binary too: the worker reads framed objects by byte range and inflates the
blocks itself. The objects stored compressed whole (``worker/contract/coded.py``) carry
``Content-Encoding: gzip`` where the bucket can say so (S3), so a presigned URL or a CDN sends
them as what they are (see docs/publish.md).
"""

from __future__ import annotations

from worker.contract import device_files, formats, framing, layout

IMMUTABLE = "public, max-age=31536000, immutable"  # content-addressed objects and manifests
SHORT = "public, max-age=30"  # the pointer: a reader follows a publish within 30 s

BINARY = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"
BY_SUFFIX = {
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".txt": TEXT,
    ".xml": "application/xml",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".bin": BINARY,
    ".idx": BINARY,
}
# Day partitions ``<variant>.dat``: one rendered record per line.
DAT_BY_VARIANT = {v.name: v.media_type for v in formats.VARIANTS}
# Default answers ``iocs/default/<tier>/<view>.<format>``: what the worker answers with.
DEFAULT_BY_FORMAT = {f.name: f.media_type for f in formats.LISTED}


def content_type(logical_key: str) -> str:
    name = logical_key.rsplit("/", 1)[-1]
    stem, dot, suffix = name.rpartition(".")
    if logical_key.startswith(device_files.PREFIX + "/"):
        device = device_files.file_of(name)
        return device.media_type if device is not None else BY_SUFFIX.get("." + suffix, BINARY)
    if not dot or framing.is_framed(logical_key):
        return BINARY
    if suffix == "dat":
        return DAT_BY_VARIANT.get(stem, TEXT)
    if logical_key.startswith(layout.DEFAULT_PREFIX):
        return DEFAULT_BY_FORMAT[suffix]
    return BY_SUFFIX.get("." + suffix, BINARY)


def content_types(objects: dict[str, list]) -> dict[str, str]:
    """Object key → Content-Type; an object named by several keys takes the first key's type."""
    types: dict[str, str] = {}
    for key in sorted(objects):
        types.setdefault(layout.object_key(objects[key][0]), content_type(key))
    return types


def content_encodings(manifest: dict) -> dict[str, str]:
    """Object key → Content-Encoding of each object stored compressed whole."""
    objects = manifest["objects"]
    return {
        layout.object_key(objects[key][0]): coding[0]
        for key, coding in (manifest.get("coded") or {}).items()
        if key in objects
    }
