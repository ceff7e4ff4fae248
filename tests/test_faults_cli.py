"""The command line on bad input: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from generator.sources import SAMPLE_DIR
from generator.store import Store
from generator.synthetic import synthetic_store
from tests.conftest import ROOT, socdef


def run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_ingest_reads_a_relative_offline_folder_into_a_relative_data_dir(tmp_path):
    (tmp_path / "feeds").mkdir()
    shutil.copy(SAMPLE_DIR / "krebs.xml", tmp_path / "feeds" / "krebs.xml")
    result = run("ingest", "--offline", "feeds", "--data-dir", "data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "file URI" not in result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("krebs"))
    assert line.split()[1] == "ok", line
    assert Store(tmp_path / "data" / "store").articles().num_rows > 0


def test_the_readme_sample_path_is_relative_to_the_checkout(tmp_path):
    result = socdef("ingest", "--offline", "generator/sample", data_dir=tmp_path / "d",
                    check=False)
    assert result.returncode == 0, result.stderr
    assert " error " not in result.stdout, result.stdout


def test_build_without_a_store_is_an_error_and_creates_nothing(tmp_path):
    typo = tmp_path / "socdef-dta"
    one_line_error(socdef("build", data_dir=typo, check=False), str(typo), "--init")
    assert not typo.exists()


def test_build_init_builds_an_empty_store(tmp_path):
    data = tmp_path / "fresh"
    result = socdef("build", "--init", data_dir=data)
    assert "build " in result.stdout and "0 IOCs" in result.stdout
    assert Store(data / "store").exists()
    assert "build " in socdef("build", data_dir=data).stdout  # the store is there now


def test_publish_to_an_unparseable_destination_is_an_error(tmp_path):
    data = tmp_path / "data"
    socdef("build", "--init", data_dir=data)
    for bad in ("s3:/bad", "s3:bad", "https:/x", "s3://"):
        one_line_error(run("publish", "--to", bad, "--data-dir", str(data), cwd=tmp_path), bad)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], bad
    good = run("publish", "--to", "./s3:ok", "--data-dir", str(data), cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "s3:ok" / "current.json").is_file()


def test_keys_on_a_corrupt_key_database_name_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "keys.sqlite"
    db.write_bytes(b"this is not a database, it is a note\n" * 200)
    for args in (("keys", "list"), ("keys", "create", "--user", "a@b.c"),
                 ("keys", "revoke", "k_123"), ("users", "set-tier", "a@b.c", "pro")):
        one_line_error(socdef(*args, data_dir=data, check=False), str(db))


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            pass
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next(line for line in status.splitlines() if line.startswith("State:"))
    return "Z" not in state.split()[1]


def poll(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


@pytest.mark.skipif(not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
                    reason="the build forks its second process on Linux with two CPUs only")
def test_a_killed_build_takes_its_second_process_with_it(tmp_path):
    data = tmp_path / "data"
    synthetic_store(str(data / "store"), 6000, now=1_790_000_000, days=20)
    proc = subprocess.Popen([sys.executable, "-m", "generator", "build", "--data-dir", str(data)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    try:
        poll(lambda: children_of(proc.pid) or proc.poll() is not None, 60, "the fork")
        children = children_of(proc.pid)
        assert children, "the build ended before it forked"
        proc.kill()
        assert proc.wait(timeout=30) == -signal.SIGKILL  # killed mid-build, not finished
        poll(lambda: not any(running(c) for c in children), 20, "the second process to end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children:  # a second process that outlived the build (the bug) is ended
            if running(pid):
                os.kill(pid, signal.SIGKILL)
