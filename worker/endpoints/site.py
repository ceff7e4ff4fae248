"""The docs site: ``/``, ``/docs/…`` and ``/static/…`` from the current build's ``site/`` objects,
and the publisher's signing key beside it (``/signing.pub``, ``/api/v1/signing-key``).

No key is needed. A URL names a logical key (``worker.contract.layout.site_key``) that is looked up in
the build's manifest, so only objects the build holds can be read: there is no file path to
traverse. A directory URL without its slash is redirected to it; everything else unknown is a
404 in the spec's error shape. Answers carry a strong ETag (the object's SHA-256) and answer
``If-None-Match`` with 304.
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

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
# The pages load only their own stylesheet and script and call only this origin's API.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def content_type(key: str) -> str | None:
    dot = key.rfind(".")
    return CONTENT_TYPES.get(key[dot:].lower()) if dot > key.rfind("/") else None


def _redirect(location: str) -> Response:
    resp = Response(301, b"", "text/plain; charset=utf-8")
    resp.header("location", location)
    return resp


def page(ctx: Ctx) -> Response:
    build = ctx.build()
    path = ctx.req.path
    key = layout.site_key(path)
    ref = build.ref(key)
    if ref is None and not path.endswith("/") and build.ref(layout.site_key(path + "/")):
        return _redirect(path + "/")
    kind = content_type(key)
    if ref is None or kind is None:
        raise NotFound(f"No page at {path}")
    etag = f'"{ref.sha256[:32]}"'
    resp = conditional(
        ctx.req,
        etag,
        kind,
        lambda: build.read(key) or b"",
        modified=build.generated_at,
        cache=PUBLIC,
    )
    resp.header("x-content-type-options", "nosniff")
    if kind.startswith("text/html"):
        resp.header("content-security-policy", CSP)
        resp.header("referrer-policy", "same-origin")
    return resp


# --- the signing key -----------------------------------------------------------------------
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
