"""Fault injection: kill -9 of build, publish and the worker, two builds at once, a full disk,
corrupt files and hostile origins. After each fault: nothing in the store or in the published
build was lost (digests before and after), the worker answers, limits held.

The suite counts what it injects (see tests/faultkit.py and docs/reliability.md).
"""

from __future__ import annotations

import errno
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from generator.publish.s3 import S3Destination
from generator.store.generations import Store
from tests.buildseries import (
    build_series,
    local_answers,
    make_store,
    manifest_of,
    object_keys,
    observe,
)
from tests.conftest import ROOT, socdef, start_server, stop_process, wait_for_room_in_minute
from tests.faultkit import (
    LOG,
    SmallDisk,
    admitted,
    assert_build_whole,
    assert_clean_error,
    assert_kept,
    assert_same_store,
    assert_worker_answers,
    fault_log,  # noqa: F401 - the session's fault count
    kill9,
    latest_build,
    new_key,
    pointed_build,
    run,
    spawn,
    store_digest,
    tree_digest,
    wait_for,
)
from tests.hostile_server import HostileServer
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from tests.support import new_key as new_account_key
from tests.support import published
from tests.test_ingest_hostile import feed
from worker.buckets.remote import open_bucket
from worker.contract import layout

N_IOCS = 1500  # about 180 records and 860 objects: a build takes about a second
POINTER = layout.POINTER_KEY
SAMPLE = ROOT / "generator" / "sample"


@pytest.fixture(autouse=True)
def _counted(fault_log):  # noqa: F811 - every test adds to the session's count
    yield


def fresh_data(root: Path, n: int = N_IOCS) -> Path:
    """A data dir with a store, one build and that build published to its folder bucket."""
    return published(root, store=lambda store: make_store(store, n))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return fresh_data(tmp_path_factory.mktemp("template"))


@pytest.fixture
def data(template, tmp_path) -> Path:
    """A private copy of the template data dir (store, build, bucket; no keys yet)."""
    dest = tmp_path / "data"
    subprocess.run(["cp", "-a", str(template), str(dest)], check=True)
    return dest


