"""Remote buckets: an HTTP origin (a CDN in front of the bucket) and S3, over the stdlib.

Both speak plain HTTP/1.1 GETs with ``Range`` on keep-alive connections (one per thread).
Whole reads accept ``gzip`` and decode it (the publisher stores large manifests compressed);
range reads ask for ``identity``, since a range of a compressed stream is not a range of the
object. An object stored compressed (``worker/contract/coded.py``) carries ``Content-Encoding:
gzip`` on S3 whatever the request asks: its ranges are the stored bytes, recognised by the
object's stored size in ``Content-Range``. :func:`open_bucket` turns the ``bucket`` setting into a bucket.
"""

from __future__ import annotations

import gzip
import http.client
import os
import re
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from worker.buckets.cache import CachedBucket
from worker.buckets.sigv4 import CredentialSource, credentials_from, presign, sign
from worker.buckets.storage import Bucket, LocalBucket, StorageError

RETRYABLE = frozenset({500, 502, 503, 504})
DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class Origin:
    """Keep-alive connections to one ``scheme://host[:port]``, one per thread, with retries."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, retries: int = 2) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise StorageError(f"not an http(s) URL: {base_url!r}")
        self.scheme, self.host = parts.scheme, parts.netloc
        self.timeout, self.retries = timeout, retries
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.scheme == "https":
                conn = http.client.HTTPSConnection(
                    self.host, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                conn = http.client.HTTPConnection(self.host, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def get(self, path: str, headers: dict[str, str]) -> Reply:
        problem = "no answer"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(0.05 * 2**attempt)
            conn = self._connection()
            try:
                conn.request("GET", path, headers={"host": self.host, **headers})
                resp = conn.getresponse()
                reply = Reply(
                    resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
                )
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if reply.status not in RETRYABLE:
                return reply
            problem = f"HTTP {reply.status}"
        raise StorageError(f"GET {self.scheme}://{self.host}{path} failed: {problem}")


class HttpBucket:
    """A bucket published behind an HTTP origin or CDN: ``BASE_URL/<key>``."""

    blocking = True

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.origin = Origin(base_url, timeout=timeout)
        self.base_path = urlsplit(base_url).path.rstrip("/")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.origin.scheme}://{self.origin.host}{self.base_path})"

    def _path(self, key: str) -> str:
        return quote(f"{self.base_path}/{key}", safe="/-_.~")

    def _headers(self, path: str) -> dict[str, str]:
        return {}

    def _fetch(self, key: str, extra: dict[str, str]) -> Reply:
        path = self._path(key)
        return self.origin.get(path, {**self._headers(path), **extra})

    def get(self, key: str) -> bytes | None:
        reply = self._fetch(key, {"accept-encoding": "gzip"})
        if reply.status == 404:
            return None
        self._check(reply, key, 200)
        if reply.headers.get("content-encoding", "identity") == "gzip":
            try:
                return gzip.decompress(reply.body)
            except (OSError, EOFError, zlib.error) as exc:  # truncated or not gzip at all
                raise StorageError(
                    f"{self!r}: GET {key}: the gzip body does not decode: {exc}"
                ) from exc
        return reply.body

    def get_range(self, key: str, start: int, end: int, size: int | None = None) -> bytes:
        if end <= start:
            return b""
        reply = self._fetch(
            key, {"range": f"bytes={start}-{end - 1}", "accept-encoding": "identity"}
        )
        if reply.status == 200:  # the origin ignored the range: cut it here
            body = reply.body[start:end]
        else:
            self._check(reply, key, 206, size)
            body = reply.body
        if len(body) != end - start:
            raise StorageError(f"{key}: asked for {end - start} bytes at {start}, got {len(body)}")
        return body

    def _check(self, reply: Reply, key: str, expected: int, size: int | None = None) -> None:
        if reply.status != expected:
            detail = reply.body[:200].decode("utf-8", "replace").strip()
            raise StorageError(f"{self!r}: GET {key} answered {reply.status} {detail}")
        if expected == 206 and reply.headers.get("content-encoding", "identity") != "identity":
            # a stored compressed object's own bytes: the total is its stored size
            total = reply.headers.get("content-range", "").rpartition("/")[2]
            if size is None or total != str(size):
                raise StorageError(f"{key}: a range came back encoded; serve objects uncompressed")


class S3Bucket(HttpBucket):
    """``s3://BUCKET/PREFIX`` read with SigV4-signed GETs (path style on custom endpoints)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str = "us-east-1",
        endpoint: str | None = None,
        credentials: CredentialSource | None = None,
        timeout: float = 10.0,
    ) -> None:
        if endpoint:
            base = f"{endpoint.rstrip('/')}/{bucket}"
        elif DNS_BUCKET.match(bucket):
            base = f"https://{bucket}.s3.{region}.amazonaws.com"
        else:
            base = f"https://s3.{region}.amazonaws.com/{bucket}"
        prefix = prefix.strip("/")
        super().__init__(f"{base}/{prefix}" if prefix else base, timeout=timeout)
        self.region = region
        self.credentials = credentials or (lambda: None)

    def _headers(self, path: str) -> dict[str, str]:
        creds = self.credentials()
        if creds is None:
            return {}
        return sign("GET", self.origin.host, path, {}, creds, self.region)

    def presign(self, key: str, seconds: int) -> str:
        """A URL that reads object ``key`` without credentials for ``seconds``."""
        creds = self.credentials()
        path = self._path(key)
        if creds is None:  # a public bucket: the plain URL
            return f"{self.origin.scheme}://{self.origin.host}{path}"
        return presign(
            self.origin.host, path, creds, self.region, seconds, scheme=self.origin.scheme
        )


def open_bucket(
    spec: str,
    *,
    environ: Mapping[str, str] | None = None,
    endpoint: str = "",
    cache_bytes: int = 256 << 20,
) -> Bucket:
    """A folder path, ``s3://BUCKET/PREFIX`` or ``http(s)://ORIGIN/PATH`` as a bucket."""
    env = os.environ if environ is None else environ
    if spec.startswith("s3://"):
        parts = urlsplit(spec)
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint = endpoint or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL", "")
        inner: Bucket = S3Bucket(
            parts.netloc,
            parts.path,
            region=region,
            endpoint=endpoint or None,
            credentials=credentials_from(env),
        )
    elif spec.startswith(("http://", "https://")):
        inner = HttpBucket(spec)
    elif "://" in spec:
        raise StorageError(f"unknown bucket {spec!r}: use a folder, s3://… or https://…")
    else:
        return LocalBucket(spec)
    return CachedBucket(inner, budget=cache_bytes)
