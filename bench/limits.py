"""The rate limiters' decision cost, in process: one decision per call vs a batch per call.

    python bench/limits.py [--decisions 20000] [--batch 32] [--rounds 5] [--limiters memory,sqlite,redis]

For each limiter (``MemoryLimiter``; ``SQLiteLimiter`` on a file in a temporary folder, WAL,
as the worker opens it; ``RedisLimiter`` against a ``redis-server`` the script starts on
127.0.0.1) it times ``--decisions`` decisions for one key with limits too high to refuse:
``hit`` once per decision (for SQLite, one write transaction per request) and ``hit_many``
with ``--batch`` decisions per call (what the worker's coalescer sends per event-loop turn;
for SQLite one transaction per batch, for Redis one round trip). Each figure is the median of
``--rounds`` rounds (interleaved, after one untimed warm-up round) of wall-clock and of this
process's CPU time, in µs per decision; for Redis, redis-server's CPU is added to the CPU
column and the round trip's wait shows in wall-clock only.
Needs ``redis-server`` (a Debian package) for the Redis rows: the script stops naming it when
it is missing; ``--limiters memory,sqlite`` leaves those rows out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.serve import cpu_seconds, require, start_redis  # noqa: E402
from worker.limits.windows import MemoryLimiter, SQLiteLimiter  # noqa: E402

PER_MINUTE, PER_DAY = 10**12, 10**13  # never refuse: every call does the full work


def measure(job: Callable[[], None], decisions: int, server_pid: int = 0) -> tuple[float, float]:
    """(wall µs, CPU µs) per decision of one run of ``job``; CPU includes ``server_pid``'s."""
    server = cpu_seconds(server_pid) if server_pid else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    job()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if server_pid:
        cpu += cpu_seconds(server_pid) - server
    return wall / decisions * 1e6, cpu / decisions * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limiters", default="memory,sqlite,redis")
    args = parser.parse_args()
    names = args.limiters.split(",")
    unknown = set(names) - {"memory", "sqlite", "redis"}
    if unknown:
        parser.error(f"unknown limiter(s): {', '.join(sorted(unknown))}")
    if "redis" in names:
        require("redis-server")
    decisions = args.decisions // args.batch * args.batch
    one = ("bench-key", PER_MINUTE, PER_DAY)
    batch = [one] * args.batch
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        limiters: dict[str, tuple[object, int]] = {}
        redis = None
        try:
            if "memory" in names:
                limiters["memory"] = (MemoryLimiter(), 0)
            if "sqlite" in names:
                limiters["SQLite"] = (SQLiteLimiter(tmp / "limits.sqlite"), 0)
            if "redis" in names:
                from worker.limits.redis_store import RedisLimiter

                redis = start_redis(tmp)
                limiters["Redis"] = (RedisLimiter(redis.url), redis.proc.pid)
            figures: dict[str, list[tuple[float, float]]] = {}
            for round_no in range(args.rounds + 1):
                for name, (limiter, pid) in limiters.items():

                    def single(lim=limiter) -> None:
                        for _ in range(decisions):
                            lim.hit(*one)

                    def batched(lim=limiter) -> None:
                        for _ in range(decisions // args.batch):
                            lim.hit_many(batch)

                    for label, job in (
                        (f"{name}: hit, one decision per call", single),
                        (f"{name}: hit_many, {args.batch} per call", batched),
                    ):
                        result = measure(job, decisions, pid)
                        if round_no:  # round 0 is the warm-up
                            figures.setdefault(label, []).append(result)
            for limiter, _ in limiters.values():
                limiter.close()  # type: ignore[attr-defined]
        finally:
            if redis is not None:
                redis.stop()
    print(
        f"limiter decisions in process, {decisions:,} per run, one key, medians of "
        f"{args.rounds} rounds; µs per decision"
    )
    print(f"  {'limiter and call':<42} {'wall µs':>9} {'CPU µs':>9}")
    for label, runs in figures.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"  {label:<42} {wall:>9.2f} {cpu:>9.2f}")


if __name__ == "__main__":
    main()
