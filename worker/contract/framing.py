"""Objects stored as independently compressed blocks, still read by byte ranges of their text.

The objects the worker reads by range (the day partitions ``iocs/day/<day>/<v>.dat`` with their
offsets and timestamps, the views' line numbers ``iocs/view/<view>.bin``, the search shards, and
the TAXII data chunks ``taxii/c/all/{obj,man}/<k>.dat`` and entry files ``index.bin``,
``type/<t>.bin``; and the JSON default answers, which the worker always completes with their
links) are stored *framed*: their content cut into blocks of ``BLOCK`` bytes, each compressed
on its own (raw deflate), followed by a table of the blocks' compressed ends and a footer. A range of the text costs the compressed blocks it
touches, read as one range of the stored object. A manifest lists a framed object under
``objects`` with the SHA-256 and size of its stored bytes (what publish uploads and verify
checks) and under ``framed`` with the size of its text.

    stored object = block 0 … block n-1 | n × uint32 LE compressed end | FOOTER

Standard library only: the worker imports it.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Callable

BLOCK = 65_536  # bytes of text per block
# deflate level 4: 8.1x on a mix of partitions and TAXII chunks; 12 % smaller than level 1 at
# 1.7x its CPU time; level 6 is 5 % smaller again at 2.5x (docs/performance.md)
LEVEL = 4
FOOTER = struct.Struct("<II4s")  # block count, block size, magic
MAGIC = b"SDZ1"
FRAMED_SUFFIXES = (".dat", ".idx", ".bin")
# Not framed: objects served whole as they are stored (the default answers of the text formats,
# device files, the MISP feed, the site: an edge may send them itself, docs/deploy.md), small
# JSON documents (these are stored gzip-compressed whole: worker/contract/coded.py), and the
# TAXII id index (random UUIDs: deflate saves 10 %).
FRAMED_PREFIXES = ("iocs/day/", "iocs/view/", "iocs/search/shards.", "taxii/c/")
# JSON default answers are stored without their links (the worker adds them), so they are
# never sent as stored: framed too.
FRAMED_DEFAULTS = ("iocs/default/", ".json")


def is_framed(key: str) -> bool:
    """Whether the build stores the object under logical ``key`` framed."""
    if key.startswith(FRAMED_DEFAULTS[0]):
        return key.endswith(FRAMED_DEFAULTS[1])
    return key.endswith(FRAMED_SUFFIXES) and key.startswith(FRAMED_PREFIXES)


def _deflate(block: bytes | memoryview) -> bytes:
    coder = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    return coder.compress(block) + coder.flush()


class Framer:
    """Frames a text written a piece at a time; ``emit`` receives the stored bytes in order."""

    def __init__(self, emit: Callable[[bytes], None]) -> None:
        self.emit = emit
        self.pending = bytearray()
        self.ends = array("I")
        self.stored = 0
        self.size = 0  # bytes of text

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.pending += data
        self.size += data.nbytes if isinstance(data, memoryview) else len(data)
        if len(self.pending) >= BLOCK:
            view = memoryview(self.pending)
            whole = len(view) - len(view) % BLOCK
            for at in range(0, whole, BLOCK):
                self._block(view[at : at + BLOCK])
            view.release()
            del self.pending[:whole]

    def _block(self, block: bytes | memoryview) -> None:
        packed = _deflate(block)
        self.stored += len(packed)
        self.ends.append(self.stored)
        self.emit(packed)

    def finish(self) -> None:
        if self.pending:
            self._block(bytes(self.pending))
            self.pending = bytearray()
        if self.ends.itemsize != 4:  # pragma: no cover - every CPython platform has 4-byte I
            raise RuntimeError("array('I') is not 32-bit here")
        tail = self.ends.tobytes() + FOOTER.pack(len(self.ends), BLOCK, MAGIC)
        self.stored += len(tail)
        self.emit(tail)


def frame(data: bytes | bytearray | memoryview) -> bytes:
    """The stored bytes of a whole text."""
    parts: list[bytes] = []
    framer = Framer(parts.append)
    framer.write(data)
    framer.finish()
    return b"".join(parts)


class Table:
    """The block table of one stored object: where each block's compressed bytes lie."""

    __slots__ = ("block", "ends")

    def __init__(self, block: int, ends: list[int]) -> None:
        self.block = block
        self.ends = ends

    @classmethod
    def read(cls, get: Callable[[int, int], bytes], stored: int) -> Table:
        """The table of an object of ``stored`` bytes; ``get(start, end)`` reads its bytes."""
        count, block, magic = FOOTER.unpack(get(stored - FOOTER.size, stored))
        if magic != MAGIC or block <= 0:
            raise ValueError("not a framed object")
        start = stored - FOOTER.size - 4 * count
        ends = array("I")
        ends.frombytes(get(start, start + 4 * count))
        return cls(block, ends.tolist())

    def span(self, first: int, last: int) -> tuple[int, int]:
        """The stored byte range of blocks ``first … last``."""
        return (self.ends[first - 1] if first else 0), self.ends[last]


def inflate(packed: bytes | memoryview) -> bytes:
    return zlib.decompress(packed, -15)


def unframe(stored: bytes) -> bytes:
    """The whole text of a stored framed object (for tools that read a build folder directly)."""
    table = Table.read(lambda s, e: stored[s:e], len(stored))
    view = memoryview(stored)
    return b"".join(inflate(view[slice(*table.span(k, k))]) for k in range(len(table.ends)))
