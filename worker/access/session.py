"""Session tokens: strict HS256 JWTs in the ``sb-access-token`` cookie (Supabase-compatible).

Verification is deliberately narrow: exactly three base64url parts without padding, header
``alg`` pinned to HS256 (``none`` and every other algorithm refused), no ``crit``, signature
compared in constant time, ``exp`` required and checked, ``nbf`` honoured, ``sub`` required and
taken as the user. An API key is never a session, and a session is never an API key: the two
are read from different places (the cookie here, key headers in ``worker.access.auth``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any

from worker.errors import ApiError
from worker.http import Request

B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
COOKIE = "sb-access-token"
MAX_TOKEN = 8192


class SessionRequired(ApiError):
    status = 401
    code = "invalid_session"


def _b64decode(part: str) -> bytes:
    if not B64URL.match(part):
        raise SessionRequired("The session token is malformed.")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise SessionRequired("The session token is malformed.") from None


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (UnicodeDecodeError, ValueError):
        raise SessionRequired("The session token is malformed.") from None
    if not isinstance(value, dict):
        raise SessionRequired("The session token is malformed.")
    return value


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SessionRequired(f"The session token's {name} claim is invalid.")
    return float(value)


def verify(token: str, secret: bytes, *, now: float, audience: str | None = None) -> str:
    """The user (``sub``) of a valid token; :class:`SessionRequired` otherwise."""
    if len(token) > MAX_TOKEN or token.count(".") != 2:
        raise SessionRequired("The session token is malformed.")
    head, body, signature = token.split(".")
    header = _json(head)
    if header.get("alg") != "HS256" or "crit" in header:
        raise SessionRequired("The session token's algorithm is not accepted.")
    expected = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(_b64decode(signature), expected):
        raise SessionRequired("The session token's signature is invalid.")
    claims = _json(body)
    exp = _number(claims, "exp")
    if exp is None:
        raise SessionRequired("The session token has no expiry.")
    if now >= exp:
        raise SessionRequired("The session has expired. Sign in again.")
    nbf = _number(claims, "nbf")
    if nbf is not None and now < nbf:
        raise SessionRequired("The session token is not valid yet.")
    if audience is not None and not _audience_ok(claims.get("aud"), audience):
        raise SessionRequired("The session token is for another audience.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise SessionRequired("The session token names no user.")
    return sub.strip().lower()


def _audience_ok(aud: object, expected: str) -> bool:
    return aud == expected or (isinstance(aud, list) and expected in aud)


def mint(
    user: str, secret: bytes, *, now: float, ttl: int = 3600, audience: str | None = "authenticated"
) -> str:
    """A session token for ``user`` (local use: ``socdef session create``)."""
    header = {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, Any] = {
        "sub": user,
        "iat": int(now),
        "exp": int(now) + ttl,
        "role": "authenticated",
    }
    if audience:
        claims["aud"] = audience
    head = _b64encode(json.dumps(header, separators=(",", ":")).encode())
    body = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64encode(signature)}"


def session_cookie(req: Request, name: str = COOKIE) -> str | None:
    """The first ``name`` pair of the Cookie header, split as RFC 6265 (section 5.4) user
    agents send it: another cookie of the domain that ``http.cookies`` cannot parse must not
    hide the session (``SimpleCookie`` silently drops every pair after such a neighbour)."""
    raw = req.headers.get("cookie")
    if not raw:
        return None
    for pair in raw.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


def cookie_authenticator(
    secret: bytes,
    *,
    cookie: str = COOKIE,
    audience: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Callable[[Request], str]:
    def authenticate(req: Request) -> str:
        token = session_cookie(req, cookie)
        if token is None:
            raise SessionRequired(
                f"Sign in first: this endpoint needs the {cookie} session cookie, not an API key."
            )
        return verify(token, secret, now=clock(), audience=audience)

    return authenticate