class Snapshot:
    """Digests of a data dir's store, build folder and bucket, to compare after a fault."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.store = store_digest(data / "store")
        self.build = tree_digest(data / "build")
        self.bucket = tree_digest(data / "bucket")
        self.latest = latest_build(data / "build")
        self.published = pointed_build(data / "bucket")

    def assert_kept(self, *, bucket_pointer_may_change: bool = False) -> None:
        assert_same_store(self.store, self.data / "store")
        assert_kept(
            self.build,
            tree_digest(self.data / "build"),
            # the latest build's name and its lifecycle ledger (publish keeps the ledger only
            # when it names the build published)
            may_change=("LATEST", "lifecycle-ledger.json"),
            what="build folder",
        )
        if bucket_pointer_may_change:
            # a publish that switched the pointer may have pruned builds older than the pointer
            # keeps; the build published before is always kept, whole
            assert_build_whole(self.data / "bucket", self.published)
        else:
            assert_kept(self.bucket, tree_digest(self.data / "bucket"), what="bucket")
        assert_build_whole(self.data / "build", latest_build(self.data / "build"))
        pointed_build(self.data / "bucket")


def timed(*args: str, data_dir: Path) -> float:
    started = time.monotonic()
    socdef(*args, data_dir=data_dir)
    return time.monotonic() - started


# ---------------------------------------------------------------- kill -9 of build / publish


def test_kill9_build_at_random_points_keeps_store_and_builds(data, tmp_path):
    now = int(time.time())
    socdef("build", "--now", str(now - 2), data_dir=data)
    duration = timed("build", "--now", str(now - 1), data_dir=data)  # a build like those killed
    before = Snapshot(data)
    mid_run = 0
    for seed in range(1, 11):  # until 4 kills landed while a build ran (at most 10 tries)
        if mid_run == 4:
            break
        rng = random.Random(seed)
        args = ("build", "--now", str(now + seed))
        proc = spawn(*args, data_dir=data, log=tmp_path / f"build-{seed}.log")
        time.sleep(rng.uniform(0.1, 0.7) * duration)
        if kill9(proc):
            mid_run += 1
            LOG.fault("kill -9 socdef build")
        before.assert_kept()  # the previous build, the published one and the store intact
        duration = timed(*args, data_dir=data)  # a rerun completes
        assert_build_whole(data / "build", latest_build(data / "build"))
        before = Snapshot(data)
    assert mid_run == 4, "kills should land while the build runs"
    socdef("publish", data_dir=data)
    assert pointed_build(data / "bucket") == latest_build(data / "build")
    serves(data, tmp_path / "server.log", latest_build(data / "build"))


def test_kill9_publish_to_a_folder_at_random_points(data, tmp_path):
    now = int(time.time())
    mid_run = 0
    duration = 0.0
    for seed in range(1, 7):  # until 3 kills landed while a publish ran (at most 6 tries)
        if mid_run == 3:
            break
        socdef("build", "--now", str(now + seed), data_dir=data)
        new = latest_build(data / "build")
        before = Snapshot(data)
        if not duration:  # how long such a publish takes, on a scratch copy of the bucket
            scratch = tmp_path / "scratch"
            subprocess.run(["cp", "-a", str(data / "bucket"), str(scratch)], check=True)
            duration = timed("publish", "--to", str(scratch), data_dir=data)
        rng = random.Random(seed)
        proc = spawn("publish", data_dir=data, log=tmp_path / f"publish-{seed}.log")
        time.sleep(rng.uniform(0.2, 0.9) * duration)
        if kill9(proc):
            mid_run += 1
            LOG.fault("kill -9 socdef publish (folder)")
        # the pointer names a whole build: the old one or, if the kill came after the switch,
        # the new one; nothing the old build needs was removed
        before.assert_kept(bucket_pointer_may_change=True)
        assert pointed_build(data / "bucket") in (before.published, new)
        socdef("publish", data_dir=data)
        assert pointed_build(data / "bucket") == new
    assert mid_run == 3, "kills should land while the publish runs"
    serves(data, tmp_path / "server.log", new)


def test_kill9_publish_to_s3_at_random_points(moto_s3, tmp_path):
    data = tmp_path / "data"
    out = data / "build"
    ids = build_series(tmp_path, out, N_IOCS, [None, 21, 22])
    known = local_answers(out, ids)
    name = moto_s3.new_bucket()
    spec = f"s3://{name}/feeds"
    s3 = moto_s3.client()
    dest = S3Destination(name, "feeds/", endpoint_url=moto_s3.endpoint)
    socdef("publish", "--to", spec, "--build-id", ids[0], data_dir=data, env=moto_s3.env)
    mid_run = 0
    for seed, build_id in zip((1, 2), ids[1:], strict=True):
        previous = observe(
            open_bucket(spec, environ=moto_s3.env), lambda: dest.sizes("objects/"), known
        )
        todo = sorted(object_keys(manifest_of(out, build_id)) - set(dest.sizes("objects/")))
        rng = random.Random(seed)
        mark = todo[rng.randrange(len(todo) // 10, len(todo) * 9 // 10)]
        proc = spawn(
            "publish",
            "--to",
            spec,
            "--build-id",
            build_id,
            data_dir=data,
            env=moto_s3.env,
            log=tmp_path / f"publish-{seed}.log",
        )

        def arrived(mark: str = mark, proc: subprocess.Popen = proc) -> bool:
            try:
                s3.head_object(Bucket=name, Key=f"feeds/{mark}")
                return True
            except Exception:  # noqa: BLE001 - not there yet
                return proc.poll() is not None

        wait_for(arrived, 60, f"object {mark} to arrive", poll=0.005)
        if kill9(proc):
            mid_run += 1
            LOG.fault("kill -9 socdef publish (s3)")
        seen = observe(
            open_bucket(spec, environ=moto_s3.env), lambda: dest.sizes("objects/"), known
        )
        assert seen.missing == 0 and seen.matches, seen  # the pointer names a whole build
        assert seen.build_id in (previous.build_id, build_id)
        socdef("publish", "--to", spec, "--build-id", build_id, data_dir=data, env=moto_s3.env)
        done = observe(
            open_bucket(spec, environ=moto_s3.env), lambda: dest.sizes("objects/"), known
        )
        assert done.build_id == build_id and done.missing == 0 and done.matches
        LOG.checks += 2
    assert mid_run >= 2


# ---------------------------------------------------------------- kill -9 of the worker


class Load(threading.Thread):
    """Keyed requests in a loop until stopped; counts answers by status (errors by kind)."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.statuses: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stop.is_set():
                try:
                    r = client.get(
                        self.url + "/api/v1/iocs",
                        headers={"X-API-Key": self.key},
                        params={"limit": 5},
                    )
                    kind = str(r.status_code)
                except httpx.HTTPError as exc:
                    kind = type(exc).__name__
                self.statuses[kind] = self.statuses.get(kind, 0) + 1


