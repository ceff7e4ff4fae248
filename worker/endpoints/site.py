"""The docs site: ``/``, ``/docs/…`` and ``/static/…`` from the current build's ``site/`` objects.

No key is needed. A URL names a logical key (``worker.contract.layout.site_key``) that is looked up in
the build's manifest, so only objects the build holds can be read: there is no file path to
traverse. A directory URL without its slash is redirected to it; everything else unknown is a
404 in the spec's error shape. Answers carry a strong ETag (the object's SHA-256) and answer
``If-None-Match`` with 304.
"""

from __future__ import annotations

from worker.contract import layout
from worker.encoding import conditional, from_object, stored
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
    resp = conditional(
        ctx.req,
        ref.text_tag,
        kind,
        lambda: build.text(key) or b"",
        modified=build.generated_at,
        cache=PUBLIC,
        stored=stored(build, ref),
    )
    resp.header("x-content-type-options", "nosniff")
    from_object(resp, ref)
    if kind.startswith("text/html"):
        resp.header("content-security-policy", CSP)
        resp.header("referrer-policy", "same-origin")
    return resp


# --- the signing key -----------------------------------------------------------------------
