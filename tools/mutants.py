"""Hand-written mutants, each applied alone to a copy of the tree and run against a fast subset
of the tests: a mutant the subset does not fail on "survived" (docs/testing.md).

    python tools/mutants.py            # every mutant; exit 1 if one survives that is not accepted
    python tools/mutants.py --list
    python tools/mutants.py --only etag-weak --only since-edge

The working tree is never written: the tracked and untracked (not ignored) files are copied to a
temporary directory once, each mutant edits its file there, runs, and puts the file back.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTEST = ("-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0")

ETAG = ("tests/test_etag.py",)
CONDITIONAL = ("tests/test_conditional.py", "tests/test_etag.py")
ORACLE = ("tests/test_oracle.py",)
LIMITS = ("tests/test_limits.py",)
FALLBACK = ("tests/test_limits_fallback.py",)
REFANG = ("tests/test_extract.py",)
SESSION = ("tests/test_session.py",)
CSRF = ("tests/test_keys_api.py", "tests/test_faults_http.py")
FOLD = ("tests/test_pipeline.py::test_records_are_the_fold_of_the_sightings",)


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]
    accepted: str = ""  # why a survivor is accepted (docs/testing.md); empty: it must be killed


MUTANTS = [
    # worker/http.py etag_matches: RFC 9110 weak comparison, "*", lists, whitespace
    Mutant("etag-weak", "worker/http.py", '.removeprefix("W/")', "", ETAG),
    Mutant(
        "etag-star",
        "worker/http.py",
        'if if_none_match.strip() == "*":',
        'if if_none_match.strip() == "**":',
        ETAG,
    ),
    Mutant(
        "etag-star-space",
        "worker/http.py",
        'if if_none_match.strip() == "*":',
        'if if_none_match == "*":',
        ETAG,
    ),
    Mutant(
        "etag-list",
        "worker/http.py",
        'for t in if_none_match.split(",")',
        "for t in [if_none_match]",
        ETAG,
    ),
    Mutant("etag-space", "worker/http.py", "(t.strip().removeprefix", "(t.removeprefix", ETAG),
    Mutant(
        "etag-none", "worker/http.py", "    if not if_none_match:\n        return False\n", "", ETAG
    ),
    # worker/endpoints/query.py: the window's ends inside a boundary day, and which days are boundary days
    Mutant(
        "since-edge",
        "worker/endpoints/query.py",
        "hi = bisect.bisect_right(stamps, -q.since",
        "hi = bisect.bisect_left(stamps, -q.since",
        ORACLE,
    ),
    Mutant(
        "until-edge",
        "worker/endpoints/query.py",
        "lo = bisect.bisect_left(stamps, -q.until",
        "lo = bisect.bisect_right(stamps, -q.until",
        ORACLE,
    ),
    Mutant(
        "since-day",
        "worker/endpoints/query.py",
        "if last < q.since:",
        "if last <= q.since:",
        ORACLE,
    ),
    Mutant(
        "until-day",
        "worker/endpoints/query.py",
        "if first > q.until:",
        "if first >= q.until:",
        ORACLE,
    ),
    Mutant(
        "whole-day",
        "worker/endpoints/query.py",
        "if q.since <= first and last <= q.until:",
        "if q.since < first and last <= q.until:",
        ORACLE,
        accepted="equivalent: a day that starts exactly at since is then trimmed, and the "
        "trim keeps every record of it, so the answer is the same",
    ),
    # worker/endpoints/params.py: a fractional since rounds up, a fractional until down
    Mutant(
        "since-round",
        "worker/endpoints/params.py",
        "return whole + 1 if up and moment.microsecond",
        "return whole + 1 if up",
        ORACLE,
    ),
    # worker/limits/windows.py: the memory and SQLite limiters and the shared decision helpers
    Mutant(
        "memory-full",
        "worker/limits/windows.py",
        "if m_count >= per_minute or d_count >= per_day:",
        "if m_count > per_minute or d_count >= per_day:",
        LIMITS,
    ),
    Mutant(
        "memory-day-full",
        "worker/limits/windows.py",
        "if m_count >= per_minute or d_count >= per_day:",
        "if m_count >= per_minute or d_count > per_day:",
        LIMITS,
    ),
    Mutant(
        "window-start",
        "worker/limits/windows.py",
        "return int(now // MINUTE) * MINUTE,",
        "return round(now / MINUTE) * MINUTE,",
        LIMITS,
    ),
    Mutant(
        "sqlite-minute",
        "worker/limits/windows.py",
        "WHERE key_id = :key AND kind = 0 AND window_start = :minute), 0) < :per_minute",
        "WHERE key_id = :key AND kind = 0 AND window_start = :minute), 0) <= :per_minute",
        LIMITS,
    ),
    Mutant(
        "binding-window",
        "worker/limits/windows.py",
        "day_full = day_count >= per_day",
        "day_full = day_count > per_day",
        LIMITS,
    ),
    Mutant(
        "retry-after-floor",
        "worker/limits/windows.py",
        "return max(1, math.ceil(end - now))",
        "return max(0, math.ceil(end - now))",
        LIMITS,
        accepted="equivalent: a refusal's window end is always after now, so the ceiling is "
        "at least 1 already (and worker/app.py floors Retry-After at 1 again)",
    ),
    Mutant(
        "remaining",
        "worker/limits/windows.py",
        "remaining = per_minute - minute_count if per_minute > minute_count else 0",
        "remaining = per_minute - minute_count + 1 if per_minute > minute_count else 0",
        LIMITS,
    ),
    # worker/limits/fallback.py: the capped share while the shared store is down
    Mutant(
        "fallback-cap",
        "worker/limits/fallback.py",
        "return 0 if limit <= 0 else max(1, int(limit * fraction))",
        "return 0 if limit <= 0 else max(1, int(limit))",
        FALLBACK,
    ),
    Mutant(
        "fallback-probe",
        "worker/limits/fallback.py",
        "if now < self._next_probe:",
        "if now < self._next_probe + 3600:",
        FALLBACK,
    ),
    # generator/extract/refang.py: defanged indicators turned back into real ones
    Mutant(
        "refang-hxxps",
        "generator/extract/refang.py",
        'base = "http" if kind == "s" else "ftp"',
        'base = "http" if kind == "fs" else "ftp"',
        REFANG,
    ),
    Mutant(
        "refang-at",
        "generator/extract/refang.py",
        'return None if begin is None else (begin, "@")',
        'return None if begin is None else (begin, ".")',
        REFANG,
    ),
    Mutant(
        "refang-overlap",
        "generator/extract/refang.py",
        "if start < scanned:",
        "if start < scanned - 1:",
        REFANG,
    ),
    # generator/store/records.py: the merge rules of sightings into records
    Mutant(
        "fold-tie",
        "generator/store/records.py",
        "(published == self.last and article_id < self.primary)",
        "(published == self.last and article_id > self.primary)",
        FOLD,
    ),
    Mutant(
        "fold-raise",
        "generator/store/records.py",
        "rank = min(3, acc.rank + 1) if len(sources) >= 2 else acc.rank",
        "rank = acc.rank",
        FOLD,
    ),
    Mutant(
        "fold-once",
        "generator/store/records.py",
        "ids = list(dict.fromkeys((acc.primary, *(acc.others or ()))))",
        "ids = [acc.primary, *(acc.others or ())]",
        FOLD,
    ),
    Mutant(
        "fold-first",
        "generator/store/records.py",
        "self.first = min(self.first, published)",
        "self.first = max(self.first, published)",
        FOLD,
    ),
    # worker/access/session.py: session tokens of the key pages
    Mutant(
        "session-expiry",
        "worker/access/session.py",
        "if now >= exp:",
        "if now > exp + 60:",
        SESSION,
    ),
    Mutant(
        "session-nbf",
        "worker/access/session.py",
        "if nbf is not None and now < nbf:",
        "if nbf is not None and now < nbf - 3600:",
        SESSION,
    ),
    Mutant(
        "session-alg",
        "worker/access/session.py",
        'if header.get("alg") != "HS256" or "crit" in header:',
        'if "crit" in header:',
        SESSION,
    ),
    Mutant(
        "session-aud-list",
        "worker/access/session.py",
        "return aud == expected or (isinstance(aud, list) and expected in aud)",
        "return aud == expected",
        SESSION,
    ),
    # worker/access/csrf.py: key changes only from the site itself
    Mutant(
        "csrf-same-site",
        "worker/access/csrf.py",
        'if site is not None and site.strip().lower() != "same-origin":',
        'if site is not None and site.strip().lower() not in ("same-origin", "same-site"):',
        CSRF,
    ),
    Mutant(
        "csrf-no-sign",
        "worker/access/csrf.py",
        "if site is None and origin is None:",
        "if False:",
        CSRF,
    ),
    # worker/encoding.py: the coded representation has its own tag
    Mutant(
        "coding-tag", "worker/encoding.py", "return f'{etag[:-1]}-{coding}\"'", "return etag", ETAG
    ),
    # worker/encoding.py conditional: the 304 is for the representation a 200 would send
    Mutant(
        "coding-304-tag",
        "worker/encoding.py",
        'resp = Response(304, b"", content_type)\n        resp.header("etag", tag)',
        'resp = Response(304, b"", content_type)\n        resp.header("etag", etag)',
        CONDITIONAL,
    ),
    Mutant(
        "coding-size",
        "worker/encoding.py",
        "return (coded if len(content) >= MIN_SIZE else etag), content",
        "return coded, content",
        CONDITIONAL,
    ),
    Mutant(
        "coding-listed",
        "worker/encoding.py",
        'if inm.strip() != "*" and etag_matches(inm, coded):',
        "if False:",
        CONDITIONAL,
    ),
    Mutant(
        "coding-star-body",
        "worker/encoding.py",
        'if inm.strip() != "*" and etag_matches(inm, coded):',
        "if etag_matches(inm, coded):",
        CONDITIONAL,
    ),
    Mutant(
        "coding-identity-match",
        "worker/encoding.py",
        "    if not etag_matches(inm, etag):  # no tag can match",
        "    if True:  # no tag can match",
        CONDITIONAL,
    ),
]


def copy_tree(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[bool, float, str]:
    """(passed, seconds, tail of the output); a timeout counts as failed."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *PYTEST, *tests],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return False, time.monotonic() - started, "timeout"
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return done.returncode == 0, time.monotonic() - started, tail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[], help="run only this mutant (repeat)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    unknown = set(args.only) - {m.name for m in MUTANTS}
    if unknown:
        ap.error(f"unknown mutant(s): {', '.join(sorted(unknown))}")
    if args.list:
        for m in chosen:
            print(f"{m.name:20} {m.path:28} {' '.join(m.tests)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="socdef-mutants-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        found = subprocess.run(
            [sys.executable, "-c", "import worker; print(worker.__file__)"],
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not found.startswith(str(tree)):
            print(f"the copy's modules are not the ones imported ({found})", file=sys.stderr)
            return 2
        for subset in sorted({m.tests for m in chosen}):  # the unmutated tree must pass
            ok, secs, tail = run_tests(tree, subset, args.timeout)
            if not ok:
                print(f"baseline fails: {' '.join(subset)}\n{tail}", file=sys.stderr)
                return 2
            print(f"baseline  {' '.join(subset)} passes ({secs:.0f} s)", flush=True)
        killed, survived, bad = 0, [], []
        for m in chosen:
            target = tree / m.path
            original = target.read_text()
            if original.count(m.old) != 1:
                print(
                    f"{m.name}: the text to mutate occurs {original.count(m.old)} times in "
                    f"{m.path}",
                    file=sys.stderr,
                )
                return 2
            target.write_text(original.replace(m.old, m.new))
            try:
                ok, secs, tail = run_tests(tree, m.tests, args.timeout)
            finally:
                target.write_text(original)
            if ok:
                survived.append(m)
                if not m.accepted:
                    bad.append(m)
                note = f"accepted: {m.accepted}" if m.accepted else "NOT ACCEPTED"
                print(f"SURVIVED  {m.name:20} {secs:5.0f} s  {note}", flush=True)
            else:
                killed += 1
                print(f"killed    {m.name:20} {secs:5.0f} s  {tail.splitlines()[-1]}", flush=True)
    print(
        f"\n{killed} killed, {len(survived)} survived "
        f"({len(survived) - len(bad)} accepted) of {len(chosen)} mutants"
    )
    for m in bad:
        print(f"  survivor not accepted: {m.name} ({m.path})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
