"""A synthetic store of any size, for benchmarks and tests (deterministic for a seed)."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pyarrow as pa

from generator.store.generations import ARTICLE_SCHEMA, SIGHTING_SCHEMA, Store
from worker.contract.layout import CATEGORIES, CONFIDENCES, DAY_SECONDS, IOC_TYPES
from worker.contract.stix_common import TLP_LEVELS

TAGS = ("apt28", "c2", "emotet", "lazarus", "phishing", "ransomware", "stealer", "botnet")
TECHNIQUES = ("T1059", "T1059.001", "T1071", "T1105", "T1566.001", "T1486", "T1027")
CONTEXT_WORDS = (
    "beacon",
    "C2",
    "payload",
    "dropper",
    "served",
    "stage-2",
    '"quoted"',
    "a,comma",
    "naïve",
    "über",
    "back\\slash",
    "pipe|bar",
    "x=1",
)


def synthetic_value(type_: str, n: int) -> str:
    h = hashlib.sha512(f"{type_}:{n}".encode()).hexdigest()
    a, b, c = n % 200 + 11, (n // 200) % 250 + 1, (n // 50_000) % 250 + 1
    return {
        "ipv4": f"{a}.{b}.{c}.{n % 254 + 1}",
        "ipv6": f"2a0{n % 9 + 1}:{n % 65535:x}:{(n // 7) % 65535:x}::{n % 4093 + 1:x}",
        "domain": f"h{h[:10]}.example-{n % 97}.com",
        "url": f"https://h{h[:8]}.top/p/{h[8:16]}?id={n}",
        "md5": h[:32],
        "sha1": h[:40],
        "sha256": h[:64],
        "sha512": h[:128],
        "email": f"u{h[:6]}@mail{n % 53}.ru",
        "cve": f"CVE-20{10 + n % 16}-{1000 + n}",
        "mitre_attack": f"T{1000 + n % 600}" + (f".{n % 20:03d}" if n % 3 else ""),
    }[type_]


def synthetic_tables(
    n_iocs: int,
    *,
    now: int,
    days: int = 400,
    seed: int = 7,
    per_article: int = 20,
    types: tuple[str, ...] = IOC_TYPES,
) -> tuple[pa.Table, pa.Table]:
    rng = random.Random(seed)
    n_articles = max(1, n_iocs // per_article)
    articles: dict[str, list[Any]] = {name: [] for name in ARTICLE_SCHEMA.names}
    for i in range(n_articles):
        source = i % 37
        row = {
            "article_id": f"a{i:08x}",
            "source_id": f"src-{source}",
            "feed_name": f'Source {source}, "quoted"',
            "category": CATEGORIES[source % len(CATEGORIES)],
            "title": f'Report {i}: campaign ü "{rng.choice(TAGS)}"',
            "url": f"https://news{source}.example.org/item/{i}",
            "published": now - rng.randrange(days * DAY_SECONDS),
            "tags": sorted(rng.sample(TAGS, 2)),
            "techniques": sorted(rng.sample(TECHNIQUES, 2)),
            "categories": [f"Category {source % 3}"],
            "tlp": TLP_LEVELS[source % len(TLP_LEVELS)],
        }
        for k, v in row.items():
            articles[k].append(v)
    sightings: dict[str, list[Any]] = {name: [] for name in SIGHTING_SCHEMA.names}
    for n in range(n_iocs):
        type_ = types[n % len(types)]
        value = synthetic_value(type_, n)
        for article in {rng.randrange(n_articles) for _ in range(1 + (n % 4 == 0))}:
            context = " ".join(rng.sample(CONTEXT_WORDS, 4)) + f" {value}"
            for k, v in (
                ("article_id", f"a{article:08x}"),
                ("type", type_),
                ("value", value),
                ("context", context),
                ("confidence", rng.choice(CONFIDENCES)),
                ("defanged", n % 5 == 0),
            ):
                sightings[k].append(v)
    return (pa.table(articles, schema=ARTICLE_SCHEMA), pa.table(sightings, schema=SIGHTING_SCHEMA))


def synthetic_store(
    root: str,
    n_iocs: int,
    *,
    now: int,
    days: int = 400,
    seed: int = 7,
    types: tuple[str, ...] = IOC_TYPES,
) -> Store:
    """A store of ``n_iocs`` indicators cycling through ``types``, published over ``days``."""
    store = Store(root)
    articles, sightings = synthetic_tables(n_iocs, now=now, days=days, seed=seed, types=types)
    store.commit(articles, sightings, {"as_of": now, "sources": {}})
    return store
