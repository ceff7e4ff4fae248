"""Cross-site request refusal for cookie-authenticated writes.

A browser attaches the session cookie to cross-site requests, so a write authenticated by the
cookie must show that this service's own pages sent it: ``Sec-Fetch-Site: same-origin``, or an
``Origin`` naming this service (the request's own host, the configured public URL, or an
allowed origin). A write that carries neither header is refused as well (an old browser or a
plugin may omit both), as is any other ``Sec-Fetch-Site`` value (``same-site``: a sibling
subdomain is another party). Every browser since 2020 sends ``Origin`` on a POST or DELETE.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from worker.errors import ApiError
from worker.http import Request

MESSAGE = "Cross-site requests cannot change keys."


class CrossSiteRequest(ApiError):
    status = 403
    code = "cross_site_request"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else ""


def check_same_origin(req: Request, allowed: tuple[str, ...], public_url: str | None) -> None:
    site = req.headers.get("sec-fetch-site")
    origin = req.headers.get("origin")
    if site is None and origin is None:
        raise CrossSiteRequest(
            MESSAGE + " A write needs the Origin or Sec-Fetch-Site header that browsers send.",
            details={"required_headers": ["Origin", "Sec-Fetch-Site"]},
        )
    if site is not None and site.strip().lower() != "same-origin":
        raise CrossSiteRequest(MESSAGE, details={"sec_fetch_site": site})
    if origin is None:
        return
    own = {f"{req.scheme}://{req.headers.get('host', '')}".lower()}
    own |= {_origin(u) for u in (*allowed, public_url or "") if u}
    if origin.strip().lower() not in own:
        raise CrossSiteRequest(MESSAGE, details={"origin": origin})
