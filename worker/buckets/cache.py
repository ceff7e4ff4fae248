"""An in-memory byte cache for remote buckets: objects are immutable, so nothing goes stale.

Objects are content-addressed (``objects/<sha[:2]>/<sha>``), so cached bytes are keyed by the
object key, which names the bytes themselves: a cache keyed by build id would hold the same
bytes once per build, while this one keeps an object warm across a publish that did not change
it. Only the pointer (and manifests, read once per build) bypass the cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from worker.buckets.storage import Bucket

STRIPES = 64


class ByteCache:
    """Least-recently-used bytes under a byte budget; thread-safe."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self.hits = self.misses = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.budget // 4:  # one huge value must not flush everything else
            return
        with self._lock:
            old = self._items.pop(key, None)
            self.size += len(value) - (len(old) if old is not None else 0)
            self._items[key] = value
            while self.size > self.budget and self._items:
                _, evicted = self._items.popitem(last=False)
                self.size -= len(evicted)


class CachedBucket:
    """A remote bucket behind a :class:`ByteCache`.

    An object no larger than ``whole_limit`` is fetched whole on first use and every later
    range is a slice of it (a query reads many ranges of one day partition); a larger object is
    read by range and each range is cached as it was asked for.
    """

    blocking = True  # reads may wait on the network: the app runs requests off the event loop

    def __init__(
        self, inner: Bucket, *, budget: int = 256 << 20, whole_limit: int = 4 << 20
    ) -> None:
        self.inner = inner
        self.cache = ByteCache(budget)
        self.whole_limit = whole_limit
        self._stripes = [threading.Lock() for _ in range(STRIPES)]

    def __repr__(self) -> str:
        return f"CachedBucket({self.inner!r})"

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def get_range(self, key: str, start: int, end: int, size: int | None = None) -> bytes:
        if end <= start:
            return b""
        if size is not None and size <= min(self.whole_limit, self.cache.budget // 4):
            return self._whole(key, size)[start:end]
        span = (key, start, end)
        found = self.cache.get(span)
        if found is None:
            found = self.inner.get_range(key, start, end, size)
            self.cache.put(span, found)
        return found

    def _whole(self, key: str, size: int) -> bytes:
        found = self.cache.get(key)
        if found is not None:
            return found
        with self._stripes[hash(key) % STRIPES]:  # one fetch per object, however many ask
            found = self.cache.get(key)
            if found is None:
                found = self.inner.get_range(key, 0, size, size)
                self.cache.put(key, found)
        return found
