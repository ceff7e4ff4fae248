"""Build from a synthetic store of N IOCs; print seconds and peak memory.

    python bench/build.py            # N = 100,000
    python bench/build.py --million  # N = 1,000,000 (goal: <= 120 s, <= 2 GB peak)
    python bench/build.py --store /tmp/s100k --out /tmp/b100k  # reuse the store, keep the build

The store is generated in a child process first, so the build's peak RSS is measured alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_795_000_000


def child_make_store(root: str, n: int) -> None:
    from generator.synthetic import synthetic_store

    synthetic_store(root, n, now=NOW, days=365)


def child_build(store_root: str, out: str) -> None:
    from generator.build import build
    from generator.store import Store

    result = build(Store(store_root), out)
    me = resource.getrusage(resource.RUSAGE_SELF)
    second = resource.getrusage(resource.RUSAGE_CHILDREN)  # the build's second process
    print(json.dumps({"build_id": result.build_id, "iocs": result.iocs,
                      "objects": result.objects, "mb": result.bytes / 1e6,
                      "seconds": result.seconds, "peak_rss_mb": me.ru_maxrss / 1024,
                      "second_peak_rss_mb": second.ru_maxrss / 1024,
                      "cpu_seconds": me.ru_utime + me.ru_stime,
                      "second_cpu_seconds": second.ru_utime + second.ru_stime,
                      "stages": result.stages}))


def run_child(*args: str) -> str:
    return subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                          text=True, cwd=ROOT).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--store", help="store directory: made once, reused when present")
    parser.add_argument("--out", help="build directory to keep (replaced when present)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        if args.child[0] == "store":
            child_make_store(args.child[1], int(args.child[2]))
        else:
            child_build(args.child[1], args.child[2])
        return
    n = 1_000_000 if args.million else args.n
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or f"{tmp}/store"
        out = args.out or f"{tmp}/build"
        if not (Path(store) / "CURRENT").exists():
            started = time.perf_counter()
            run_child("--child", "store", store, str(n))
            print(f"synthetic store of {n:,} IOCs made in {time.perf_counter() - started:.1f}s")
        shutil.rmtree(out, ignore_errors=True)
        wall = time.perf_counter()
        figures = json.loads(run_child("--child", "build", store, out))
        wall = time.perf_counter() - wall
    print(f"build: {figures['iocs']:,} distinct IOCs, {figures['objects']:,} objects, "
          f"{figures['mb']:.0f} MB")
    print(f"build seconds: {figures['seconds']:.1f} (process wall {wall:.1f})")
    print(f"peak RSS: {figures['peak_rss_mb']:.0f} MB"
          f" (second process: {figures['second_peak_rss_mb']:.0f} MB, counting the pages it"
          f" shares with the first)")
    print(f"CPU seconds: {figures['cpu_seconds']:.1f}"
          f" (second process: {figures['second_cpu_seconds']:.1f})")
    for name, seconds in sorted(figures["stages"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28} {seconds:7.1f}s")
    if n >= 1_000_000:
        ok = figures["seconds"] <= 120 and figures["peak_rss_mb"] <= 2048
        print(f"goal (<= 120 s, <= 2048 MB): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
