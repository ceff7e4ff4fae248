"""Every script in bench/ runs in a tiny mode and prints its figures.

The figures themselves are not judged (the machine is shared); each test checks that the script
exits 0 and prints the lines docs/performance.md quotes, with numbers in them. Plus the rules
the baselines must keep: nginx is required (nothing stands in for it), Redis's counter is read
after wrk's warm-up, and formats.py times both sides with the same rounds.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port

NUMBER = r"[\d,]+(?:\.\d+)?"


def bench(
    script: str, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=900,
    )
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def lines(out: str, *patterns: str) -> None:
    for pattern in patterns:
        assert re.search(pattern, out, re.MULTILINE), f"no line matching {pattern!r} in:\n{out}"


def test_limits_prints_each_limiters_decision_cost():
    out = bench("limits.py", "--decisions", "640", "--rounds", "1").stdout
    for name in ("memory", "SQLite", "Redis"):
        lines(
            out,
            rf"^  {name}: hit, one decision per call\s+{NUMBER}\s+{NUMBER}$",
            rf"^  {name}: hit_many, 32 per call\s+{NUMBER}\s+{NUMBER}$",
        )


def test_limits_rejects_an_unknown_limiter():
    proc = bench("limits.py", "--limiters", "memory,etcd", check=False)
    assert proc.returncode == 2 and "unknown limiter(s): etcd" in proc.stderr


def test_search_prints_lookups_against_sqlite_and_the_build_costs():
    out = bench(
        "search.py",
        "-n",
        "2000",
        "--seconds",
        "0.2",
        "--rounds",
        "1",
        "--shard-objects",
        "64",
        "--delta",
    ).stdout
    lines(
        out,
        rf"^build cost: producing the records {NUMBER}s; search index {NUMBER}s",
        rf"^shard writes: 64 shards of 4,422 bytes: one object each {NUMBER} ms per object",
        rf"^SQLite, indexed \(baseline\)\s+{NUMBER} lookups/s .* 1\.00× SQLite$",
        rf"^index lookup alone \(search_answer\)\s+{NUMBER} lookups/s",
        rf"^worker search, include_related=false\s+{NUMBER} lookups/s .* {NUMBER}× SQLite$",
        rf"^worker range/\{{prefix\}}\s+{NUMBER} lookups/s",
        rf"^base \+ delta: {NUMBER} delta lines over a base of {NUMBER} entries",
        rf"^index lookup alone, base \+ delta\s+{NUMBER} lookups/s",
        rf"^worker range/\{{prefix\}}, base \+ delta\s+{NUMBER} lookups/s",
        rf"^linear scan in Python \(context\)\s+{NUMBER} lookups/s",
    )


def test_formats_times_both_sides_with_the_same_rounds():
    out = bench("formats.py", "-n", "150", "--rounds", "2").stdout
    lines(
        out,
        rf"^  ours \(render lines \+ envelope\), median of 2: {NUMBER} s",
        rf"^  stix2 [\d.]+ objects \+ Bundle\.serialize\(\), median of 2: {NUMBER} s",
        rf"^  pymisp [\d.]+ add_attribute \+ to_json\(\), median of 2: {NUMBER} s",
        rf"^  ratio: ours is {NUMBER}x faster",
        r"^  same objects: True",
        r"^  same attributes: True",
    )


def test_storage_prints_publish_reads_and_encoding():
    out = bench("storage.py", "--iocs", "300", "--store-iocs", "2000").stdout
    lines(
        out,
        rf"^  full upload \(baseline\)\s+{NUMBER} ms",
        rf"^  S3, warm cache\s+{NUMBER} ms",
        rf"^  br, compressed per request\s+{NUMBER} us",
        rf"^\s+2,000\s+{NUMBER}\s+{NUMBER} s\s+3\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$",
    )


def test_extract_eval_prints_the_goals():
    out = bench("extract_eval.py", "--rounds", "1", "--seconds", "0.2").stdout
    lines(
        out,
        r"^goal micro F1 >= 0\.99: ",
        rf"^goal >= 10x ioc-finder's MB/s \(dev set\): "
        rf"{NUMBER} / {NUMBER} = {NUMBER}x",
        rf"^  whole-feed recall {NUMBER}, precision {NUMBER}, F1 {NUMBER}$",
        r"^traps emitted \(documents and feeds\): \d+ of \d+$",
    )


def test_build_prints_seconds_memory_stages_bytes_and_churn():
    out = bench("build.py", "-n", "1500", "--churn").stdout
    lines(
        out,
        rf"^build seconds: {NUMBER}",
        rf"^peak PSS, both processes together: {NUMBER} MB",
        rf"^  TaxiiSink\.finish\s+{NUMBER}s$",
        rf"^  2:days\s+{NUMBER}s$",
        rf"^bytes per indicator: {NUMBER} \({NUMBER} MB in {NUMBER} distinct objects\)$",
        rf"^  iocs/day/D/stix\.dat\s+{NUMBER}\s+{NUMBER}%$",
        rf"^churn rebuild seconds: {NUMBER} \(its first build in the same process {NUMBER}\)",
        rf"^churn: {NUMBER}% of bytes$",
    )


def test_build_prints_the_hourly_rebuilds_seconds_and_memory():
    out = bench("build.py", "-n", "400", "--rebuild").stdout
    lines(
        out,
        rf"^build seconds: {NUMBER}",
        rf"^rebuild an hour later, 1 % changed, same folder: {NUMBER} s, peak PSS both processes"
        rf" {NUMBER} MB, CPU {NUMBER} / {NUMBER} s$",
    )


def test_build_prints_a_quiet_hours_churn_and_each_hourly_rebuild():
    args = ("-n", "400", "--churn", "--quiet-hour", "--hours", "2", "--percent", "2")
    out = bench("build.py", *args).stdout
    hour = (
        rf"churn: {NUMBER}% of bytes, {NUMBER} of {NUMBER} MB;"
        rf" entry files: (carried|rewritten whole) \({NUMBER} MB\);"
        rf" id index: (kept|made again) \({NUMBER} MB\)$"
    )
    lines(
        out,
        r"^churn build: a quiet hour, one hour later; [\d,]+ of [\d,]+ objects uploaded",
        rf"^churn: {NUMBER}% of bytes$",
        rf"^hour 1: {hour}",
        rf"^hour 2: {hour}",
        rf"^hours: 2, churn: {NUMBER}% of bytes \({NUMBER} of {NUMBER} MB built\)$",
    )
    assert not re.search(r"^hour 3:", out, re.MULTILINE)


def test_the_hourly_rebuilds_tell_a_whole_rewrite_of_taxii_indexes_from_a_carried_one():
    from bench.build import taxii_rewrites

    part = "taxii/c/all/index/{}.bin"
    before = {
        part.format(0): ["a0", 10],
        part.format(1): ["a1", 5],
        "taxii/dead.bin": ["d", 8],
        "taxii/ids.bin": ["i", 30],
    }
    tail_moved = {**before, part.format(1): ["b1", 6], part.format(2): ["b2", 1]}
    assert taxii_rewrites(before, tail_moved) == {"entries": False, "ids": False}
    full_part_moved = {**before, part.format(0): ["b0", 10], "taxii/ids.bin": ["j", 31]}
    assert taxii_rewrites(before, full_part_moved) == {"entries": True, "ids": True}
    dead_emptied = {**before, "taxii/dead.bin": ["e", 0]}
    assert taxii_rewrites(before, dead_emptied) == {"entries": True, "ids": False}


def test_serve_prints_every_row_against_nginx():
    out = bench(
        "serve.py", "--seconds", "1", "--rounds", "1", "--iocs", "300", "--device-lines", "2000"
    ).stdout
    for row in (
        "worker 1 proc, SQLite limiter",
        "worker 1 proc, memory limiter",
        "worker 2 procs, Redis limiter",
        "uvicorn 1 proc, SQLite limiter",
        "nginx → worker 1 proc, SQLite (X-Accel, TCP)",
        "nginx → worker 2 procs, SQLite (X-Accel, TCP)",
        "nginx → worker 1 proc, SQLite (X-Accel, UDS)",
        "nginx → worker 2 procs, SQLite (X-Accel, UDS)",
    ):
        lines(out, rf"^{re.escape(row)}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$")
    lines(out, r"^default poll \(/api/v1/iocs\)$", r"^download of .* \(/feeds/misp/hashes\.csv\)$")
    # one baseline per table, each from the same run
    assert (
        len(
            re.findall(
                rf"^nginx \(2 workers\)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+1\.00\s", out, re.M
            )
        )
        == 2
    )
    lines(
        out,
        rf"^device file ipv4\.txt: {NUMBER} lines, {NUMBER} bytes; medians$",
        rf"^  worker 1 proc, SQLite limiter: device file\s+{NUMBER} MB/s\s+{NUMBER} req/s\s+{NUMBER}× nginx$",
        rf"^  worker 2 procs, SQLite limiter: device file\s+{NUMBER} MB/s\s+{NUMBER} req/s\s+{NUMBER}× nginx$",
        rf"^  nginx \(2 workers\): device file\s+{NUMBER} MB/s\s+{NUMBER} req/s\s+1\.00× nginx$",
    )


def test_serve_edge_rows_prints_only_nginx_in_front_and_nginx():
    out = bench(
        "serve.py", "--edge-rows", "--seconds", "1", "--rounds", "1", "--iocs", "300"
    ).stdout
    rows = re.findall(
        rf"^(.+?)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+({NUMBER})\s+{NUMBER}$", out, re.M
    )
    assert [name for name, _ in rows] == [
        "nginx → worker 1 proc, SQLite (X-Accel, TCP)",
        "nginx → worker 2 procs, SQLite (X-Accel, TCP)",
        "nginx → worker 1 proc, SQLite (X-Accel, UDS)",
        "nginx → worker 2 procs, SQLite (X-Accel, UDS)",
        "nginx (2 workers)",
    ]
    assert rows[-1][1] == "1.00" and "download of" not in out and "device file" not in out


def test_serve_in_process_prints_the_parts():
    out = bench("serve.py", "--in-process", "640", "--iocs", "300").stdout
    lines(
        out,
        rf"^  RSGI app: hot path\s+{NUMBER}$",
        rf"^  key cache \+ kept-answer lookup\s+{NUMBER}$",
        rf"^  limiter: one decision in a batch of 32\s+{NUMBER}$",
    )


def test_taxii_prints_pages_medallion_growth_and_flatness():
    out = bench(
        "taxii.py",
        "--seconds",
        "1",
        "--rounds",
        "1",
        "--iocs",
        "300",
        "--medallion-sizes",
        "120,160,200",
        "--medallion-requests",
        "1",
        "--sizes",
        "300,900",
    ).stdout
    lines(
        out,
        rf"^  worker: TAXII objects page\s+{NUMBER} req/s .* {NUMBER}× nginx",
        rf"^  nginx \(2 workers\)\s+{NUMBER} req/s .* 1\.00× nginx",
        r"medallion 3\.0\.0 under gunicorn",
        rf"^  medallion,\s+120 objects:\s+{NUMBER} ms",
        rf"^  medallion,\s+200 objects:\s+{NUMBER} ms, CPU\s+{NUMBER} ms \({NUMBER}× ours\); "
        rf"growth exponent from 160: wall -?{NUMBER}, CPU -?{NUMBER}$",
        rf"^page of 100 \(added_after mid-collection\) in a\s+{NUMBER}-object collection:",
    )


@pytest.fixture
def path_without_nginx(tmp_path: Path) -> str:
    """A PATH holding wrk and redis-server but no nginx."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("wrk", "redis-server"):
        found = shutil.which(tool)
        assert found, f"{tool} must be installed (make system-deps)"
        (folder / tool).symlink_to(found)
    return str(folder)


