"""Publish to S3 and read builds back through the worker's storage; compress answers.

    python bench/storage.py          # needs moto[server] (a local S3 endpoint on 127.0.0.1)
    python bench/storage.py --iocs 300   # a smaller store

Prints medians of interleaved rounds, each with its ratio to a baseline from the same run:
- publish: a full upload vs. re-publishing the same build vs. a build with 1% of sightings
  changed (moto is far slower than S3 per request: compare ratios, not seconds);
- reads: a fixed set of list answers from the local folder (baseline), from S3 with a cold
  cache, and from S3 with a warm cache;
- encoding: the hourly default answer as identity (baseline), gzip/br from the per-ETag cache,
  and gzip/br compressed on every request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.publish.folder import LocalDestination  # noqa: E402
from generator.publish.s3 import S3Destination  # noqa: E402
from generator.publish.upload import publish  # noqa: E402
from tests.buildseries import answers, build_series  # noqa: E402
from tests.conftest import announced, wait_http  # noqa: E402
from tests.s3fixture import AWS_ENV, MOTO_RUNNING  # noqa: E402
from worker.buckets.remote import open_bucket  # noqa: E402
from worker.buckets.storage import BuildSource, LocalBucket  # noqa: E402
from worker.encoding import CODERS, Encoder  # noqa: E402
from worker.http import Request, Response  # noqa: E402

ROUNDS = 5


def median_of(fn: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(title: str, rows: dict[str, float], unit: str = "ms") -> None:
    base = next(iter(rows.values()))
    print(f"\n{title}")
    for name, value in rows.items():
        shown = value * 1000 if unit == "ms" else value * 1e6
        print(f"  {name:<34} {shown:10.2f} {unit}   {value / base:6.2f}x baseline")


def bench_publish(endpoint: str, out: Path, ids: list[str]) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint)
    full, same, changed = [], [], []
    for n in range(3):
        name = f"bench-{n}"
        s3.create_bucket(Bucket=name)
        dest = S3Destination(name, "", endpoint_url=endpoint)
        started = time.perf_counter()
        first = publish(out, dest, build_id=ids[0])
        full.append(time.perf_counter() - started)
        same.append(median_of(lambda dest=dest: publish(out, dest, build_id=ids[0]), 1))
        started = time.perf_counter()
        delta = publish(out, dest, build_id=ids[1])
        changed.append(time.perf_counter() - started)
    print(
        f"\npublish to S3 (moto): {first.uploaded} objects in a full upload, "
        f"{delta.uploaded} after 1% of sightings changed"
    )
    report(
        "publish",
        {
            "full upload (baseline)": statistics.median(full),
            "same build again": statistics.median(same),
            "1% of sightings changed": statistics.median(changed),
        },
    )


def bench_reads(endpoint: str, out: Path, ids: list[str], name: str) -> None:
    env = {**AWS_ENV, "AWS_ENDPOINT_URL": endpoint}
    local = BuildSource(LocalBucket(out), pointer_ttl=3600).current()

    def cold() -> None:
        answers(BuildSource(open_bucket(f"s3://{name}", environ=env)).current())

    warm_build = BuildSource(open_bucket(f"s3://{name}", environ=env), pointer_ttl=3600).current()
    answers(warm_build)
    report(
        "reads: four list answers + one default",
        {
            "local folder (baseline)": median_of(lambda: answers(local)),
            "S3, cold cache": median_of(cold),
            "S3, warm cache": median_of(lambda: answers(warm_build)),
        },
    )


def bench_encoding(out: Path) -> None:
    from worker.contract import layout

    build = BuildSource(LocalBucket(out), pointer_ttl=3600).current()
    body = build.read(layout.default_key("enterprise", layout.ALL_VIEW, "json")) or b""
    encoder = Encoder()

    def serve(coding: str, cached: bool) -> None:
        resp = Response(200, body, "application/json")
        resp.header("etag", '"bench"' if cached else f'"{time.perf_counter_ns()}"')
        encoder(Request("GET", "/", {}, {"accept-encoding": coding}, "http", "b"), resp)

    rows = {"identity (baseline)": median_of(lambda: serve("identity", True), 200)}
    for coding in CODERS:
        rows[f"{coding}, from the ETag cache"] = median_of(lambda c=coding: serve(c, True), 200)
        rows[f"{coding}, compressed per request"] = median_of(lambda c=coding: serve(c, False), 50)
    sizes = ", ".join(f"{c} {len(CODERS[c](body)) / len(body):.3f}" for c in CODERS)
    print(f"\nencoding the default answer ({len(body)} bytes; compressed size ratio: {sizes})")
    report("encoding, per request", rows, unit="us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iocs", type=int, default=3_000, help="synthetic IOCs in the store")
    args = parser.parse_args()
    os.environ.update(AWS_ENV)
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "moto.log"
        with open(log_path, "w") as log:  # port 0: moto binds a free port and names it
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            endpoint = announced(log_path, proc, MOTO_RUNNING).group(1)
            wait_http(endpoint + "/moto-api/", proc)
            out = Path(tmp) / "build"
            ids = build_series(Path(tmp), out, args.iocs, [None, 1])
            publish(out, LocalDestination(Path(tmp) / "bucket"), build_id=ids[1])
            bench_publish(endpoint, out, ids)
            bench_reads(endpoint, Path(tmp) / "bucket", ids, "bench-0")
            bench_encoding(Path(tmp) / "bucket")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
