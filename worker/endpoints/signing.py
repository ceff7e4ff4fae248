"""The publisher's signing key: ``/signing.pub`` (the minisign public key file) and
``GET /api/v1/signing-key`` (the key and the signature of the current build's manifest); no key
is needed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from worker.contract import layout
from worker.encoding import conditional
from worker.errors import NotFound
from worker.http import PUBLIC, Response
from worker.routing import Ctx

# Publish writes the minisign public key to the bucket's root (layout.SIGNING_KEY_OBJECT) when it
# signs (docs/publish.md); the worker only relays it. A verifier should pin the key it got once,
# out of band, rather than trust whatever a bucket serves later.

TEXT = "text/plain; charset=utf-8"
UNSIGNED = "This deployment publishes unsigned builds: no signing key is published."


def _public_key(ctx: Ctx) -> tuple[str, str, str]:
    """(file text, base64 key line, key id) of the published key; a 404 without a usable one."""
    raw = ctx.app.builds.bucket.get(layout.SIGNING_KEY_OBJECT)
    lines = raw.decode("utf-8", "replace").splitlines() if raw else []
    try:
        decoded = base64.b64decode(lines[1], validate=True)
    except (IndexError, binascii.Error, ValueError):
        raise NotFound(UNSIGNED) from None
    if len(decoded) != 42 or decoded[:2] != b"Ed":
        raise NotFound(UNSIGNED)
    return "\n".join(lines[:2]) + "\n", lines[1].strip(), decoded[2:10][::-1].hex().upper()


def public_key_file(ctx: Ctx) -> Response:
    text, _, _ = _public_key(ctx)
    etag = f'"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'
    return conditional(ctx.req, etag, TEXT, text.encode, modified=None, cache=PUBLIC)


def signing_key(ctx: Ctx) -> Response:
    text, line, key_id = _public_key(ctx)
    build_id = ctx.build().build_id
    signature = layout.signature_key(build_id)  # None when this build was published unsigned
    data = {
        "algorithm": "Ed25519",
        "format": "minisign",
        "key_id": key_id,
        "public_key": line,
        "public_key_file": text,
        "build_id": build_id,
        "manifest": layout.manifest_key(build_id),
        "signature": signature if ctx.app.builds.bucket.get(signature) is not None else None,
    }
    body = json.dumps({"data": data}, separators=(",", ":")).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return conditional(ctx.req, etag, "application/json", lambda: body, modified=None, cache=PUBLIC)
