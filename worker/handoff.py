"""Handing the bytes of an answer to an edge: the worker decides, nginx or S3 sends the body.

The last step of an answer, after content coding, when ``socdef serve --edge nginx`` runs the
worker behind nginx (``deploy/nginx/socdef-edge.conf.j2``): a ``200`` to a ``GET`` or ``HEAD``
keeps its status and headers but loses its body, and names in ``X-Accel-Redirect`` the file
nginx sends instead:

- ``<prefix>objects/<sha[:2]>/<sha>``: the body is one published object byte for byte
  (``Response.source``: a download, a default CSV/TXT answer, a site page) and nginx reads it
  from the folder bucket;
- ``<prefix>answers/<build id>/<hash[:2]>/<hash>``: any other body (a JSON answer with its
  links, a compressed representation), written once into the answers folder, content-addressed.

Errors, 304s, redirects and every header are the worker's, so a client cannot tell the two
deployments apart. With a presigner (an S3 bucket and ``--redirect-large``), a body that is one
object of at least ``redirect_min`` bytes is answered ``307`` to a short-lived presigned URL of
that object instead (docs/deploy.md, "Large downloads from S3"). An object stored compressed
(``worker/contract/coded.py``) is the body only of an answer sent in its coding, so only a
client that accepts gzip is sent to it (S3 marks it ``Content-Encoding: gzip``); the others get
the text from the worker.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from worker.contract import layout
from worker.http import Request, Response

ACCEL = "x-accel-redirect"
OBJECTS = "objects/"
ANSWERS = "answers/"
CREATED = ".created"
RETIRE_AFTER = 60.0  # seconds after its replacement that a build's answers are removed
# presign(object key, seconds valid) -> URL
Presigner = Callable[[str, int], str]


class Handoff:
    """Replace the body of a successful answer by a pointer the edge follows."""

    def __init__(
        self,
        *,
        prefix: str = "",
        answers: Path | None = None,
        objects: bool = False,
        presign: Presigner | None = None,
        redirect_min: int = 0,
        redirect_seconds: int = 60,
    ) -> None:
        self.prefix = prefix  # "" = no nginx: bodies stay in the answer
        self.answers = answers
        self.objects = objects  # nginx reads the bucket's objects (a folder bucket)
        self.presign = presign
        self.redirect_min = redirect_min
        self.redirect_seconds = redirect_seconds
        self._build: str | None = None  # the build the last answer was written for
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.prefix) or self.presign is not None

    def presigned(self, req: Request, resp: Response) -> bool:
        """Turn a large download into a ``307`` to a presigned URL of its object (before
        content coding: every client takes the identity form S3 sends); True if it did."""
        ref = resp.source
        if self.presign is None or ref is None or ref.size < self.redirect_min:
            return False
        if resp.status != 200 or req.method not in ("GET", "HEAD"):
            return False
        self._redirect(resp, layout.object_key(ref.sha256))
        return True

    def __call__(self, req: Request, resp: Response, build_id: str | None) -> Response:
        """Hand the body of a successful answer to nginx (after content coding)."""
        if not self.prefix or resp.status != 200 or req.method not in ("GET", "HEAD"):
            return resp
        if not resp.body or not any(name == "etag" for name, _ in resp.headers):
            return resp  # not an answer from the build (/healthz, key management): kept here
        if resp.source is not None and self.objects:
            target = OBJECTS + layout.object_key(resp.source.sha256).removeprefix("objects/")
        else:
            target = ANSWERS + self._written(resp.body, build_id or "unknown")
        resp.header(ACCEL, self.prefix + target)
        resp.body = b""  # nginx sends the file; its length is the file's
        return resp

    def _redirect(self, resp: Response, key: str) -> None:
        """``307`` to a presigned URL of ``key``; never kept for the hot path (it expires)."""
        assert self.presign is not None
        resp.status, resp.body, resp.shared, resp.source = 307, b"", None, None
        resp.headers = [(k, v) for k, v in resp.headers if k.lower() != "etag"]
        resp.header("location", self.presign(key, self.redirect_seconds))

    def _written(self, body: bytes, build_id: str) -> str:
        """The path (under the answers folder) of a file holding ``body``, written if missing:
        ``<build id>/<hash[:2]>/<hash>``, whole or not at all (temporary file + rename)."""
        assert self.answers is not None
        name = hashlib.blake2b(body, digest_size=16).hexdigest()
        relative = f"{build_id}/{name[:2]}/{name}"
        path = self.answers / relative
        if not path.exists():
            if build_id != self._build:
                self._retire(build_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}")
            partial.write_bytes(body)
            os.replace(partial, path)
        return relative

    def _retire(self, build_id: str) -> None:
        """On a process's first answer for a build, remove the answers of every build that
        another one replaced more than ``RETIRE_AFTER`` seconds ago (no process still serves
        it: the pointer is re-read every 2 s). A build's folder is dated by its ``.created``
        marker, written when its first answer is."""
        assert self.answers is not None
        with self._lock:
            self._build = build_id
            folder = self.answers / build_id
            folder.mkdir(parents=True, exist_ok=True)
            (folder / CREATED).touch(exist_ok=True)
            dated = sorted((_created(entry), entry) for entry in self.answers.iterdir())
            now = time.time()
            for (_, entry), (replaced, _) in zip(dated, dated[1:], strict=False):
                if entry.name != build_id and now - replaced > RETIRE_AFTER:
                    shutil.rmtree(entry, ignore_errors=True)


def _created(folder: Path) -> float:
    """When a build's answers folder got its first answer (0 for a stray file or folder)."""
    try:
        return (folder / CREATED).stat().st_mtime
    except OSError:
        return 0.0