def worker_pid(server_pid: int) -> int:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_kill9_worker_under_load_keeps_data_keys_and_limits(data, tmp_path):
    pro = new_key(data, "pro")
    free = new_key(data, "free")
    # a key of another account, unused until after the kill: the load may spend the pro
    # account's minute, so this one shows that the keys survived
    kept = new_account_key(data, "pro")
    before = Snapshot(data)
    keys_before = (data / "keys.sqlite").stat().st_size
    server = start_server(data, tmp_path / "server-1.log")
    try:
        assert_worker_answers(server.url, pro, before.published)
        wait_for_room_in_minute(20)
        used, windows = admitted(server.url, free, 6)
        assert used == 6
        loads = [Load(server.url, pro) for _ in range(3)]
        for load in loads:
            load.start()
        wait_for(
            lambda: sum(ld.statuses.get("200", 0) for ld in loads) >= 30,
            30,
            "the load to be answered",
        )
        assert kill9(_Pid(worker_pid(server.proc.pid)), orphans_within=0)
        LOG.fault("kill -9 worker process under load")
        # either the server replaces its worker or it ends; a supervisor restarts it then
        wait_for(
            lambda: server.proc.poll() is not None or _answers(server.url),
            30,
            "the server to end or answer again",
        )
        for load in loads:
            load.stop.set()
            load.join(timeout=30)
        if server.proc.poll() is not None:
            server = start_server(data, tmp_path / "server-2.log")
        before.assert_kept()
        assert (data / "keys.sqlite").stat().st_size >= keys_before
        assert_worker_answers(server.url, kept, before.published)  # the keys survived
        spent = httpx.get(server.url + "/api/v1/iocs", headers={"X-API-Key": pro}, timeout=30)
        assert spent.status_code in (200, 429), spent.text  # known, perhaps out of its minute
        more, later = admitted(server.url, free, 10)
        if windows == later:  # same minute: 6 before the kill, at most 4 more after it
            assert used + more <= 10, (used, more)
        else:
            assert more <= 10
    finally:
        stop_process(server.proc)


