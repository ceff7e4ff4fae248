"""Build from a synthetic store of N IOCs; print seconds and peak memory.

    python bench/build.py            # N = 100,000
    python bench/build.py --million  # N = 1,000,000 (goal: <= 120 s, <= 2 GB peak)
    python bench/build.py --store /tmp/s100k --out /tmp/b100k  # reuse the store, keep the build
    python bench/build.py --churn    # build, change 1 % of sightings, rebuild an hour later

Every run prints the bytes per indicator (distinct object bytes over distinct IOCs) and the
object families with the most bytes (logical keys with days and numbers folded). ``--churn``
publishes both builds to a folder and prints ``churn: <percent>% of bytes``: the bytes the
second publish uploaded (objects whose content key was new) over the second build's bytes.

The store is generated in a child process first, so the build's peak RSS is measured alone.
While the build runs, a thread samples the proportional set size (PSS, from
``/proc/<pid>/smaps_rollup``) of the build process and of every process under it; their sum's
peak is the build's memory peak (pages the processes share count once).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_795_000_000


def child_make_store(root: str, n: int) -> None:
    from generator.store.synthetic import synthetic_store

    synthetic_store(root, n, now=NOW, days=365)


FAMILY = re.compile(r"\d{4}-\d{2}-\d{2}|\d+")


def family(key: str) -> str:
    """A logical key with its days, numbers, per-type TAXII collections and views folded:
    ``taxii/c/all/obj/N.dat``, ``taxii/c/<type>/obj/N.dat``, ``iocs/day/D/json.dat``."""
    parts = key.split("/")
    if parts[:2] == ["taxii", "c"] and len(parts) > 2 and parts[2] != "all":
        parts[2] = "<type>"
    elif parts[:2] in (["iocs", "view"], ["iocs", "default"]):
        parts[-1] = "<view>." + parts[-1].rsplit(".", 1)[-1]
    return FAMILY.sub(lambda m: "D" if "-" in m.group() else "N", "/".join(parts))


def sizes(out: str, build_id: str) -> dict[str, object]:
    """Distinct object bytes of a build and its ten largest families (bytes of their keys)."""
    manifest = json.loads((Path(out) / "builds" / f"{build_id}.json").read_text())
    distinct: dict[str, int] = {}
    families: dict[str, int] = {}
    for key, (sha, size) in manifest["objects"].items():
        if sha not in distinct:
            distinct[sha] = size
            families[family(key)] = families.get(family(key), 0) + size
    top = sorted(families.items(), key=lambda kv: -kv[1])[:10]
    return {"bytes": sum(distinct.values()), "distinct": len(distinct), "families": top}


def child_build(store_root: str, out: str) -> None:
    from generator.build.tree import build
    from generator.store.generations import Store

    result = build(Store(store_root), out)
    me = resource.getrusage(resource.RUSAGE_SELF)
    second = resource.getrusage(resource.RUSAGE_CHILDREN)  # the build's second process
    print(
        json.dumps(
            {
                "build_id": result.build_id,
                "iocs": result.iocs,
                "objects": result.objects,
                "mb": result.bytes / 1e6,
                "seconds": result.seconds,
                "peak_rss_mb": me.ru_maxrss / 1024,
                "second_peak_rss_mb": second.ru_maxrss / 1024,
                "cpu_seconds": me.ru_utime + me.ru_stime,
                "second_cpu_seconds": second.ru_utime + second.ru_stime,
                "stages": result.stages,
                **sizes(out, result.build_id),
            }
        )
    )


def child_churn(store_root: str, out: str, bucket: str) -> None:
    """Publish the build of ``store_root``, then of the same store with 1 % of sightings
    changed built an hour later; print the second publish's uploaded and total bytes."""
    from generator.build.tree import build
    from generator.publish.folder import LocalDestination
    from generator.publish.upload import publish
    from generator.store.generations import Store
    from tests.buildseries import changed

    store = Store(store_root)
    first = build(store, out, now=NOW)
    publish(out, LocalDestination(bucket), build_id=first.build_id)
    sightings, count = changed(store.sightings(), 0.01, seed=1)
    later = Store(f"{store_root}-churn")
    later.commit(store.articles(), sightings, {"as_of": NOW + 3600, "sources": {}})
    second = build(later, out, now=NOW + 3600)
    result = publish(out, LocalDestination(bucket), build_id=second.build_id)
    total = sizes(out, second.build_id)["bytes"]
    manifests = [
        json.loads((Path(out) / "builds" / f"{b.build_id}.json").read_text())["objects"]
        for b in (first, second)
    ]
    before = {sha for sha, _ in manifests[0].values()}
    moved: dict[str, int] = {}
    for key, (sha, size) in manifests[1].items():
        if sha not in before:
            before.add(sha)
            moved[family(key)] = moved.get(family(key), 0) + size
    print(
        json.dumps(
            {
                "moved": sorted(moved.items(), key=lambda kv: -kv[1])[:8],
                "changed": count,
                "uploaded": result.uploaded,
                "uploaded_bytes": result.uploaded_bytes,
                "bytes": total,
                "objects": second.objects,
                "iocs": second.iocs,
            }
        )
    )


