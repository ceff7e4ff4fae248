"""Writing a build's objects, and the two extension points of the build.

A *sink* sees every day of records (newest first) and then writes data objects; a *derived
stage* runs once the build id is known, with a reader over the data objects. Adding an output to
the build is one sink or stage plus one line in ``generator/build/tree.py``'s tables.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from exports.model import IOCRecord
from worker.buckets.storage import Build
from worker.contract import coded, framing, layout

if TYPE_CHECKING:
    from generator.store.generations import Store


class ObjectWriter:
    """Writes content-addressed objects under ``root/objects`` and remembers their keys.

    ``put`` writes an object in place, under its SHA-256: no temporary file and rename, which
    cost a second journalled metadata change per object (a million-IOC build writes tens of
    thousands of objects). A build killed while writing leaves a file shorter than its object;
    the next build into the same folder sees the wrong size and writes it again, and a file of
    the right size is the object (sizes only grow as bytes are written). Nothing reads a build
    folder's new objects before the build that writes them has finished.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects: dict[str, list] = {}
        self.framed: dict[str, int] = {}  # key → size of the text of a framed object
        self.coded: dict[str, list] = {}  # key → [coding, SHA-256, size] of a coded one's text
        self._folders: set[str] = set()  # object folders known to exist

    def put(self, key: str, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` (bytes, or a C-contiguous byte view) under ``key``; framed when the
        layout says so (``worker/contract/framing.py``), compressed whole when that pays
        (``worker/contract/coded.py``)."""
        if framing.is_framed(key):
            text = data.nbytes if isinstance(data, memoryview) else len(data)
            data = framing.frame(data)
            self.framed[key] = text
        elif coded.is_codable(key):
            packed = coded.compress(data)
            if packed is not None:
                text = data.nbytes if isinstance(data, memoryview) else len(data)
                self.coded[key] = [coded.CODING, hashlib.sha256(data).hexdigest(), text]
                data = packed
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        path = self._claim(key, hashlib.sha256(data).hexdigest(), size)
        if path is not None:
            with open(path, "wb") as fh:
                fh.write(data)

    def carry(
        self, key: str, stored: list, framed: int | None = None, coding: list | None = None
    ) -> None:
        """List under ``key`` an object the build folder already holds, as an earlier build
        stored it: ``[SHA-256, size]`` of its stored bytes, the size of its text when framed,
        its ``coded`` entry when compressed whole."""
        if key in self.objects:
            raise ValueError(f"two producers for one build object: {key}")
        self.objects[key] = [str(stored[0]), int(stored[1])]
        if framed is not None:
            self.framed[key] = framed
        if coding is not None:
            self.coded[key] = list(coding)

    def stream(self, key: str) -> ObjectStream:
        """An object under ``key`` written a piece at a time (for one too big to hold whole)."""
        if key in self.objects:
            raise ValueError(f"two producers for one build object: {key}")
        return ObjectStream(self, key)

    def _place(self, key: str, tmp: str, sha: str, size: int) -> None:
        """Put the finished temporary file ``tmp`` (``size`` bytes, SHA-256 ``sha``) in place."""
        path = self._claim(key, sha, size)
        if path is None:
            os.unlink(tmp)
        else:
            os.replace(tmp, path)

    def _claim(self, key: str, sha: str, size: int) -> str | None:
        """Record object ``sha`` under ``key``; the path to write it to (its folder made), or
        None when the folder already holds it whole."""
        if key in self.objects:
            raise ValueError(f"two producers for one build object: {key}")
        self.objects[key] = [sha, size]
        # os.path on strings: a big build writes tens of thousands of objects
        path = os.path.join(self.root, layout.object_key(sha))
        try:
            if os.stat(path).st_size == size:
                return None
        except FileNotFoundError:
            pass
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        return path


class ObjectStream:
    """One object written a piece at a time (``ObjectWriter.stream``): hashed as it is written,
    put in place when the ``with`` block ends, and dropped if it ends with an error."""

    _made = 0  # temporary files made by this process

    def __init__(self, writer: ObjectWriter, key: str) -> None:
        self.writer = writer
        self.key = key
        self.digest = hashlib.sha256()
        self.size = 0  # bytes written (of the text, for a framed object)
        self.stored = 0  # bytes stored
        folder = os.path.join(writer.root, "objects")
        os.makedirs(folder, exist_ok=True)
        ObjectStream._made += 1
        self.tmp = os.path.join(folder, f".stream.{os.getpid()}.{ObjectStream._made}.tmp")
        self.file = open(self.tmp, "wb")  # noqa: SIM115 (closed by __exit__)
        self.framer = framing.Framer(self._store) if framing.is_framed(key) else None
        # a codable text: held until it is long enough to compress, then compressed as written
        self.coder = coded.Coder(self._store) if coded.is_codable(key) else None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.size += data.nbytes if isinstance(data, memoryview) else len(data)
        if self.framer is not None:
            self.framer.write(data)
        elif self.coder is not None:
            self.coder.write(data)
        else:
            self._store(data)

    def _store(self, data: bytes | bytearray | memoryview) -> None:
        self.digest.update(data)
        self.file.write(data)
        self.stored += data.nbytes if isinstance(data, memoryview) else len(data)

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is None and self.framer is not None:
            self.framer.finish()
            self.writer.framed[self.key] = self.framer.size
        if kind is None and self.coder is not None:
            self._finish_coded(self.coder)
        self.file.close()
        if kind is not None:
            os.unlink(self.tmp)
            return
        self.writer._place(self.key, self.tmp, self.digest.hexdigest(), self.stored)

    def _finish_coded(self, coder: coded.Coder) -> None:
        """Store a short text as it is; list a compressed one under ``coded``; a text that did
        not get smaller is stored again as text (inflated from the temporary file)."""
        text = coder.finish()
        if text is not None:  # never compressed: shorter than coded.MIN_SIZE
            self._store(text)
        elif self.stored >= self.size:
            self.file.close()
            with open(self.tmp, "rb") as fh:
                plain = coded.decompress(fh.read())
            self.file = open(self.tmp, "wb")  # noqa: SIM115 (closed by __exit__)
            self.digest, self.stored = hashlib.sha256(), 0
            self._store(plain)
        else:
            self.writer.coded[self.key] = [coded.CODING, coder.digest.hexdigest(), self.size]


@dataclass(frozen=True, slots=True)
class BuildInfo:
    generated_at: int
    source_name: str
    store: Store  # the store being built (articles, per-source state)


@dataclass(frozen=True, slots=True)
class DerivedInfo:
    build: Build  # a reader over the data objects, with the final build id
    views: list[str]  # every non-empty view
    source_name: str


class RecordSink(Protocol):
    def add_day(self, day: str, records: list[IOCRecord]) -> None: ...

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None: ...


@runtime_checkable
class RenderedSink(RecordSink, Protocol):
    """A sink that also reads the day's rendered lines (variant → one line per record), so it
    need not render a variant again."""

    def add_rendered(
        self, day: str, records: list[IOCRecord], rendered: Mapping[str, list[bytes]]
    ) -> None: ...
