"""Cross-site request refusal for cookie-authenticated writes.

A browser attaches the session cookie to cross-site requests, so a write authenticated by the
cookie is refused when ``Sec-Fetch-Site`` says ``cross-site`` or ``same-site`` (a sibling
subdomain is another party), or when ``Origin`` names an origin other than this service's
(the request's own host, the configured public URL, or an allowed origin).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from worker.errors import ApiError
from worker.http import Request


class CrossSiteRequest(ApiError):
    status = 403
    code = "cross_site_request"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def check_same_origin(req: Request, allowed: tuple[str, ...], public_url: str | None) -> None:
    site = req.headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        raise CrossSiteRequest("Cross-site requests cannot change keys.")
    origin = req.headers.get("origin")
    if origin is None:
        return
    own = {f"{req.scheme}://{req.headers.get('host', '')}".lower()}
    own |= {_origin(u) for u in (*allowed, public_url or "") if u}
    if origin.lower() not in own:
        raise CrossSiteRequest("Cross-site requests cannot change keys.",
                               details={"origin": origin})
