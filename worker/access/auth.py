"""Authentication: find the presented API key and turn it into a key record or a 401."""

from __future__ import annotations

import binascii
from typing import TYPE_CHECKING, Protocol

from worker.errors import InvalidApiKey, MissingApiKey
from worker.http import Request

if TYPE_CHECKING:
    from worker.access.keys import ApiKey, AuthResult

MESSAGES = {
    "malformed": "The API key is not valid. Check that it was copied whole.",
    "unknown": "The API key is not valid.",
    "revoked": "The API key has been revoked.",
    "expired": "The API key has expired.",
}


class KeyLookup(Protocol):
    def authenticate(self, presented: str) -> AuthResult: ...


def authorization_key(value: bytes) -> bytes | None:
    """The key in one ``Authorization`` value, for the hot path and the full path alike: a
    Bearer or Token token, or Basic's password (the user name when the password is empty).

    None when the value holds no key of these schemes (another scheme, an empty token: the key
    may then come from elsewhere); ``b""`` when Basic credentials are not strict base64 of
    UTF-8 text or name no key (no key at all). Whitespace is ASCII whitespace only.
    """
    scheme, _, rest = value.strip().partition(b" ")
    scheme, rest = scheme.lower(), rest.strip()
    if scheme == b"basic":
        return _basic_key(rest)
    if scheme in (b"bearer", b"token") and rest:
        return rest
    return None


def _basic_key(credentials: bytes) -> bytes:
    try:
        decoded = binascii.a2b_base64(credentials, strict_mode=True)
        decoded.decode()
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return b""
    user, _, password = decoded.partition(b":")
    return password or user


def presented_key(req: Request) -> str | None:
    """The key from ``Authorization`` (:func:`authorization_key`), ``X-API-Key`` or
    ``?api_key=``.

    Every style names the same key record, so switching style never yields a fresh quota.
    """
    auth = req.headers.get("authorization")
    key = None if auth is None else authorization_key(auth.encode("latin-1"))
    if key is not None:
        return key.decode("latin-1")
    return req.headers.get("x-api-key", "").strip() or req.query.get("api_key") or None


def authenticate(req: Request, keys: KeyLookup) -> ApiKey | None:
    presented = presented_key(req)
    if not presented:
        raise MissingApiKey()
    result = keys.authenticate(presented)
    if result.error is not None:
        raise InvalidApiKey(
            MESSAGES.get(result.error, MESSAGES["unknown"]), details={"reason": result.error}
        )
    return result.key
