"""The command line on bad input: one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from generator.publish.folder import LocalDestination
from generator.sources.catalog import SAMPLE_DIR
from generator.store.generations import Store
from generator.store.synthetic import synthetic_store
from tests.conftest import ROOT, poll_until, running_server, socdef
from tests.support import new_key
from worker.limits.usage import UsageLog
from worker.limits.windows import SQLiteLimiter


def run(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "generator", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


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
    result = socdef("ingest", "--offline", "generator/sample", data_dir=tmp_path / "d", check=False)
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
    for args in (
        ("keys", "list"),
        ("keys", "create", "--user", "a@b.c"),
        ("keys", "revoke", "k_123"),
        ("users", "set-tier", "a@b.c", "pro"),
    ):
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


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
    reason="the build forks its second process on Linux with two CPUs only",
)
def test_a_killed_build_takes_its_second_process_with_it(tmp_path):
    data = tmp_path / "data"
    synthetic_store(str(data / "store"), 6000, now=1_790_000_000, days=20)
    proc = subprocess.Popen(
        [sys.executable, "-m", "generator", "build", "--data-dir", str(data)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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


def modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_every_file_the_cli_writes_under_the_data_dir_is_owner_only(tmp_path):
    (tmp_path / "feeds").mkdir()
    shutil.copy(SAMPLE_DIR / "krebs.xml", tmp_path / "feeds" / "krebs.xml")
    data = tmp_path / "data"
    socdef("ingest", "--offline", str(tmp_path / "feeds"), data_dir=data)
    socdef("build", data_dir=data)
    socdef("publish", data_dir=data)
    socdef("keys", "create", "--user", "a@b.c", data_dir=data)
    socdef("users", "set-tier", "a@b.c", "pro", data_dir=data)
    found = modes(data)
    assert {"store", "build", "bucket", "keys.sqlite", "secret.key"} <= set(found)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (data / name).is_dir() else 0o600)
    }
    assert wrong == {}


def test_a_data_dir_serve_creates_is_owner_only(tmp_path):
    data = tmp_path / "fresh"
    old = os.umask(0o022)  # the worker's own files are owner-only whatever the umask
    try:
        with running_server(data, tmp_path / "serve.log", "--limiter", "sqlite") as server:
            assert httpx.get(server.url + "/healthz", timeout=30).status_code == 503  # no build
    finally:
        os.umask(old)
    found = modes(data)
    assert {"keys.sqlite", "secret.key"} <= set(found)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (data / name).is_dir() else 0o600)
    }
    assert wrong == {}


def test_every_file_a_serving_worker_writes_under_the_data_dir_is_owner_only(tmp_path):
    data = tmp_path / "data"
    socdef("build", "--init", data_dir=data)
    socdef("publish", data_dir=data)
    key = new_key(data, None, "a@b.c")
    old = os.umask(0o022)
    try:
        with running_server(data, tmp_path / "serve.log", "--limiter", "sqlite") as server:
            for _ in range(3):
                answer = httpx.get(
                    server.url + "/api/v1/iocs", headers={"X-API-Key": key}, timeout=30
                )
                assert answer.status_code == 200
            poll_until(lambda: (data / "usage.sqlite").exists(), what="the usage database")
    finally:
        os.umask(old)
    found = modes(data)
    assert {"keys.sqlite", "secret.key", "usage.sqlite", "limits.sqlite"} <= set(found)
    wrong = {
        name: oct(mode)
        for name, mode in found.items()
        if mode != (0o700 if (data / name).is_dir() else 0o600)
    }
    assert wrong == {}


def test_serve_on_a_port_another_server_holds_is_one_line(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = str(holder.getsockname()[1])
        for server in ("granian", "uvicorn"):
            done = socdef(
                "serve", "--port", port, "--server", server, data_dir=tmp_path / "d", check=False
            )
            assert done.returncode == 1, (server, done.stdout, done.stderr)
            errors = [line for line in done.stderr.splitlines() if line.strip()]
            assert errors == [errors[0]] and errors[0].startswith("Error: cannot listen on")
            assert "Traceback" not in done.stderr and "backtrace" not in done.stderr


def test_an_existing_data_dir_is_made_owner_only(tmp_path):
    data = tmp_path / "data"
    socdef("build", "--init", data_dir=data)
    socdef("keys", "list", data_dir=data)
    data.chmod(0o755)  # as an older version left it
    for name in ("store", "build"):
        (data / name).chmod(0o755)
    for name in ("keys.sqlite", "secret.key"):
        (data / name).chmod(0o644)
    socdef("keys", "list", data_dir=data)
    found = {name: oct(mode) for name, mode in modes(data).items() if "/" not in name}
    assert found == {
        ".": oct(0o700),
        "store": oct(0o700),
        "build": oct(0o700),
        "keys.sqlite": oct(0o600),
        "secret.key": oct(0o600),
        "lifecycle.json": oct(0o600),  # the build's ledger of state changes
    }


def test_usage_and_limit_databases_are_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        usage = UsageLog(tmp_path / "usage.sqlite")
        usage.record("k1", "/api/v1/iocs", 200, 1.5)
        usage.flush()
        limiter = SQLiteLimiter(tmp_path / "limits.sqlite")
        limiter.hit("k1", 10, 100)
        stale = tmp_path / "old-usage.sqlite"
        stale.touch(mode=0o644)
        stale.chmod(0o644)
        again = UsageLog(stale)
    finally:
        os.umask(old)
    try:
        found = {name: oct(mode) for name, mode in modes(tmp_path).items() if name != "."}
        assert {"usage.sqlite", "limits.sqlite", "old-usage.sqlite"} <= set(found)
        assert {name: mode for name, mode in found.items() if mode != oct(0o600)} == {}
    finally:
        usage.close()
        limiter.close()
        again.close()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_publish_removes_the_temporary_files_a_killed_publish_left(tmp_path):
    data = tmp_path / "data"
    socdef("build", "--init", data_dir=data)
    bucket = data / "bucket" / "objects" / "ab"
    bucket.mkdir(parents=True)
    stale = [
        bucket / f".abcdef.json.{dead_pid()}.140234.tmp",
        data / "bucket" / f".current.json.{dead_pid()}.99.tmp",
    ]
    live = bucket / f".abcdef.json.{os.getpid()}.7.tmp"  # a publish still running
    other = bucket / ".notes.tmp"  # not of publish's naming
    for path in (*stale, live, other):
        path.write_bytes(b"half an object")
    socdef("publish", data_dir=data)
    assert not any(p.exists() for p in stale)
    assert live.exists() and other.exists()


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    dest = LocalDestination(tmp_path)
    (tmp_path / "objects" / "taken").mkdir(parents=True)  # a folder where the object goes
    with pytest.raises(OSError):
        dest.put("objects/taken", b"data", content_type="application/json", cache_control="x")
    assert sorted(p.name for p in (tmp_path / "objects").iterdir()) == ["taken"]
