"""Authentication: find the presented API key and turn it into a key record or a 401."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from worker.errors import InvalidApiKey, MissingApiKey
from worker.http import Request

if TYPE_CHECKING:
    from worker.keys import ApiKey, AuthResult

MESSAGES = {
    "malformed": "The API key is not valid. Check that it was copied whole.",
    "unknown": "The API key is not valid.",
    "revoked": "The API key has been revoked.",
    "expired": "The API key has expired.",
}


class KeyLookup(Protocol):
    def authenticate(self, presented: str) -> AuthResult: ...


def presented_key(req: Request) -> str | None:
    """The key from ``Authorization`` (Bearer, Token or Basic), ``X-API-Key`` or ``?api_key=``.

    Every style names the same key record, so switching style never yields a fresh quota.
    """
    auth = req.headers.get("authorization", "").strip()
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    if scheme.lower() == "basic":
        return req.basic_password()
    return req.headers.get("x-api-key", "").strip() or req.query.get("api_key") or None


def authenticate(req: Request, keys: KeyLookup) -> ApiKey | None:
    presented = presented_key(req)
    if not presented:
        raise MissingApiKey()
    result = keys.authenticate(presented)
    if result.error is not None:
        raise InvalidApiKey(MESSAGES.get(result.error, MESSAGES["unknown"]),
                            details={"reason": result.error})
    return result.key
