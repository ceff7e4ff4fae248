"""Small builds that differ by a few changed sightings, and a reader that checks a bucket.

The stores keep three IOC types and two categories, so a build has a few hundred objects
(there is one default answer per tier × view × format) and publishing one to S3 over HTTP
takes seconds, not minutes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from generator.build.tree import build
from generator.store.generations import Store
from generator.store.synthetic import CONTEXT_WORDS, synthetic_tables
from worker.buckets.storage import Bucket, Build, BuildSource, LocalBucket
from worker.contract import layout
from worker.endpoints import query

NOW = 1_795_000_000
TYPES = ("ipv4", "domain", "url")
CATEGORIES = ("vendor", "research")
QUERIES = (  # (view, format, since offset from generated_at, offset, limit)
    ("all.all.all", "json", 20 * 86400, 0, 100),
    ("ipv4.all.all", "json", 20 * 86400, 7, 50),
    ("domain.vendor.all", "csv", 9 * 86400, 0, 1000),
    ("url.all.high", "txt", 20 * 86400, 3, 20),
)


def small_tables(n_iocs: int, *, days: int = 12) -> tuple[pa.Table, pa.Table]:
    articles, sightings = synthetic_tables(n_iocs, now=NOW, days=days)
    articles = articles.filter(pc.is_in(articles["category"], pa.array(CATEGORIES)))
    sightings = sightings.filter(
        pc.and_(
            pc.is_in(sightings["type"], pa.array(TYPES)),
            pc.is_in(sightings["article_id"], articles["article_id"]),
        )
    )
    return articles, sightings


def changed(sightings: pa.Table, fraction: float, seed: int) -> tuple[pa.Table, int]:
    """Change the context (and for every other one the confidence) of ``fraction`` of rows."""
    rng = random.Random(seed)
    rows = sightings.to_pylist()
    picked = rng.sample(range(len(rows)), max(1, round(len(rows) * fraction)))
    for n, i in enumerate(picked):
        rows[i]["context"] = f"{rng.choice(CONTEXT_WORDS)} seen again {seed}/{n} {rows[i]['value']}"
        if n % 2:
            rows[i]["confidence"] = {"high": "low", "low": "medium", "medium": "high"}[
                rows[i]["confidence"]
            ]
    return pa.Table.from_pylist(rows, schema=sightings.schema), len(picked)


def make_store(
    root: Path, n_iocs: int, *, seed: int | None = None, fraction: float = 0.01
) -> Store:
    """The base store (``seed=None``) or a variant with ``fraction`` of sightings changed."""
    articles, sightings = small_tables(n_iocs)
    if seed is not None:
        sightings, _ = changed(sightings, fraction, seed)
    store = Store(root)
    store.commit(articles, sightings, {"as_of": NOW, "sources": {}})
    return store


def build_series(tmp: Path, out: Path, n_iocs: int, seeds: list[int | None]) -> list[str]:
    """Build one variant per seed into the same build folder; the build ids, in order."""
    ids = []
    for i, seed in enumerate(seeds):
        store = make_store(tmp / f"store-{i}", n_iocs, seed=seed)
        ids.append(build(store, out, now=NOW).build_id)
    return ids


def manifest_of(build_dir: Path, build_id: str) -> dict:
    return json.loads((build_dir / layout.manifest_key(build_id)).read_bytes())


def object_keys(manifest: dict) -> set[str]:
    return {layout.object_key(sha) for sha, _ in manifest["objects"].values()}


def answers(build_: Build) -> bytes:
    """The bytes of a few list answers and of one precomputed default, concatenated."""
    parts = [build_.read(layout.default_key("pro", layout.ACTIVE_VIEW, "json")) or b""]
    for view, fmt, back, offset, limit in QUERIES:
        variant = "json" if fmt == "json" else fmt
        q = query.Query(
            view, variant, build_.generated_at - back, build_.generated_at, offset, limit
        )
        parts.append(query.render(build_, q, fmt, "socdef")[0])
    return b"\n--\n".join(parts)


def local_answers(build_dir: Path, ids: list[str]) -> dict[str, bytes]:
    return {b: answers(Build(LocalBucket(build_dir), manifest_of(build_dir, b))) for b in ids}


@dataclass
class Observation:
    build_id: str
    missing: int
    matches: bool


def observe(
    bucket: Bucket, list_objects: Callable[[], dict[str, int]], known: dict[str, bytes]
) -> Observation:
    """Resolve the pointer like the worker does; check the build is whole and answers as built.

    The bucket's ``objects/`` listing is taken after the manifest was resolved.
    """
    current = BuildSource(bucket, pointer_ttl=0).current()
    listing = list_objects()
    wanted = {layout.object_key(r.sha256): r.stored_size for r in current.objects.values()}
    missing = sum(1 for k, size in wanted.items() if listing.get(k) != size)
    body = answers(current) if not missing else b""
    return Observation(current.build_id, missing, body == known.get(current.build_id))
