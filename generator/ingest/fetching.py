"""The fetch-and-parse half of ingest: every source at once (bounded), each failure contained.

Each source is fetched with its stored validators and, unless the server said ``304``, its
bytes are parsed into feed items, in a pool of worker threads (network waits and lxml both
release the GIL). Whatever goes wrong with one source (network, HTTP status, size, time,
malformed or hostile XML) becomes that source's :class:`Outcome`; nothing escapes to abort
the run. Outcomes come back in the order of the sources, so the rest of ingest is
deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from generator.sources.catalog import Source
from generator.sources.feeds import FeedError, FeedItem, parse_feed
from generator.sources.fetch import FetchError, FetchPolicy, FetchResult, HttpFetcher, Validators
from generator.sources.netguard import AddressPolicy
from generator.sources.state import SourceState

__all__ = ["Outcome", "fetch_all", "http_reader"]

Fetch = Callable[[Source, Validators], FetchResult]
Progress = Callable[[str, int, int], None]


@dataclass(slots=True)
class Outcome:
    source: Source
    result: FetchResult | None = None
    items: list[FeedItem] | None = None  # None: not parsed (304, failure, skipped)
    error: str | None = None
    http_status: int = 0
    retry_after: float | None = None
    skipped: bool = False  # no saved feed for an offline run
    deferred: bool = False  # backing off after failures


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def read_source(source: Source, fetch: Fetch, prev: SourceState) -> Outcome:
    """Fetch and parse one source; every failure is captured in the outcome."""
    out = Outcome(source)
    try:
        out.result = fetch(source, Validators(prev.etag, prev.last_modified))
        if not out.result.not_modified:
            out.items = list(parse_feed(out.result.body or b"").items)
    except FileNotFoundError:
        out.skipped = True
    except FetchError as exc:
        out.error, out.http_status, out.retry_after = _one_line(exc), exc.status, exc.retry_after
    except (OSError, FeedError) as exc:
        out.error = _one_line(exc)
    except Exception as exc:  # one source's surprise must not end the run
        out.error = f"unexpected {type(exc).__name__}: {_one_line(exc)}"
    return out


def fetch_all(
    sources: list[Source],
    fetch: Fetch,
    previous: dict[str, SourceState],
    *,
    now: int,
    honour_backoff: bool,
    workers: int = 8,
    progress: Progress | None = None,
) -> list[Outcome]:
    """Outcomes for ``sources``, in their order; ``workers`` fetches run at once."""
    outcomes: dict[int, Outcome] = {}
    jobs = {}
    with ThreadPoolExecutor(
        max_workers=max(1, min(workers, len(sources) or 1)), thread_name_prefix="socdef-fetch"
    ) as pool:
        for index, source in enumerate(sources):
            prev = previous.get(source.id, SourceState())
            if honour_backoff and prev.deferred(now):
                outcomes[index] = Outcome(source, deferred=True)
                continue
            jobs[pool.submit(read_source, source, fetch, prev)] = index
        done = len(outcomes)
        for future in as_completed(jobs):
            outcomes[jobs[future]] = future.result()
            done += 1
            if progress:
                progress("sources", done, len(sources))
    return [outcomes[i] for i in range(len(sources))]


def http_reader(allow_networks: Iterable[str] = (), fetcher: HttpFetcher | None = None) -> Fetch:
    """Fetch each source's URL over HTTP(S); ``allow_networks`` opens non-public CIDRs."""
    if fetcher is None:
        allow = AddressPolicy.allowing(n for n in allow_networks if n.strip())
        fetcher = HttpFetcher(FetchPolicy(allow=allow))
    client = fetcher

    def read(source: Source, validators: Validators | None = None) -> FetchResult:
        return client.fetch(source.url, validators)

    return read
