"""TAXII 2.1 objects pages: our worker vs nginx vs medallion, and our cost against collection size.

    python bench/taxii.py [--seconds 10] [--rounds 3] [--iocs 20000] [--sizes 1000,100000]
    python bench/taxii.py --sizes-only --sizes 1000,1000000   # part 3 alone
    python bench/taxii.py --medallion-only --medallion-sizes 250,500,1000   # part 2 alone

1. Builds and publishes a synthetic store with the real CLI, takes one objects page
   (``limit=100`` with ``added_after`` and ``next``) and runs wrk (``-t2 -c32``, Bearer key) on
   it through the worker (granian over RSGI, as ``socdef serve`` runs it: 1 process with the
   memory limiter, 1 with SQLite (``socdef serve``'s defaults) and 2 sharing SQLite; and 1
   process with the memory limiter over ASGI) and on nginx (2 workers) serving the same page
   bytes as a static file, rounds interleaved, medians and the ratio to nginx; the worker's
   precomputed ``/api/v1/iocs`` default poll is measured too, as its own floor.
2. medallion 3.0.0 (its memory backend, under gunicorn: one sync worker process, as a
   production WSGI deployment runs it, not Flask's development server) loaded with the first
   n of our objects and their manifest records, for each n of ``--medallion-sizes``: the first
   page of 100, sequential requests on one kept-alive connection, median after one warm-up
   request, with the CPU time gunicorn's processes spent per request (steadier than the wall
   clock when other jobs load the machine), and the growth exponent between sizes of both
   (log of the time ratio over log of the size ratio: 1 is linear, 2 the square). Our worker is timed on the same request against the
   largest of those collections.
3. Our page time (the worker's own slicing code, in process, median of 200) on collections of
   each ``--sizes`` object count: it must stay flat.
Needs ``wrk`` and ``nginx`` (Debian packages; the script stops naming what is missing),
medallion (a test dependency) and gunicorn (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.serve import (  # noqa: E402
    Nginx,
    Worker,
    cpu_seconds,
    require,
    socdef,
    wrk,
)
from worker.contract import taxii_common as tc  # noqa: E402

OBJECTS = f"/api/taxii2/api/collections/{tc.collection_id('all')}/objects/"
OBJECTS_PER_IOC = 3.1  # synthetic records: the main object and about two relationships


def make_data(data: Path, iocs: int) -> str:
    from generator.store.synthetic import synthetic_store

    synthetic_store(str(data / "store"), iocs, now=int(time.time()), days=300)
    socdef(data, "build")
    os.environ["SOCDEF_TAXII_GRACE"] = "0"  # serve the objects at once (docs/taxii.md)
    socdef(data, "publish")
    return (
        socdef(data, "keys", "create", "--user", "bench@example.org", "--tier", "enterprise")
        .split("API key: ")[1]
        .split()[0]
    )


def page_url(base: str, key: str) -> str:
    """A page inside the collection, half-way in: reached through ``next`` cursors (the objects
    of one publish share one ``date_added``, so ``added_after`` cannot pick a middle)."""
    auth = {"Authorization": f"Bearer {key}"}
    params: dict[str, str | int] = {"limit": 100}
    total = len(
        httpx.get(
            base + OBJECTS.replace("objects/", "manifest/"), params={"limit": 20000}, headers=auth
        ).json()["objects"]
    )
    for _ in range(max(1, total // 200)):
        body = httpx.get(base + OBJECTS, params=params, headers=auth).json()
        if "next" not in body:
            break
        params = {"limit": 100, "next": body["next"]}
    return str(httpx.URL(base + OBJECTS, params=params))


# The TAXII page rows after the memory-limiter worker's: name, limiter, processes, interface
PAGE_ROWS = (
    ("worker 1 proc, SQLite: TAXII page", "sqlite", 1, "rsgi"),  # socdef serve's defaults
    ("worker 2 procs, SQLite: TAXII page", "sqlite", 2, "rsgi"),  # a deployment's shape
    ("worker ASGI: TAXII objects page", "memory", 1, "asgi"),
)


def serving(tmp: Path, key: str, seconds: int, rounds: int) -> None:
    probe = Worker(tmp / "data", "memory", 1)
    url = page_url(f"http://127.0.0.1:{probe.port}", key)
    body = httpx.get(url, headers={"Authorization": f"Bearer {key}"}).content
    probe.stop()
    assert json.loads(body)["more"] and len(json.loads(body)["objects"]) == 100
    print(f"objects page: {len(body):,} bytes; wrk -t2 -c32 -d{seconds}s, {rounds} rounds")
    results: dict[str, list[dict[str, float]]] = {}
    for round_no in range(rounds):
        worker = Worker(tmp / "data", "memory", 1)
        results.setdefault("worker: TAXII objects page", []).append(
            wrk(
                f"http://127.0.0.1:{worker.port}" + url[url.index("/api/") :],
                key,
                seconds,
                (worker.proc.pid,),
            )
        )
        results.setdefault("worker: /api/v1/iocs default poll", []).append(
            wrk(worker.url, key, seconds, (worker.proc.pid,))
        )  # the worker's own floor
        worker.stop()
        for name, limiter, procs, interface in PAGE_ROWS:
            worker = Worker(tmp / "data", limiter, procs, interface=interface)
            results.setdefault(name, []).append(
                wrk(
                    f"http://127.0.0.1:{worker.port}" + url[url.index("/api/") :],
                    key,
                    seconds,
                    (worker.proc.pid,),
                )
            )
            worker.stop()
        nginx = Nginx(body, tmp / f"nginx-{round_no}")
        results.setdefault(nginx.name, []).append(wrk(nginx.url, key, seconds, (nginx.proc.pid,)))
        nginx.stop()
    baseline = statistics.median(r["rps"] for r in results[nginx.name])
    for name, runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        cpu = statistics.median(r["cpu_us"] for r in runs)
        print(
            f"  {name:<34} {rps:>9,.0f} req/s  p99 {p99:6.2f} ms  {rps / baseline:.2f}× nginx"
            f"  CPU {cpu:4.0f} µs/req"
        )


def timed_get(url: str, auth, headers: dict[str, str], n: int) -> float:
    """Median seconds of ``n`` sequential GETs on one kept-alive connection."""
    times = []
    with httpx.Client(auth=auth, headers=headers, timeout=3600) as client:
        client.get(url)  # connect (and warm up) outside the timing
        for _ in range(n):
            started = time.perf_counter()
            resp = client.get(url)
            times.append(time.perf_counter() - started)
            assert resp.status_code == 200 and len(resp.json()["objects"]) == 100, resp.text[:99]
    return statistics.median(times)


def versus_medallion(tmp: Path, requests: int, sizes: list[int]) -> None:
    from tests.medallion_server import PASSWORD, USER, Medallion

    try:
        import gunicorn  # noqa: F401
    except ImportError:
        raise SystemExit("gunicorn is required: pip install -e '.[bench]'") from None
    data = tmp / "small"
    key = make_data(data, round(max(sizes) / OBJECTS_PER_IOC) + 20)
    worker = Worker(data, "memory", 1)
    base = f"http://127.0.0.1:{worker.port}"
    auth = {"Authorization": f"Bearer {key}"}
    objects, records, after = [], [], None
    while True:
        params = {"limit": 1000, **({"next": after} if after else {})}
        env = httpx.get(base + OBJECTS, params=params, headers=auth).json()
        man = httpx.get(
            base + OBJECTS.replace("objects/", "manifest/"), params=params, headers=auth
        ).json()
        objects += env.get("objects", [])
        records += man.get("objects", [])
        if not env["more"]:
            break
        after = env["next"]
    assert len(objects) >= max(sizes), f"only {len(objects)} objects for {max(sizes)}"
    info = httpx.get(base + OBJECTS[: -len("objects/")], headers=auth).json()
    accept = {"Accept": tc.TAXII_MEDIA_TYPE}
    ours = timed_get(
        base + OBJECTS + "?limit=100",
        None,
        {**auth, **accept, "Accept-Encoding": "identity"},
        max(requests, 50),
    )
    worker.stop()
    print(
        f"first page of 100, sequential, one kept-alive connection, median of {requests} "
        f"after a warm-up; medallion 3.0.0 under gunicorn {__import__('gunicorn').__version__}"
        f" (1 sync worker); ours on the {len(objects):,}-object collection: "
        f"{ours * 1000:.2f} ms"
    )
    previous = None
    for n in sizes:
        subset = objects[:n]
        ids = {o["id"] for o in subset}
        ref = Medallion(
            tmp / f"medallion-{n}",
            info,
            subset,
            [m for m in records if m["id"] in ids],
            gunicorn=True,
        )
        try:
            cpu = cpu_seconds(ref.proc.pid)
            theirs = timed_get(
                f"{ref.url}/api1/collections/{info['id']}/objects/?limit=100",
                (USER, PASSWORD),
                accept,
                requests,
            )
            cpu = (cpu_seconds(ref.proc.pid) - cpu) / (requests + 1)  # + the warm-up request
        finally:
            ref.stop()
        growth = (
            f"; growth exponent from {previous[0]:,}: wall "
            f"{math.log(theirs / previous[1]) / math.log(n / previous[0]):.2f}, CPU "
            f"{math.log(cpu / previous[2]) / math.log(n / previous[0]):.2f}"
            if previous
            else ""
        )
        print(
            f"  medallion, {n:>6,} objects: {theirs * 1000:9,.1f} ms, CPU {cpu * 1000:9,.1f} ms "
            f"({theirs / ours:,.0f}× ours){growth}"
        )
        previous = (n, theirs, cpu)


def page_time(tmp: Path, objects: int, calls: int = 200) -> tuple[int, float]:
    """Median seconds of the worker's slicing of a mid-collection page, in process."""
    from generator.build.tree import build
    from generator.store.synthetic import synthetic_store
    from worker.buckets.storage import Build, LocalBucket
    from worker.taxii import index as taxii_index
    from worker.taxii.endpoints import _envelope
    from worker.taxii.index import page_bytes, select
    from worker.taxii.params import parse_filters

    root = tmp / f"size-{objects}"
    store = synthetic_store(
        str(root / "store"), round(objects / OBJECTS_PER_IOC), now=1_795_000_000, days=365
    )
    build(store, root / "build", now=1_795_000_000)
    build_id = (root / "build" / "LATEST").read_text()
    b = Build(
        LocalBucket(root / "build"),
        json.loads((root / "build" / "builds" / f"{build_id}.json").read_bytes()),
    )
    count = json.loads(b.read(tc.collection_key("all", "meta.json")))["count"]
    seq = taxii_index.sequences(b, "all", None)[0]
    middle = taxii_index.entries(b, seq, count // 2, count // 2 + 1)[0][0]
    query = {"limit": "100", "added_after": tc.timestamp_us(middle)}
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        f = parse_filters(query, 10_000)
        page = select(b, "all", f, 0)
        body = _envelope(page_bytes(b, "all", page.entries, "obj"), page, None)  # all visible
        times.append(time.perf_counter() - started)
        assert len(page.entries) == 100 and body.startswith(b'{"more":true')
    shutil.rmtree(root)
    return count, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iocs", type=int, default=20_000)
    parser.add_argument("--medallion-requests", type=int, default=3)
    parser.add_argument(
        "--medallion-sizes",
        default="250,500,1000",
        help="collection sizes (objects) medallion is timed at",
    )
    parser.add_argument(
        "--sizes", default="1000,100000", help="collection sizes (objects) for the flatness check"
    )
    parser.add_argument(
        "--sizes-only",
        action="store_true",
        help="run only the flatness check (no wrk, nginx or medallion)",
    )
    parser.add_argument(
        "--medallion-only",
        action="store_true",
        help="run only the medallion comparison (no wrk, nginx or sizes)",
    )
    args = parser.parse_args()
    medallion_sizes = [int(n) for n in args.medallion_sizes.split(",")]
    if min(medallion_sizes) <= 100:
        parser.error("--medallion-sizes: each size must exceed the page of 100 objects")
    if not args.sizes_only and not args.medallion_only:
        require("wrk", "nginx")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # nginx workers drop privileges and must read the page
        if args.medallion_only:
            versus_medallion(tmp, args.medallion_requests, medallion_sizes)
            return
        if not args.sizes_only:
            key = make_data(tmp / "data", args.iocs)
            serving(tmp, key, args.seconds, args.rounds)
            versus_medallion(tmp, args.medallion_requests, medallion_sizes)
        sizes = [page_time(tmp, int(s)) for s in args.sizes.split(",")]
        small = sizes[0][1]
        for count, seconds in sizes:
            print(
                f"page of 100 (added_after mid-collection) in a {count:>9,}-object "
                f"collection: {seconds * 1e6:7.0f} µs  ({seconds / small:.2f}× the smallest)"
            )


if __name__ == "__main__":
    main()
