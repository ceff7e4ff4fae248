"""The S3 destination of ``socdef publish`` (boto3): AWS S3 or any S3-compatible store.

Credentials, region and endpoint come from the standard AWS environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, instance roles …), resolved by boto3 itself;
``endpoint_url`` overrides the endpoint. With a custom endpoint, requests use path-style
addressing (``http://host:port/BUCKET/KEY``), which every S3-compatible store understands.
The client is thread-safe and shared by the upload threads.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from generator.publish.folder import PointerMoved, PublishError

DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
MISSING = {"404", "NoSuchKey", "NotFound"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` → (bucket, prefix ending in ``/`` or empty)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise PublishError(f"not an S3 URL: {url!r} (expected s3://BUCKET/PREFIX)")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Destination:
    """A bucket (and key prefix) on S3; ``get`` decodes objects stored gzip-compressed."""

    encodes = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        pool: int = 16,
    ) -> None:
        self.bucket, self.prefix = bucket, prefix
        if client is None:
            style = {"addressing_style": "path"} if endpoint_url else {}
            config = Config(
                max_pool_connections=pool, s3=style, retries={"max_attempts": 5, "mode": "standard"}
            )
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url or None, config=config
            )
        self.client = client

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3Destination:
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, endpoint_url=endpoint_url)

    def __repr__(self) -> str:
        return f"S3Destination(s3://{self.bucket}/{self.prefix})"

    def sizes(self, prefix: str) -> dict[str, int]:
        """One paginated listing: key (without the destination's prefix) → size."""
        found: dict[str, int] = {}
        pages = self._call("list_objects_v2", paginate=True, Prefix=self.prefix + prefix)
        for page in pages:
            for item in page.get("Contents", ()):
                found[item["Key"][len(self.prefix) :]] = item["Size"]
        return found

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        content_encoding: str | None = None,
        **conditions: str,
    ) -> None:
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        params: dict[str, Any] = {
            "Key": self.prefix + key,
            "Body": data,
            "ContentType": content_type,
            "CacheControl": cache_control,
            **extra,
            **conditions,
        }
        self._call("put_object", **params)

    def get(self, key: str) -> bytes | None:
        return self.get_versioned(key)[0]

    def get_stored(self, key: str) -> bytes | None:
        """The object's bytes as uploaded: one stored with ``Content-Encoding: gzip`` is not
        decoded (its content-addressed key hashes the compressed bytes)."""
        try:
            found = self._call("get_object", Key=self.prefix + key)
        except _Missing:
            return None
        data: bytes = found["Body"].read()
        return data

    def get_versioned(self, key: str) -> tuple[bytes | None, str | None]:
        try:
            found = self._call("get_object", Key=self.prefix + key)
        except _Missing:
            return None, None
        data = found["Body"].read()
        if found.get("ContentEncoding") == "gzip":
            data = gzip.decompress(data)
        return data, found["ETag"]

    def swap(
        self, key: str, data: bytes, expected: str | None, *, content_type: str, cache_control: str
    ) -> None:
        """Conditional PUT: ``If-Match`` the version read before, or ``If-None-Match: *``."""
        condition = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
        try:
            self.put(key, data, content_type=content_type, cache_control=cache_control, **condition)
        except _Precondition:
            raise PointerMoved(key) from None
        except _NotImplemented:  # a store without conditional writes: plain PUT
            self.put(key, data, content_type=content_type, cache_control=cache_control)

    def delete_many(self, keys: Iterable[str]) -> int:
        batch = [self.prefix + k for k in keys]
        for start in range(0, len(batch), DELETE_BATCH):
            chunk = batch[start : start + DELETE_BATCH]
            result = self._call(
                "delete_objects", Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
            errors = result.get("Errors") or []
            if errors:
                raise PublishError(
                    f"could not delete {errors[0].get('Key')}: {errors[0].get('Message')}"
                )
        return len(batch)

    def _call(self, operation: str, *, paginate: bool = False, **params: Any) -> Any:
        """Run one S3 operation; every failure leaves as a :class:`PublishError` (one line)."""
        try:
            if paginate:
                pages = self.client.get_paginator(operation).paginate(Bucket=self.bucket, **params)
                return list(pages)
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except ClientError as exc:
            code = _code(exc)
            if code in MISSING:
                raise _Missing() from None
            if code in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise _Precondition() from None
            if code in ("NotImplemented", "501"):
                raise _NotImplemented() from None
            raise PublishError(
                f"S3 {operation} on s3://{self.bucket}/{params.get('Key', '')}"
                f" failed: {code}: {exc.response['Error'].get('Message')}"
            ) from None
        except BotoCoreError as exc:
            raise PublishError(f"S3 {operation} on s3://{self.bucket} failed: {exc}") from None


class _Missing(Exception):
    pass


class _Precondition(Exception):
    pass


class _NotImplemented(Exception):
    pass