@pytest.mark.parametrize("script", ["serve.py", "taxii.py"])
def test_nginx_is_required_not_replaced(script: str, path_without_nginx: str):
    proc = bench(script, "--seconds", "1", env={"PATH": path_without_nginx}, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nginx required: apt-get install nginx-light" in proc.stderr
    assert "http.server" not in proc.stdout


def test_trivial_mode_requires_nginx_too(path_without_nginx: str):
    proc = bench("serve.py", "--trivial", env={"PATH": path_without_nginx}, check=False)
    assert proc.returncode == 1 and "nginx required" in proc.stderr


def test_wrk_reads_counters_after_its_warm_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The Redis rows' check reads the counter between wrk's warm-up and its measured run, so
    warm-up requests cannot make up for requests the limiter let through undecided."""
    sys.path.insert(0, str(ROOT))
    from bench import serve

    log = tmp_path / "calls.log"
    fake = tmp_path / "wrk"
    fake.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do case "$a" in -d*) echo "wrk $a" >> {log};; esac; done\n'
        "echo '  Latency Distribution'\n"
        "echo '     50%    1.00ms'\n"
        "echo '     99%    2.00ms'\n"
        "echo '  1000 requests in 1.00s, 1.00MB read'\n"
        "echo 'Requests/sec:   1000.00'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    def read_counter() -> None:
        with log.open("a") as f:
            f.write("counter read\n")

    run = serve.wrk("http://127.0.0.1:9/", "key", 5, (), read_counter)
    assert log.read_text().splitlines() == ["wrk -d1s", "counter read", "wrk -d5s"]
    assert run["rps"] == 1000.0 and run["n"] == 1000 and run["p99"] == 2.0


def test_lifecycle_prints_warninglist_checks_against_pymispwarninglists():
    out = bench(
        "lifecycle.py", "-n", "3000", "--naive", "200", "--rounds", "1", "--changes", "2000"
    ).stdout
    lines(
        out,
        rf"^compiled lists, columns \(BatchChecker.check\)\s+{NUMBER} checks/s; on a list: \d+$",
        rf"^compiled lists, one by one \(check_many\)\s+{NUMBER} checks/s$",
        rf"^naive WarningLists\(\).search\s+{NUMBER} checks/s over 200",
        rf"^speed-up: {NUMBER}×$",
        rf"^change feed build cost  {NUMBER} s; day partitions of every variant {NUMBER} s",
        rf"^/changes answer \(\d+ changes\)  {NUMBER} µs CPU; a 1,000-record page",
    )


def test_nginx_starts_again_when_its_port_was_taken(monkeypatch: pytest.MonkeyPatch):
    """nginx cannot bind port 0 and name it: the bench picks a port, and when another program
    holds it (nginx's bind fails and it exits) starts nginx again on another one."""
    sys.path.insert(0, str(ROOT))
    from bench import serve

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    picked = [taken]
    monkeypatch.setattr(serve, "free_port", lambda: picked.pop() if picked else free_port())
    with holder, tempfile.TemporaryDirectory() as tmp:  # not under pytest's 0700 folders:
        Path(tmp).chmod(0o755)  # nginx's workers drop privileges and must read the body
        nginx = serve.Nginx(b'{"ours":true}', Path(tmp))
        try:
            assert nginx.port != taken and not picked
            assert httpx.get(nginx.url).content == b'{"ours":true}'
        finally:
            nginx.stop()


def test_coded_prints_cold_request_cpu_for_each_kind(tmp_path: Path):
    from tests.support import published

    data = published(tmp_path / "data", iocs=3000)
    out = bench("coded.py", str(data / "build"), "--rounds", "1").stdout
    row = rf" \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \|$"
    lines(
        out,
        r"^\| object \| text KB \| stored KB \| compress ms \| stored ms \| inflate ms \|$",
        r"^\| `devices/[^`]+`" + row,
        r"^\| `feeds/misp/hashes\.csv`" + row,
        r"^\| `iocs/default/[^`]+`" + row,
    )
