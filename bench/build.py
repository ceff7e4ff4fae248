"""Build from a synthetic store of N IOCs; print seconds and peak memory.

    python bench/build.py            # N = 100,000
    python bench/build.py --million  # N = 1,000,000 (goal: <= 120 s, <= 2 GB peak)
    python bench/build.py --store /tmp/s100k --out /tmp/b100k  # reuse the store, keep the build
    python bench/build.py --churn    # build, change 1 % of sightings, rebuild an hour later
    python bench/build.py --churn --quiet-hour  # rebuild an hour later with no new data
    python bench/build.py --hours 10  # ten hourly rebuilds, 1 % of sightings changed each
    python bench/build.py --million --rebuild  # and the hourly rebuild's seconds and memory

Every run prints the bytes per indicator (distinct object bytes over distinct IOCs) and the
object families with the most bytes (logical keys with days and numbers folded). ``--churn``
publishes both builds to a folder and prints ``churn: <percent>% of bytes``: the bytes the
second publish uploaded (objects whose content key was new) over the second build's bytes,
and the families uploaded. With ``--quiet-hour`` the second build reads the same store (no
sighting changed) with ``--now`` one hour later: what moves is what expiry and ageing changed
(or what moves without a reason).

``--hours N`` publishes N more builds, one an hour, each with 1 % (``--percent P``: P %) of
the previous hour's sightings changed, and prints one line per hour: ``hour <h>: churn:
<percent>% of bytes, <up> of <total> MB; entry files: carried|rewritten whole (<MB>); id
index: kept|made again (<MB>)``. TAXII's entry files are written again with served entries only once the dead
entries pass an eighth of them, and the id index's base once the rows it lacks pass an eighth
of it (docs/taxii.md, "An append-only log"): the line says which hour that happened and the MB
those TAXII objects uploaded that hour. An entry file counts as rewritten when a partition
other than its last changed, or when ``taxii/dead.bin`` went from listing entries to none; the
id index when ``taxii/ids.bin`` changed.

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


def child_build(store_root: str, out: str, now: int | None = None) -> None:
    from generator.build.tree import build
    from generator.store.generations import Store

    result = build(Store(store_root), out, now=now)
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


ENTRY_PART = re.compile(r"^(taxii/c/[^/]+/(?:index|type/[^/]+))/(\d+)\.bin$")


def entry_files(objects: dict[str, list]) -> tuple[dict[str, str], dict[str, int]]:
    """The SHA-256 of each partition of TAXII's entry files, and each file's last partition."""
    parts: dict[str, str] = {}
    last: dict[str, int] = {}
    for key, (sha, _) in objects.items():
        match = ENTRY_PART.match(key)
        if match:
            parts[key] = sha
            last[match[1]] = max(last.get(match[1], 0), int(match[2]))
    return parts, last


def taxii_rewrites(before: dict[str, list], after: dict[str, list]) -> dict[str, bool]:
    """Whether ``after`` wrote TAXII's entry files again whole (a partition that was not its
    file's last changed, or ``dead.bin`` emptied) and made the id index's base again."""
    old, last = entry_files(before)
    new, _ = entry_files(after)
    moved = False
    for key, sha in old.items():
        match = ENTRY_PART.match(key)
        if match and int(match[2]) < last[match[1]] and new.get(key) != sha:
            moved = True
    dead = [m.get("taxii/dead.bin", ["", 0])[1] for m in (before, after)]
    ids = [m.get("taxii/ids.bin", ["", 0])[0] for m in (before, after)]
    return {"entries": moved or (dead[0] > 0 and dead[1] == 0), "ids": ids[0] != ids[1]}


def child_changed_store(store_root: str, into: str) -> None:
    """The store with 1 % of its sightings changed (the churn's first hour), at ``into``."""
    from generator.store.generations import Store
    from tests.buildseries import changed

    sightings, _ = changed(Store(store_root).sightings(), 0.01, seed=1)
    shutil.rmtree(into, ignore_errors=True)
    meta = {"as_of": NOW + 3600, "sources": {}}
    Store(into).commit(Store(store_root).articles(), sightings, meta)


def child_churn(
    store_root: str, out: str, bucket: str, hours: int, quiet: bool, percent: float = 1.0
) -> None:
    """Publish the build of ``store_root``, then ``hours`` builds an hour apart, each with
    ``percent`` % of the previous one's sightings changed (none with ``quiet``); print one
    JSON line per later build: its uploaded and total bytes, the families uploaded and
    whether TAXII's entry files and id index were written again whole."""
    from generator.build.tree import build
    from generator.publish.folder import LocalDestination
    from generator.publish.upload import publish
    from generator.store.generations import Store
    from tests.buildseries import changed

    store = Store(store_root)
    first = build(store, out, now=NOW)
    publish(out, LocalDestination(bucket), build_id=first.build_id)
    manifest = json.loads((Path(out) / "builds" / f"{first.build_id}.json").read_text())
    published = {sha for sha, _ in manifest["objects"].values()}
    sightings = store.sightings()
    for hour in range(1, hours + 1):
        count = 0
        if not quiet:
            sightings, count = changed(sightings, percent / 100, seed=hour)
            shutil.rmtree(store_root + f"-churn-{hour}", ignore_errors=True)
            store = Store(f"{store_root}-churn-{hour}")
            meta = {"as_of": NOW + 3600 * hour, "sources": {}}
            store.commit(Store(store_root).articles(), sightings, meta)
        later = build(store, out, now=NOW + 3600 * hour)
        result = publish(out, LocalDestination(bucket), build_id=later.build_id)
        objects = json.loads((Path(out) / "builds" / f"{later.build_id}.json").read_text())
        moved: dict[str, int] = {}
        taxii = {"entries": 0, "ids": 0}
        for key, (sha, size) in objects["objects"].items():
            if sha not in published:
                published.add(sha)
                moved[family(key)] = moved.get(family(key), 0) + size
                if ENTRY_PART.match(key):
                    taxii["entries"] += size
                elif key in ("taxii/ids.bin", "taxii/ids.new.bin", "taxii/ids.fence"):
                    taxii["ids"] += size
        rewrites = taxii_rewrites(manifest["objects"], objects["objects"])
        manifest = objects
        print(
            json.dumps(
                {
                    "hour": hour,
                    "moved": sorted(moved.items(), key=lambda kv: -kv[1])[:12],
                    "changed": count,
                    "uploaded": result.uploaded,
                    "uploaded_bytes": result.uploaded_bytes,
                    "bytes": sizes(out, later.build_id)["bytes"],
                    "objects": later.objects,
                    "iocs": later.iocs,
                    "rewrites": rewrites,
                    "taxii_bytes": taxii,
                    "seconds": later.seconds,
                    "first_seconds": first.seconds,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            ),
            flush=True,
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


def print_hours(series: list[dict]) -> None:
    """One line per hourly rebuild (``--hours``), then the families uploaded over all hours."""
    total: dict[str, int] = {}
    for h in series:
        taxii, rewrites = h["taxii_bytes"], h["rewrites"]
        entries = "rewritten whole" if rewrites["entries"] else "carried"
        ids = "made again" if rewrites["ids"] else "kept"
        print(
            f"hour {h['hour']}: churn: {100 * h['uploaded_bytes'] / max(1, h['bytes']):.1f}%"
            f" of bytes, {h['uploaded_bytes'] / 1e6:,.1f} of {h['bytes'] / 1e6:,.1f} MB;"
            f" entry files: {entries} ({taxii['entries'] / 1e6:,.1f} MB);"
            f" id index: {ids} ({taxii['ids'] / 1e6:,.1f} MB)"
        )
        for name, size in h["moved"]:
            total[name] = total.get(name, 0) + size
    uploaded = sum(h["uploaded_bytes"] for h in series)
    built = sum(h["bytes"] for h in series)
    print(
        f"hours: {len(series)}, churn: {100 * uploaded / max(1, built):.1f}% of bytes"
        f" ({uploaded / 1e6:,.1f} of {built / 1e6:,.1f} MB built)"
    )
    print("uploaded families over the hours (MB, the 12 largest of each hour):")
    for name, size in sorted(total.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {name:<40} {size / 1e6:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--million", action="store_true")
    parser.add_argument("--store", help="store directory: made once, reused when present")
    parser.add_argument(
        "--out",
        help="build directory to keep (replaced when present); --churn and --hours keep their"
        " builds and buckets beside it (OUT-churn, OUT-churn-bucket, OUT-hours, OUT-hours-bucket)",
    )
    parser.add_argument("--memory-log", help="write every memory sample to this file")
    parser.add_argument(
        "--churn",
        action="store_true",
        help="also rebuild an hour later with 1 %% of sightings changed; print the upload's share",
    )
    parser.add_argument(
        "--quiet-hour",
        action="store_true",
        help="with --churn: change no sighting, only --now (what expiry moves)",
    )
    parser.add_argument(
        "--hours",
        type=int,
        default=0,
        help="publish this many hourly rebuilds with 1 %% of sightings changed each; print each",
    )
    parser.add_argument(
        "--percent",
        type=float,
        default=1.0,
        help="with --hours: the share of sightings changed each hour (default 1)",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="also time and sample the hourly rebuild: 1 %% of sightings changed, one hour later,"
        " into the same folder (day overlays, the search delta and TAXII's log carried on)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        if args.child[0] == "store":
            child_make_store(args.child[1], int(args.child[2]))
        elif args.child[0] == "changed":
            child_changed_store(args.child[1], args.child[2])
        elif args.child[0] == "churn":
            hours, quiet = int(args.child[4]), args.child[5] == "quiet"
            percent = float(args.child[6]) if len(args.child) > 6 else 1.0
            child_churn(args.child[1], args.child[2], args.child[3], hours, quiet, percent)
        else:
            now = int(args.child[3]) if len(args.child) > 3 else None
            child_build(args.child[1], args.child[2], now)
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
        churn = series = rebuilt = None
        if args.rebuild:
            run_child("--child", "changed", store, f"{store}-rebuild")
            stdout, rebuilt_memory = run_sampled(
                "--child", "build", f"{store}-rebuild", out, str(NOW + 3600)
            )
            rebuilt = json.loads(stdout), rebuilt_memory
        kept = out  # the churn builds and buckets beside the build: kept with --out
        for made in ("-churn", "-churn-bucket", "-hours", "-hours-bucket"):
            shutil.rmtree(kept + made, ignore_errors=True)
        if args.churn:
            quiet = "quiet" if args.quiet_hour else "changes"
            churn = json.loads(
                run_child(
                    "--child",
                    "churn",
                    store,
                    f"{kept}-churn",
                    f"{kept}-churn-bucket",
                    "1",
                    quiet,
                )
            )
        if args.hours:
            hourly = run_child(
                "--child",
                "churn",
                store,
                f"{kept}-hours",
                f"{kept}-hours-bucket",
                str(args.hours),
                "changes",
                str(args.percent),
            )
            series = [json.loads(line) for line in hourly.splitlines()]
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
        what = f"{churn['changed']:,} sightings changed" if churn["changed"] else "a quiet hour"
        print(
            f"churn build: {what}, one hour later;"
            f" {churn['uploaded']:,} of {churn['objects']:,} objects uploaded,"
            f" {churn['uploaded_bytes'] / 1e6:,.1f} of {churn['bytes'] / 1e6:,.1f} MB"
        )
        print("uploaded families (MB):")
        for name, size in churn["moved"]:
            print(f"  {name:<40} {size / 1e6:9.1f}")
        print(
            f"churn rebuild seconds: {churn['seconds']:.1f} (its first build in the same"
            f" process {churn['first_seconds']:.1f}); the process's peak RSS"
            f" {churn['peak_rss_mb']:.0f} MB (the first process of both builds)"
        )
        print(f"churn: {100 * churn['uploaded_bytes'] / max(1, churn['bytes']):.1f}% of bytes")
    if series is not None:
        print_hours(series)
    if rebuilt is not None:
        again, sampled = rebuilt
        pss = f"{sampled.peak_pss / 1024:.0f} MB" if sampled.peak_pss else "not available"
        print(
            f"rebuild an hour later, 1 % changed, same folder: {again['seconds']:.1f} s,"
            f" peak PSS both processes {pss},"
            f" CPU {again['cpu_seconds']:.1f} / {again['second_cpu_seconds']:.1f} s"
        )
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