def run_child(*args: str) -> str:
    return subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT
    ).stdout


def _rollup(pid: int) -> dict[str, int]:
    """The kB fields of ``/proc/<pid>/smaps_rollup`` ({} once the process is gone)."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    fields[name] = int(parts[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return fields


def _tree(pid: int) -> list[int]:
    """``pid`` and every process under it."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    todo.extend(int(child) for child in fh.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


@dataclass
class MemorySampler:
    """Samples the PSS of a process tree until stopped; keeps the peaks (kB)."""

    pid: int
    interval: float = (
        0.5  # a sample reads two large processes' page tables: 0.1 s cost 10-20 % of a core
    )
    peak_pss: int = 0  # of the sum over the tree, sample by sample
    peak_rss_sum: int = 0  # the same with RSS: an upper bound (shared pages counted twice)
    peak_at: float = 0.0  # seconds after the start
    processes: dict[int, dict[str, int]] = field(default_factory=dict)  # pid → Pss/Rss peaks
    samples: int = 0
    log: str | None = None  # a file for every sample: seconds, summed PSS, each PSS (kB)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        log = open(self.log, "w") if self.log else None  # noqa: SIM115 (closed below)
        try:
            self._sample(log)
        finally:
            if log is not None:
                log.close()

    def _sample(self, log: TextIO | None) -> None:
        while not self._stop.is_set():
            pss = rss = 0
            each = []
            for pid in _tree(self.pid):
                fields = _rollup(pid)
                if not fields:
                    continue
                each.append(fields.get("Pss", 0))
                pss += fields.get("Pss", 0)
                rss += fields.get("Rss", 0)
                peaks = self.processes.setdefault(pid, {"Pss": 0, "Rss": 0})
                peaks["Pss"] = max(peaks["Pss"], fields.get("Pss", 0))
                peaks["Rss"] = max(peaks["Rss"], fields.get("Rss", 0))
            self.samples += 1
            if pss > self.peak_pss:
                self.peak_pss, self.peak_at = pss, time.perf_counter() - self._started
            self.peak_rss_sum = max(self.peak_rss_sum, rss)
            if log is not None:
                log.write(
                    f"{time.perf_counter() - self._started:.2f} {pss} {' '.join(map(str, each))}\n"
                )
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_sampled(*args: str, log: str | None = None) -> tuple[str, MemorySampler]:
    """``run_child`` while a :class:`MemorySampler` watches the child's process tree."""
    with subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as child:
        sampler = MemorySampler(child.pid, log=log)
        try:
            stdout, stderr = child.communicate()
        finally:
            sampler.stop()
    if child.returncode:
        raise subprocess.CalledProcessError(child.returncode, child.args, stdout, stderr)
    return stdout, sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--store", help="store directory: made once, reused when present")
    parser.add_argument("--out", help="build directory to keep (replaced when present)")
    parser.add_argument("--memory-log", help="write every memory sample to this file")
    parser.add_argument(
        "--churn",
        action="store_true",
        help="also rebuild an hour later with 1 %% of sightings changed; print the upload's share",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        if args.child[0] == "store":
            child_make_store(args.child[1], int(args.child[2]))
        elif args.child[0] == "churn":
            child_churn(args.child[1], args.child[2], args.child[3])
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
        stdout, memory = run_sampled("--child", "build", store, out, log=args.memory_log)
        figures = json.loads(stdout)
        wall = time.perf_counter() - wall
        churn = None
        if args.churn:
            churn = json.loads(
                run_child("--child", "churn", store, f"{tmp}/churn-build", f"{tmp}/churn-bucket")
            )
    print(
        f"build: {figures['iocs']:,} distinct IOCs, {figures['objects']:,} objects, "
        f"{figures['mb']:.0f} MB"
    )
    print(f"build seconds: {figures['seconds']:.1f} (process wall {wall:.1f})")
    print(
        f"peak RSS: {figures['peak_rss_mb']:.0f} MB"
        f" (second process: {figures['second_peak_rss_mb']:.0f} MB, counting the pages it"
        f" shares with the first)"
    )
    if memory.peak_pss:
        print(
            f"peak PSS, both processes together: {memory.peak_pss / 1024:.0f} MB"
            f" at {memory.peak_at:.1f}s (summed RSS peak {memory.peak_rss_sum / 1024:.0f} MB;"
            f" {memory.samples} samples)"
        )
        for number, (pid, peaks) in enumerate(sorted(memory.processes.items()), 1):
            print(
                f"  process {number} (pid {pid}): peak PSS {peaks['Pss'] / 1024:.0f} MB,"
                f" peak RSS {peaks['Rss'] / 1024:.0f} MB"
            )
    else:
        print("peak PSS: not available (no /proc/<pid>/smaps_rollup here)")
    print(
        f"CPU seconds: {figures['cpu_seconds']:.1f}"
        f" (second process: {figures['second_cpu_seconds']:.1f})"
    )
    for name, seconds in sorted(figures["stages"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<28} {seconds:7.1f}s")
    print(
        f"bytes per indicator: {figures['bytes'] / max(1, figures['iocs']):,.0f}"
        f" ({figures['bytes'] / 1e6:,.1f} MB in {figures['distinct']:,} distinct objects)"
    )
    print("largest object families (MB, share of the build):")
    for name, size in figures["families"]:
        print(f"  {name:<40} {size / 1e6:9.1f}  {100 * size / max(1, figures['bytes']):5.1f}%")
    if churn is not None:
        print(
            f"churn build: {churn['changed']:,} sightings changed, one hour later;"
            f" {churn['uploaded']:,} of {churn['objects']:,} objects uploaded,"
            f" {churn['uploaded_bytes'] / 1e6:,.1f} of {churn['bytes'] / 1e6:,.1f} MB"
        )
        print("uploaded families (MB):")
        for name, size in churn["moved"]:
            print(f"  {name:<40} {size / 1e6:9.1f}")
        print(f"churn: {100 * churn['uploaded_bytes'] / max(1, churn['bytes']):.1f}% of bytes")
    if n >= 1_000_000:
        # without PSS, the sum of both peak RSS figures bounds the memory from above
        peak_mb = (
            memory.peak_pss / 1024
            if memory.peak_pss
            else figures["peak_rss_mb"] + figures["second_peak_rss_mb"]
        )
        ok = figures["seconds"] <= 120 and peak_mb <= 2048
        print(f"goal (<= 120 s, <= 2048 MB both processes together): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
