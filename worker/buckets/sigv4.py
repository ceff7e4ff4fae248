"""AWS Signature Version 4 for the worker's S3 reads, on the standard library.

The worker only sends ``GET`` requests to S3, so a signer for bodiless requests is all it
needs; boto3 would cost the worker ~0.5 s of start-up and tens of MB for that (see
docs/publish.md). Credentials come from the standard environment; when it has none and botocore
is installed, botocore's provider chain (profiles, SSO, container and instance roles) is asked,
lazily, the first time; otherwise requests go unsigned (a public bucket).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


CredentialSource = Callable[[], Credentials | None]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def canonical_query(query: Mapping[str, str]) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in query.items())
    return "&".join(f"{k}={v}" for k, v in pairs)


def sign(
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    creds: Credentials,
    region: str,
    *,
    service: str = "s3",
    now: float | None = None,
) -> dict[str, str]:
    """The headers (``host`` included) that authenticate a bodiless request to ``path``.

    ``path`` is the URL-encoded path exactly as sent; ``host`` is the ``Host`` header's value.
    """
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    if creds.token:
        headers["x-amz-security-token"] = creds.token
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            path,
            canonical_query(query),
            "".join(f"{n}:{headers[n].strip()}\n" for n in names),
            ";".join(names),
            EMPTY_SHA256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = signing_key(creds.secret_key, amz_date[:8], region, service)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def credentials_from(environ: Mapping[str, str]) -> CredentialSource:
    """Environment keys if set; else botocore's chain if installed; else anonymous."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        fixed = Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None)
        return lambda: fixed
    return _BotocoreChain()


class _BotocoreChain:
    """botocore's credential providers, imported on first use (refreshes temporary keys)."""

    def __init__(self) -> None:
        self._found: object | None = None
        self._resolved = False

    def __call__(self) -> Credentials | None:
        if not self._resolved:
            self._resolved = True
            try:
                import botocore.session
            except ImportError:
                return None
            self._found = botocore.session.get_session().get_credentials()
        if self._found is None:
            return None
        # botocore ships no types: _found is its Credentials object
        frozen = self._found.get_frozen_credentials()  # type: ignore[attr-defined]
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)
