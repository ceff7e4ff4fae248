"""Fault injection: kill -9 of build, publish and the worker, two builds at once, a full disk,
corrupt files and hostile origins. After each fault: nothing in the store or in the published
build was lost (digests before and after), the worker answers, limits held.

The suite counts what it injects (see tests/faultkit.py and docs/reliability.md).
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from generator.s3 import S3Destination
from tests.buildseries import (
    build_series,
    local_answers,
    make_store,
    manifest_of,
    object_keys,
    observe,
)
from tests.conftest import socdef, start_server, stop_process, wait_for_room_in_minute
from tests.faultkit import (
    LOG,
    admitted,
    assert_build_whole,
    assert_kept,
    assert_same_store,
    assert_worker_answers,
    fault_log,  # noqa: F401 - the session's fault count
    kill9,
    latest_build,
    new_key,
    pointed_build,
    spawn,
    store_digest,
    tree_digest,
    wait_for,
)
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from worker import layout
from worker.remote import open_bucket

N_IOCS = 1500  # about 180 records and 860 objects: a build takes about a second
POINTER = layout.POINTER_KEY


@pytest.fixture(autouse=True)
def _counted(fault_log):  # noqa: F811 - every test adds to the session's count
    yield


def fresh_data(root: Path, n: int = N_IOCS) -> Path:
    """A data dir with a store, one build and that build published to its folder bucket."""
    make_store(root / "store", n)
    socdef("build", data_dir=root)
    socdef("publish", data_dir=root)
    return root


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
        assert_kept(self.build, tree_digest(self.data / "build"), may_change=("LATEST",),
                    what="build folder")
        assert_kept(self.bucket, tree_digest(self.data / "bucket"),
                    may_change=(POINTER,) if bucket_pointer_may_change else (), what="bucket")
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
    for seed in (1, 2, 3, 4, 5):
        rng = random.Random(seed)
        args = ("build", "--now", str(now + seed))
        proc = spawn(*args, data_dir=data, log=tmp_path / f"build-{seed}.log")
        time.sleep(rng.uniform(0.1, 0.7) * duration)
        mid_run += kill9(proc)
        LOG.fault("kill -9 socdef build")
        before.assert_kept()  # the previous build, the published one and the store intact
        duration = timed(*args, data_dir=data)  # a rerun completes
        assert_build_whole(data / "build", latest_build(data / "build"))
        before = Snapshot(data)
    assert mid_run >= 3, "most kills should land while the build runs"
    socdef("publish", data_dir=data)
    assert pointed_build(data / "bucket") == latest_build(data / "build")


def test_kill9_publish_to_a_folder_at_random_points(data, tmp_path):
    now = int(time.time())
    mid_run = 0
    duration = 0.0
    for seed in (1, 2, 3):
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
        mid_run += kill9(proc)
        LOG.fault("kill -9 socdef publish (folder)")
        # the pointer names a whole build: the old one or, if the kill came after the switch,
        # the new one; nothing the old build needs was removed
        before.assert_kept(bucket_pointer_may_change=True)
        assert pointed_build(data / "bucket") in (before.published, new)
        socdef("publish", data_dir=data)
        assert pointed_build(data / "bucket") == new
    assert mid_run >= 2, "most kills should land while the publish runs"


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
        previous = observe(open_bucket(spec, environ=moto_s3.env),
                           lambda: dest.sizes("objects/"), known)
        todo = sorted(object_keys(manifest_of(out, build_id)) - set(dest.sizes("objects/")))
        rng = random.Random(seed)
        mark = todo[rng.randrange(len(todo) // 10, len(todo) * 9 // 10)]
        proc = spawn("publish", "--to", spec, "--build-id", build_id, data_dir=data,
                     env=moto_s3.env, log=tmp_path / f"publish-{seed}.log")

        def arrived(mark: str = mark, proc: subprocess.Popen = proc) -> bool:
            try:
                s3.head_object(Bucket=name, Key=f"feeds/{mark}")
                return True
            except Exception:  # noqa: BLE001 - not there yet
                return proc.poll() is not None
        wait_for(arrived, 60, f"object {mark} to arrive", poll=0.005)
        mid_run += kill9(proc)
        LOG.fault("kill -9 socdef publish (s3)")
        seen = observe(open_bucket(spec, environ=moto_s3.env), lambda: dest.sizes("objects/"),
                       known)
        assert seen.missing == 0 and seen.matches, seen  # the pointer names a whole build
        assert seen.build_id in (previous.build_id, build_id)
        socdef("publish", "--to", spec, "--build-id", build_id, data_dir=data, env=moto_s3.env)
        done = observe(open_bucket(spec, environ=moto_s3.env), lambda: dest.sizes("objects/"),
                       known)
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
                    r = client.get(self.url + "/api/v1/iocs", headers={"X-API-Key": self.key},
                                   params={"limit": 5})
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
        wait_for(lambda: sum(ld.statuses.get("200", 0) for ld in loads) >= 30, 30,
                 "the load to be answered")
        assert kill9(_Pid(worker_pid(server.proc.pid)), orphans_within=0)
        LOG.fault("kill -9 worker process under load")
        # either the server replaces its worker or it ends; a supervisor restarts it then
        wait_for(lambda: server.proc.poll() is not None or _answers(server.url), 30,
                 "the server to end or answer again")
        for load in loads:
            load.stop.set()
            load.join(timeout=30)
        if server.proc.poll() is not None:
            server = start_server(data, tmp_path / "server-2.log")
        before.assert_kept()
        assert (data / "keys.sqlite").stat().st_size >= keys_before
        assert_worker_answers(server.url, pro, before.published)  # the keys survived
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
        wait_for(lambda: self.poll() is not None or _zombie(self.pid), timeout,
                 f"process {self.pid} to end")
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
        procs = [spawn("build", "--now", str(now + 10 * seed + i), data_dir=data,
                       log=tmp_path / f"build-{seed}-{i}.log") for i in (0, 1)]
        LOG.fault("two builds at once")
        codes = [p.wait(timeout=120) for p in procs]
        logs = [(tmp_path / f"build-{seed}-{i}.log").read_text() for i in (0, 1)]
        assert 0 in codes, logs  # one wins (or both finish, one after the other)
        for code, log in zip(codes, logs, strict=True):
            assert code == 0 or ("Error: " in log and "Traceback" not in log), log
        before.assert_kept()
        # every build either wrote is whole, and LATEST names one of them
        built = [line.split()[1].rstrip(":") for log in logs for line in log.splitlines()
                 if line.startswith("build ")]
        for build_id in built:
            assert_build_whole(data / "build", build_id)
        assert latest_build(data / "build") in built
        socdef("publish", data_dir=data)
        before = Snapshot(data)
        assert before.published in built
