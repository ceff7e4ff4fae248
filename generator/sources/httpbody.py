"""Read an HTTP body with a cap on its *decoded* size (gzip, deflate and, if installed, br).

Decompression is incremental and each step is asked for at most what is left under the
cap plus one byte, so a gzip bomb (a few MB that inflate to GB) costs at most the cap in
memory and is stopped as soon as it passes it. Concatenated gzip members are decoded in
turn; ``deflate`` accepts both the zlib-wrapped form the RFC names and the raw form some
servers send.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from generator.errors import SocdefError

try:  # optional: brotli is advertised only when the module is installed
    import brotli as _brotli
except ImportError:  # pragma: no cover - depends on the environment
    _brotli = None

__all__ = ["ACCEPT_ENCODING", "BodyError", "BodyTooLarge", "read_body"]

ACCEPT_ENCODING = "gzip, deflate" + (", br" if _brotli is not None else "")


class BodyError(SocdefError, ValueError):
    """The body cannot be decoded (corrupt data or an unsupported coding)."""


class BodyTooLarge(BodyError):
    """The body, once decoded, is larger than the cap."""


class _Zlib:
    """gzip (multi-member) or deflate (zlib-wrapped or raw), bounded per call."""

    def __init__(self, wbits: int) -> None:
        self.wbits = wbits
        self.decoder = zlib.decompressobj(wbits)
        self.started = False

    def decode(self, data: bytes, room: int) -> Iterator[bytes]:
        while data:
            try:
                piece = self.decoder.decompress(data, room)
            except zlib.error as exc:
                if self.wbits == zlib.MAX_WBITS and not self.started:
                    # raw deflate without the zlib header; _Inflate has no subclasses, so re-running its own
                    # __init__ is sound.
                    self.__init__(-zlib.MAX_WBITS)  # type: ignore[misc]
                    continue
                raise BodyError(f"corrupt compressed body: {exc}") from None
            self.started = True
            yield piece
            data = self.decoder.unconsumed_tail
            if self.decoder.eof:
                data = self.decoder.unused_data.lstrip(b"\0")
                if data and self.wbits == 31:  # the next gzip member
                    self.decoder = zlib.decompressobj(31)
                else:
                    return

    def finish(self, room: int) -> Iterator[bytes]:
        yield self.decoder.flush(room)
        if self.started and not self.decoder.eof:
            raise BodyError("compressed body is truncated")


class _Brotli:
    def __init__(self) -> None:
        self.decoder: Any = _brotli.Decompressor()

    def decode(self, data: bytes, room: int) -> Iterator[bytes]:
        try:
            yield self.decoder.process(data, output_buffer_limit=room)
            while not self.decoder.can_accept_more_data():
                yield self.decoder.process(b"", output_buffer_limit=room)
        except _brotli.error as exc:
            raise BodyError(f"corrupt brotli body: {exc}") from None

    def finish(self, room: int) -> Iterator[bytes]:
        if not self.decoder.is_finished():
            raise BodyError("brotli body is truncated")
        yield b""


class _Identity:
    def decode(self, data: bytes, room: int) -> Iterator[bytes]:
        yield data

    def finish(self, room: int) -> Iterator[bytes]:
        yield b""


def _decoder(content_encoding: str) -> _Zlib | _Brotli | _Identity:
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) > 1:
        raise BodyError(f"unsupported Content-Encoding: {content_encoding}")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return _Zlib(31)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    if coding == "br" and _brotli is not None:
        return _Brotli()
    raise BodyError(f"unsupported Content-Encoding: {content_encoding}")


def read_body(chunks: Iterable[bytes], content_encoding: str, max_bytes: int) -> bytes:
    """Decode ``chunks`` (the raw body); raise BodyTooLarge past ``max_bytes`` decoded bytes."""
    decoder = _decoder(content_encoding)
    out = bytearray()
    raw = 0
    for chunk in chunks:
        raw += len(chunk)
        if raw > max_bytes:
            raise BodyTooLarge(f"body larger than {max_bytes} bytes")
        for piece in decoder.decode(chunk, max_bytes - len(out) + 1):
            out += piece
            if len(out) > max_bytes:
                raise BodyTooLarge(f"decoded body larger than {max_bytes} bytes")
    for piece in decoder.finish(max_bytes - len(out) + 1):
        out += piece
        if len(out) > max_bytes:
            raise BodyTooLarge(f"decoded body larger than {max_bytes} bytes")
    return bytes(out)
