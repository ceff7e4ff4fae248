"""Warninglist checks per second: socdef's compiled lists vs ``pymispwarninglists``'s search.

    python bench/lifecycle.py [-n 1000000] [--naive 3000] [--hits 0.05] [--rounds 3]

Makes N indicators of every checked type in the shares of a real feed (IPv4 25 %, IPv6 3 %,
domains 25 %, URLs 20 %, e-mail 4 %, hashes 23 %), ``--hits`` of them drawn from the lists
themselves (resolvers, top sites, cloud ranges, benign hashes) and the rest synthetic, then
times, in this one process:

- the compiled lists, the build's way (``generator.extract.warninglist_batch.BatchChecker.check`` over
  the N as two Arrow columns, as the store keeps them), best of ``--rounds`` (CPU time of this
  process), and one by one (``Warninglists.check_many``; both must agree);
- the naive loop the build would otherwise run: ``WarningLists().search(value)`` of
  ``pymispwarninglists`` (its default, exact-set mode, which already misses CIDR and suffix
  hits) over the first ``--naive`` indicators.

Prints both rates, the ratio, the compile time of the lists and how many indicators each
found on a list (the naive search finds fewer: it does no CIDR or suffix matching).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from generator.extract import warninglists  # noqa: E402
from generator.extract.warninglist_batch import BatchChecker  # noqa: E402
from generator.store.synthetic import synthetic_value  # noqa: E402

SHARES = {
    "ipv4": 25,
    "ipv6": 3,
    "domain": 25,
    "url": 20,
    "email": 4,
    "md5": 8,
    "sha1": 5,
    "sha256": 9,
    "sha512": 1,
}
LISTED = {  # list → the indicator type its entries are drawn as
    "public-dns-v4": "ipv4",
    "amazon-aws": "ipv4",
    "tranco10k": "domain",
    "url-shortener": "url",
    "lots-project": "domain",
    "nioc-filehash": "md5",
    "disposable-email": "email",
}


def _listed(rng: random.Random) -> list[tuple[str, str]]:
    """Indicators taken from the lists themselves."""
    out = []
    for name, type_ in LISTED.items():
        data = json.loads((warninglists.misp_lists_dir() / name / "list.json").read_text())
        for entry in rng.sample(data["list"], min(2_000, len(data["list"]))):
            entry = entry.lstrip(".").lower()
            if type_ == "ipv4":
                if ":" in entry:
                    continue
                entry = entry.partition("/")[0]
            elif type_ == "url":
                entry = f"https://{entry}/x{rng.randrange(10**6)}"
            elif type_ == "email":
                entry = f"someone@{entry}"
            elif type_ == "md5" and len(entry) != 32:
                continue
            out.append((type_, entry))
    return out


def indicators(n: int, hits: float, seed: int = 11) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    listed = _listed(rng)
    types = [t for t, share in SHARES.items() for _ in range(share)]
    out = []
    for i in range(n):
        if rng.random() < hits:
            out.append(listed[rng.randrange(len(listed))])
        else:
            type_ = types[i % len(types)]
            out.append((type_, synthetic_value(type_, i)))
    return out


def cpu() -> float:
    return time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=3_000, help="indicators for the naive loop")
    parser.add_argument("--hits", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    values = indicators(args.n, args.hits)
    started = time.perf_counter()
    compiled = warninglists.load()
    batch = BatchChecker(compiled)
    compile_seconds = time.perf_counter() - started
    start = cpu()
    types = pa.array([t for t, _ in values], pa.string())
    column = pa.array([v for _, v in values], pa.string())
    to_columns = len(values) / (cpu() - start)
    best = float("inf")
    found = 0
    for _ in range(args.rounds):
        start = cpu()
        answers = batch.check(types, column)
        best = min(best, cpu() - start)
        found = sum(a is not None for a in answers)
    fast = len(values) / best
    start = cpu()
    one_by_one = compiled.check_many(values)
    single = len(values) / (cpu() - start)
    if one_by_one != answers:
        raise SystemExit("the column check and the one-by-one check disagree")

    from pymispwarninglists import WarningLists

    started = time.perf_counter()
    naive_lists = WarningLists()
    naive_load = time.perf_counter() - started
    sample = values[: args.naive]
    start = cpu()
    naive_found = sum(bool(naive_lists.search(v)) for _, v in sample)
    naive = len(sample) / (cpu() - start)

    print(f"indicators: {len(values)} ({args.hits:.0%} drawn from the lists)")
    print(
        f"compile the lists: {compile_seconds:.2f} s; pymispwarninglists load: {naive_load:.2f} s"
    )
    print(f"compiled lists, columns (BatchChecker.check)  {fast:,.0f} checks/s; on a list: {found}")
    print(f"compiled lists, one by one (check_many)  {single:,.0f} checks/s")
    print(f"Python lists to columns (not in the figures above)  {to_columns:,.0f} values/s")
    print(
        f"naive WarningLists().search  {naive:,.0f} checks/s over {len(sample)}; "
        f"on a list: {naive_found} of {len(sample)} "
        f"(compiled: {sum(a is not None for a in answers[: len(sample)])})"
    )
    print(f"speed-up: {fast / naive:,.0f}×")


if __name__ == "__main__":
    main()