class _Pid:
    """Enough of a Popen for :func:`kill9` to kill a process this test did not start."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        return None if Path(f"/proc/{self.pid}").exists() else 0

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int:
        wait_for(
            lambda: self.poll() is not None or _zombie(self.pid),
            timeout,
            f"process {self.pid} to end",
        )
        return 0


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------- two builds at once


def test_two_builds_at_once_on_one_data_dir(data, tmp_path):
    now = int(time.time())
    before = Snapshot(data)
    for seed in (1, 2):
        procs = [
            spawn(
                "build",
                "--now",
                str(now + 10 * seed + i),
                data_dir=data,
                log=tmp_path / f"build-{seed}-{i}.log",
            )
            for i in (0, 1)
        ]
        LOG.fault("two builds at once")
        codes = [p.wait(timeout=120) for p in procs]
        logs = [(tmp_path / f"build-{seed}-{i}.log").read_text() for i in (0, 1)]
        assert 0 in codes, logs  # one wins (or both finish, one after the other)
        for code, log in zip(codes, logs, strict=True):
            assert code == 0 or ("Error: " in log and "Traceback" not in log), log
        before.assert_kept()
        # every build either wrote is whole, and LATEST names one of them
        built = [
            line.split()[1].rstrip(":")
            for log in logs
            for line in log.splitlines()
            if line.startswith("build ")
        ]
        for build_id in built:
            assert_build_whole(data / "build", build_id)
        assert latest_build(data / "build") in built
        socdef("publish", data_dir=data)
        before = Snapshot(data)
        assert before.published in built
    serves(data, tmp_path / "server.log", before.published)


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def disk(tmp_path) -> Iterator[SmallDisk]:
    small = SmallDisk(tmp_path / "small")
    try:
        yield small
    finally:
        small.close()


def serves(data: Path, log: Path, build_id: str) -> None:
    """A worker started on ``data`` answers /healthz and a keyed request from ``build_id``."""
    key = new_key(data, "pro")
    server = start_server(data, log)
    try:
        assert_worker_answers(server.url, key, build_id)
    finally:
        stop_process(server.proc)


def test_full_disk_under_the_data_dir(template, disk, tmp_path):
    """build and ingest on a full file system: a one-line error, store and builds intact."""
    data = disk.path / "data"
    subprocess.run(["cp", "-a", str(template), str(data)], check=True)
    before = Snapshot(data)
    disk.fill()
    for args in (
        ("build", "--now", str(int(time.time()))),
        ("ingest", "--offline", str(SAMPLE), "--shift-dates"),
    ):
        failed = run(*args, data_dir=data, limit_file_size=disk.limit)
        LOG.fault(f"disk full: socdef {args[0]}")
        assert_clean_error(failed, *disk.error_words)
        before.assert_kept()
    disk.free()
    assert run("build", "--now", str(int(time.time())), data_dir=data).returncode == 0
    assert_build_whole(data / "build", latest_build(data / "build"))
    ingested = run("ingest", "--offline", str(SAMPLE), "--shift-dates", data_dir=data)
    assert ingested.returncode == 0, ingested.stderr
    assert len(Store(data / "store").articles()) > 0
    socdef("publish", data_dir=data)
    serves(data, tmp_path / "server.log", latest_build(data / "build"))


def test_a_full_disk_in_the_second_build_process_is_one_line(tmp_path, monkeypatch):
    """Where the disk fills decides which build process fails first; the second one's failure
    reads like the first one's: one line (its traceback kept as a note)."""
    from generator.build import tree as build_module

    def no_space(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(build_module, "_second_lane", no_space)  # the forked child runs it
    store = make_store(tmp_path / "store", 300)
    with pytest.raises(RuntimeError) as info:
        build_module.build(store, tmp_path / "build", processes=2)
    LOG.fault("disk full: second build process")
    assert str(info.value) == (
        "the second build process failed: OSError: [Errno 28] No space left on device"
    )
    assert "Traceback" in "".join(getattr(info.value, "__notes__", []))
    assert not (tmp_path / "build" / "LATEST").exists()


def test_full_disk_under_the_publish_target(data, disk, tmp_path):
    target = disk.path / "bucket"
    socdef("publish", "--to", str(target), data_dir=data)
    old = pointed_build(target)
    socdef("build", "--now", str(int(time.time())), data_dir=data)
    new = latest_build(data / "build")
    bucket = tree_digest(target)
    disk.fill()
    failed = run("publish", "--to", str(target), data_dir=data, limit_file_size=disk.limit)
    LOG.fault("disk full: socdef publish")
    assert_clean_error(failed, *disk.error_words)
    assert_kept(bucket, tree_digest(target), what="publish target")
    assert pointed_build(target) == old  # the pointer still names the whole old build
    disk.free()
    socdef("publish", "--to", str(target), data_dir=data)
    assert pointed_build(target) == new


# ---------------------------------------------------------------- corrupt files (holding today)


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


class TestCorruptFiles:
    def test_a_truncated_store_file_is_a_clear_error_and_costs_no_build(self, data, tmp_path):
        before = Snapshot(data)
        generation = data / "store" / (data / "store" / "CURRENT").read_text().strip()
        for table in ("articles", "sightings"):
            good = (generation / f"{table}.parquet").read_bytes()
            truncate(generation / f"{table}.parquet")
            LOG.bad_input(f"truncated store {table}.parquet")
            store_files = tree_digest(data / "store")
            for args in (
                ("build", "--now", str(int(time.time()))),
                ("ingest", "--offline", str(SAMPLE), "--shift-dates"),
            ):
                assert_clean_error(run(*args, data_dir=data), f"{table}.parquet")
                assert_kept(store_files, tree_digest(data / "store"), what="store files")
            (generation / f"{table}.parquet").write_bytes(good)
        before.assert_kept()
        serves(data, tmp_path / "server.log", before.published)

    def test_a_damaged_build_folder_is_a_clear_publish_error(self, data):
        socdef("build", "--now", str(int(time.time())), data_dir=data)
        latest = latest_build(data / "build")
        manifest = data / "build" / layout.manifest_key(latest)
        good = manifest.read_bytes()
        bucket = tree_digest(data / "bucket")
        for damage in ("manifest missing", "LATEST empty", "LATEST names junk"):
            if damage == "manifest missing":
                manifest.unlink()
            else:
                manifest.write_bytes(good)
                (data / "build" / "LATEST").write_text("" if damage == "LATEST empty" else "../x")
            LOG.bad_input(f"build folder: {damage}")
            assert_clean_error(run("publish", data_dir=data), "missing")
            assert_kept(bucket, tree_digest(data / "bucket"), what="bucket")

    def test_a_damaged_bucket_pointer_stops_publish_before_it_sends(self, data):
        socdef("build", "--now", str(int(time.time())), data_dir=data)
        for pointer in (
            b'{"build_id": "2026',
            b"[1, 2]",
            b"\xff\xfe junk",
            b"null",
            b'{"build_id": "x", "history": "not a list"}',
        ):
            (data / "bucket" / POINTER).write_bytes(pointer)
            LOG.bad_input("damaged bucket pointer (publish)")
            bucket = tree_digest(data / "bucket")
            assert_clean_error(run("publish", data_dir=data), POINTER, "damaged")
            assert tree_digest(data / "bucket") == bucket  # nothing sent, nothing pruned
            LOG.checks += 1
        (data / "bucket" / POINTER).write_bytes(b"")  # an empty pointer is no pointer
        socdef("publish", data_dir=data)
        assert pointed_build(data / "bucket") == latest_build(data / "build")

    def test_a_garbage_keys_database_is_a_clear_cli_error(self, data):
        for junk in (
            b"\x00" * 4096,
            b"SQLite format 3\x00" + b"\xff" * 200,
            random.Random(5).randbytes(8192),
        ):
            (data / "keys.sqlite").write_bytes(junk)
            LOG.bad_input("garbage keys.sqlite (keys commands)")
            for args in (
                ("keys", "create", "--user", "a@example.org", "--tier", "free"),
                ("keys", "list"),
            ):
                assert_clean_error(run(*args, data_dir=data), "keys.sqlite")
            assert (data / "keys.sqlite").read_bytes() == junk  # left for the operator


# ---------------------------------------------------------------- an origin answering garbage


HOSTILE_ORIGIN = {  # source id: (behaviour, options)
    "g-html": ("raw", {"body": b"<!DOCTYPE html><html><body>Sign in</body></html>"}),
    "g-truncated": ("raw", {"body": feed("g-truncated")[:150]}),
    "g-junk": ("raw", {"body": random.Random(10).randbytes(10_000_000)}),
    "g-slowloris": ("drip", {}),
    "g-loop": ("loop", {}),
}


def sources_file(path: Path, server: HostileServer, ids: list[str]) -> Path:
    path.write_text(
        "".join(
            f'[[source]]\nid = "{sid}"\nname = "{sid}"\nurl = "{server.url("/" + sid)}"\n'
            f'category = "research"\nsite = "{sid}.example.org"\n\n'
            for sid in ids
        )
    )
    return path


def test_an_origin_answering_garbage_fails_its_source_and_keeps_the_store(tmp_path):
    data = tmp_path / "data"
    ids = ["g-ok", *HOSTILE_ORIGIN]
    env = {"SOCDEF_ALLOW_NETWORKS": "127.0.0.0/8"}
    with HostileServer() as server:
        for sid in ids:
            server.route(f"/{sid}", "feed", feed(sid))
        sources = sources_file(tmp_path / "sources.toml", server, ids)
        socdef("ingest", "--sources", str(sources), data_dir=data, env=env)
        before = store_digest(data / "store", with_state=False)
        for sid, (behaviour, options) in HOSTILE_ORIGIN.items():
            server.route(f"/{sid}", behaviour, **options)
            LOG.bad_input(f"origin: {sid}")
        started = time.monotonic()
        result = socdef("ingest", "--sources", str(sources), data_dir=data, env=env, timeout=120)
        assert time.monotonic() - started < 60  # every fetch ends by its deadline
    rows = {
        json.loads(line)["id"]: json.loads(line)
        for line in socdef(
            "sources", "--json", "--sources", str(sources), data_dir=data
        ).stdout.splitlines()
    }
    assert rows["g-ok"]["status"] in ("ok", "not_modified")
    for sid in HOSTILE_ORIGIN:
        assert rows[sid]["status"] == "error" and rows[sid]["error"], (sid, rows[sid])
        assert sid in result.stdout
    # the records are those of before; only the sources' fetch state changed
    assert_same_store(before, data / "store", with_state=False)
    assert len(Store(data / "store").articles()) == len(ids) * 3


# ---------------------------------------------------------------- faults that were fatal


def health(url: str) -> tuple[int, dict]:
    r = httpx.get(url + "/healthz", timeout=10)
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, {"body": r.text}


class TestOnceFatalFaults:
    """Faults that once stopped the service: the worker keeps its last good build
    when the pointer breaks; damaged databases stop ``serve`` with one line; a damaged limiter
    store is the documented fallback or 503, never 500."""

    @pytest.mark.parametrize(
        "damage", ["truncated", "not JSON", "without build_id", "names a missing manifest"]
    )
    def test_a_bad_pointer_keeps_the_last_good_build(self, data, tmp_path, damage):
        key = new_key(data, "pro")
        old = latest_build(data / "build")
        server = start_server(data, tmp_path / "server.log")
        try:
            assert_worker_answers(server.url, key, old)
            pointer = data / "bucket" / POINTER
            good = pointer.read_bytes()
            bad = {
                "truncated": good[: len(good) // 2],
                "not JSON": b"<html>oops</html>",
                "without build_id": b'{"generated_at": 1, "history": []}',
                "names a missing manifest": good.replace(
                    old.encode(), b"20990101T000000Z-000000000000"
                ),
            }
            pointer.write_bytes(bad[damage])
            LOG.bad_input(f"worker: pointer {damage}")
            status, body = wait_for(
                lambda: (lambda h: h if h[1].get("status") != "ok" else None)(health(server.url)),
                20,
                "the worker to notice the bad pointer",
                poll=0.2,
            )
            assert status == 200 and body["status"] == "degraded", body
            assert body["build_id"] == old and body.get("detail")
            assert_worker_answers(server.url, key, old)  # still serving the last good build
            pointer.write_bytes(good)
            wait_for(
                lambda: health(server.url)[1].get("status") == "ok",
                20,
                "the worker to take the good pointer again",
                poll=0.2,
            )
        finally:
            stop_process(server.proc)

    @pytest.mark.parametrize("name", ["keys.sqlite", "limits.sqlite", "usage.sqlite"])
    def test_a_garbage_database_stops_serve_with_one_line(self, data, name):
        (data / name).write_bytes(random.Random(7).randbytes(4096))
        LOG.bad_input(f"serve: garbage {name}")
        result = run("serve", "--port", "0", data_dir=data, timeout=60)
        assert_clean_error(result, name)

    def test_a_garbage_limits_database_at_run_time_is_never_a_500(self, data, tmp_path):
        key = new_key(data, "pro")
        server = start_server(data, tmp_path / "server.log")
        try:
            assert_worker_answers(server.url, key)
            for suffix in ("", "-wal", "-shm"):
                path = data / f"limits.sqlite{suffix}"
                if path.exists():
                    path.write_bytes(random.Random(9).randbytes(path.stat().st_size or 4096))
            LOG.bad_input("worker: garbage limits.sqlite at run time")
            for _ in range(15):
                r = httpx.get(
                    server.url + "/api/v1/iocs",
                    headers={"X-API-Key": key},
                    params={"limit": 1},
                    timeout=30,
                )
                assert r.status_code in (200, 429, 503), (r.status_code, r.text)
                if r.status_code == 503:
                    assert r.json()["error"]["code"], r.text
        finally:
            stop_process(server.proc)
