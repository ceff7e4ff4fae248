"""Objects stored compressed whole: the answers the worker sends as they are stored.

The objects the worker serves whole (the default text answers, device files, the MISP feed,
site pages, TAXII documents, small JSON documents) are text, and nearly every client accepts
``gzip``. The build stores each such object once in ``gzip`` (``CODING``), so the worker sends
the stored bytes to a client that accepts it and compresses nothing in the request path; a
client that refuses compression gets the text inflated on the fly. An object is kept as text
when it is shorter than ``MIN_SIZE`` (the worker does not compress those either) or when gzip
does not make it smaller.

A manifest lists a coded object under ``objects`` with the SHA-256 and size of its stored
(gzip) bytes, what publish uploads and verify checks, and under ``coded`` with its coding and
the SHA-256 and size of its text: ``"coded": {key: ["gzip", sha256, size]}``. The text's hash
names the identity representation (its ETag) and is what a download's ``SHA256SUMS`` lists.

Objects read by byte range (binary tables, day partitions, framed objects) are never coded.
Standard library only: the worker imports it.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Callable

from worker.contract import device_files, framing

CODING = "gzip"
# level 6: 8 % smaller than level 1 on device files and site pages at 1.8x its CPU time, paid
# once per build instead of once per request (docs/performance.md)
LEVEL = 6
GZIP_WBITS = 31  # zlib's gzip container: the same bytes from ``compress`` and ``Coder``
MIN_SIZE = 1024  # worker.encoding.MIN_SIZE: shorter bodies are sent as text
TEXT_SUFFIXES = (".json", ".csv", ".txt", ".xml", ".html", ".svg", ".css", ".js")
TEXT_PREFIXES = (device_files.PREFIX + "/",)  # device files: text whatever their names
NEVER = ("current.json", "builds/", "changes/")  # read by the worker's own readers, or ranges


def is_codable(key: str) -> bool:
    """Whether the build stores the object under logical ``key`` compressed when that pays."""
    if framing.is_framed(key) or key.startswith(NEVER):
        return False
    return key.endswith(TEXT_SUFFIXES) or key.startswith(TEXT_PREFIXES)


def compress(text: bytes | bytearray | memoryview) -> bytes | None:
    """The stored bytes of ``text``, or None when it is kept as it is (short, or no smaller)."""
    size = text.nbytes if isinstance(text, memoryview) else len(text)
    if size < MIN_SIZE:
        return None
    coder = zlib.compressobj(LEVEL, zlib.DEFLATED, GZIP_WBITS)
    packed = coder.compress(text) + coder.flush()
    return packed if len(packed) < size else None


def decompress(stored: bytes) -> bytes:
    return gzip.decompress(stored)


class Coder:
    """Compresses a text written a piece at a time; ``emit`` receives the stored bytes. The
    first ``MIN_SIZE`` bytes are held: ``finish`` returns them when the text stayed shorter
    (store them as they are), else None."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.held: bytearray | None = bytearray()
        self.digest = hashlib.sha256()  # of the text
        self.zlib = zlib.compressobj(LEVEL, zlib.DEFLATED, GZIP_WBITS)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.digest.update(data)
        if self.held is not None:
            self.held += data
            if len(self.held) < MIN_SIZE:
                return
            data, self.held = bytes(self.held), None
        packed = self.zlib.compress(data)
        if packed:
            self.emit(packed)

    def finish(self) -> bytes | None:
        if self.held is not None:
            return bytes(self.held)
        self.emit(self.zlib.flush())
        return None
