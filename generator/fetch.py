"""Fetching a source's feed over HTTP(S): bounded in time and size, https/http only."""

from __future__ import annotations

import gzip
import io
import urllib.request
from collections.abc import Callable

from generator.sources import Source

USER_AGENT = "socdef/0.1 (+https://github.com/socdef/socdef; threat-intel feed reader)"
MAX_BYTES = 10 * 1024 * 1024


class FetchError(OSError):
    """The source could not be fetched; the message says why."""


def http_fetcher(timeout: float = 20.0, max_bytes: int = MAX_BYTES) -> Callable[[Source], bytes]:
    def fetch(source: Source) -> bytes:
        if not source.url.startswith(("http://", "https://")):
            raise FetchError(f"refusing non-HTTP URL for {source.id}")
        req = urllib.request.Request(source.url, headers={
            "User-Agent": USER_AGENT, "Accept-Encoding": "gzip",
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
        })
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                body = resp.read(max_bytes + 1)
                encoding = resp.headers.get("Content-Encoding", "")
        except OSError as exc:
            raise FetchError(f"{source.id}: {exc}") from None
        if len(body) > max_bytes:
            raise FetchError(f"{source.id}: body larger than {max_bytes} bytes")
        if encoding == "gzip":
            body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(max_bytes + 1)
            if len(body) > max_bytes:
                raise FetchError(f"{source.id}: decompressed body larger than {max_bytes} bytes")
        return body

    return fetch
