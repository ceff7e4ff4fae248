"""Faults the running worker must survive: a bad pointer or manifest while a build is loaded,
a corrupt limiter database at run time, corrupt databases at start, a killed worker process."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from generator.publish.folder import LocalDestination
from generator.publish.upload import publish
from tests import support
from tests.buildseries import build_series, make_store
from tests.conftest import poll_until, socdef, start_server, stop_process
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from worker.buckets.storage import BadPointer, BuildSource, LocalBucket, NoBuild, StorageError
from worker.contract import layout

MISSING_BUILD = "20991231T000000Z-0123456789ab"
# (pointer bytes, or a function of the good pointer; what /healthz's detail says)
BAD_POINTERS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (lambda good: good[: len(good) // 2], "is not a JSON object"),
    "not json": (lambda good: b"\x00\xffnot json at all", "is not a JSON object"),
    "html error page": (
        lambda good: b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
        "is not a JSON object",
    ),
    "json list": (lambda good: b"[1, 2]", "is not a JSON object"),
    "no build_id": (lambda good: b'{"generated_at": 1795000000}', "names no valid build_id"),
    "build_id not a name": (
        lambda good: b'{"build_id": "../../etc/passwd"}',
        "names no valid build_id",
    ),
    "build_id a number": (lambda good: b'{"build_id": 7}', "names no valid build_id"),
    "missing manifest": (
        lambda good: json.dumps({"build_id": MISSING_BUILD}).encode(),
        "manifest is missing",
    ),
}

SERVED_CASES = ("truncated", "html error page", "no build_id", "missing manifest")

# --- BuildSource over a folder ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory) -> tuple[Path, list[str]]:
    """A bucket folder holding two published builds, the second current."""
    tmp = tmp_path_factory.mktemp("two-builds")
    ids = build_series(tmp, tmp / "build", 200, [None, 5])
    for build_id in ids:
        publish(tmp / "build", LocalDestination(tmp / "bucket"), build_id=build_id)
    return tmp / "bucket", ids


def point(bucket: Path, raw: bytes) -> None:
    (bucket / layout.POINTER_KEY).write_bytes(raw)


@pytest.fixture
def bucket(two_builds) -> Iterator[tuple[Path, list[str], bytes]]:
    """The two-build bucket with its good pointer put back after the test."""
    root, ids = two_builds
    good = (root / layout.POINTER_KEY).read_bytes()
    yield root, ids, good
    point(root, good)


@pytest.mark.parametrize("case", sorted(BAD_POINTERS))
def test_a_bad_pointer_keeps_the_loaded_build(bucket, case, caplog):
    root, ids, good = bucket
    source = BuildSource(LocalBucket(root), pointer_ttl=0)
    assert source.current().build_id == ids[1] and source.problem is None
    make, says = BAD_POINTERS[case]
    point(root, make(good))
    with caplog.at_level(logging.WARNING, logger="socdef.storage"):
        for _ in range(5):
            assert source.current().build_id == ids[1]
    assert source.problem is not None and says in source.problem
    warnings = [r.getMessage() for r in caplog.records if r.name == "socdef.storage"]
    assert len(warnings) == 1, warnings  # once per change, not per request
    assert says in warnings[0] and f"still serving build {ids[1]}" in warnings[0]
    caplog.clear()
    point(root, json.dumps({"build_id": ids[0]}).encode())  # a valid pointer: switch to it
    with caplog.at_level(logging.WARNING, logger="socdef.storage"):
        assert source.current().build_id == ids[0]
        assert source.current().build_id == ids[0]
    assert source.problem is None
    assert [r.getMessage() for r in caplog.records] == [
        f"pointer valid again: serving build {ids[0]}"
    ]


@pytest.mark.parametrize("case", sorted(BAD_POINTERS))
def test_a_bad_pointer_without_a_loaded_build_is_a_storage_error(bucket, case):
    root, _, good = bucket
    point(root, BAD_POINTERS[case][0](good))
    with pytest.raises(BadPointer, match=BAD_POINTERS[case][1]):
        BuildSource(LocalBucket(root), pointer_ttl=0).current()


def test_a_deleted_pointer_keeps_the_loaded_build(bucket):
    root, ids, _ = bucket
    source = BuildSource(LocalBucket(root), pointer_ttl=0)
    assert source.current().build_id == ids[1]
    (root / layout.POINTER_KEY).unlink()
    assert source.current().build_id == ids[1]
    assert source.problem == f"the pointer {layout.POINTER_KEY} is missing"
    with pytest.raises(NoBuild):
        BuildSource(LocalBucket(root), pointer_ttl=0).current()


@pytest.mark.parametrize(
    "manifest",
    [
        b'{"build_id": "x"',
        b"<html></html>",
        b'{"objects": {}}',
        b'{"build_id": "%s", "generated_at": 1, "objects": 3}',
    ],
)
def test_an_unreadable_manifest_keeps_the_loaded_build(bucket, manifest):
    root, ids, _ = bucket
    source = BuildSource(LocalBucket(root), pointer_ttl=0)
    assert source.current().build_id == ids[1]
    path = root / layout.manifest_key(MISSING_BUILD)
    path.write_bytes(manifest.replace(b"%s", MISSING_BUILD.encode()))
    try:
        point(root, json.dumps({"build_id": MISSING_BUILD}).encode())
        assert source.current().build_id == ids[1]
        assert source.problem == f"the manifest of build {MISSING_BUILD} is not a valid manifest"
        with pytest.raises(BadPointer):
            BuildSource(LocalBucket(root), pointer_ttl=0).current()
    finally:
        path.unlink()


def test_an_unreachable_bucket_is_still_a_storage_error_without_a_build(bucket):
    class Down(LocalBucket):
        def get(self, key):
            raise StorageError("GET http://origin.internal/current.json failed")

    root, _, _ = bucket
    with pytest.raises(StorageError, match="did not answer") as caught:
        BuildSource(Down(root), pointer_ttl=0).current()
    assert not isinstance(caught.value, NoBuild | BadPointer)
    assert "origin.internal" not in str(caught.value)  # no bucket address in what is shown


# --- a running worker, local folder and S3 origins --------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory, moto_s3):
    """A data folder with a key and one build, published to its folder and to S3."""
    data = tmp_path_factory.mktemp("faults")
    support.published(data, store=lambda root: make_store(root, 300))
    name = moto_s3.new_bucket()
    socdef("publish", "--to", f"s3://{name}/feeds", data_dir=data, env=moto_s3.env)
    key = support.new_key(data, "enterprise", "faults@example.org")
    return data, name, key


def origin_writer(origin: str, data: Path, name: str, moto_s3) -> Callable[[bytes | None], None]:
    """Replace (or with None, delete) the pointer of the local folder or of the S3 prefix."""
    if origin == "local":
        path = data / "bucket" / layout.POINTER_KEY

        def write(raw: bytes | None) -> None:
            if raw is None:
                path.unlink()
            else:
                path.write_bytes(raw)

        return write
    client, key = moto_s3.client(), f"feeds/{layout.POINTER_KEY}"

    def put(raw: bytes | None) -> None:
        if raw is None:
            client.delete_object(Bucket=name, Key=key)
        else:  # what an origin answering an error page with 200 sends
            client.put_object(Bucket=name, Key=key, Body=raw, ContentType="text/html")

    return put


@pytest.mark.parametrize("origin", ["local", "s3"])
def test_a_worker_keeps_serving_its_build_through_bad_pointers(
    published, moto_s3, origin, tmp_path
):
    data, name, key = published
    env = {**moto_s3.env, "SOCDEF_BUCKET": f"s3://{name}/feeds"} if origin == "s3" else {}
    write = origin_writer(origin, data, name, moto_s3)
    good = (data / "bucket" / layout.POINTER_KEY).read_bytes()
    server = start_server(data, tmp_path / "serve.log", env=env)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        health = httpx.get(server.url + "/healthz").json()
        assert health["status"] == "ok", health
        build_id = health["build_id"]
        answer = httpx.get(server.url + "/api/v1/iocs", headers=auth)
        assert answer.status_code == 200
        cases = [
            (case, make(good), says)
            for case, (make, says) in BAD_POINTERS.items()
            if case in SERVED_CASES
        ]  # the unit tests above take every case
        cases.append(("deleted", None, f"the pointer {layout.POINTER_KEY} is missing"))
        for case, raw, says in cases:
            write(raw)

            def degraded(says: str = says) -> dict | None:
                health = httpx.get(server.url + "/healthz")
                assert health.status_code == 200, health.text
                found = health.json()
                return found if found["status"] == "degraded" and says in found["detail"] else None

            found = poll_until(degraded, 20, f"/healthz to report {case}")
            assert found["build_id"] == build_id, found
            assert "127.0.0.1" not in found["detail"]  # no bucket address in the answer
            for _ in range(3):  # the full path, then kept answers (the hot path)
                again = httpx.get(server.url + "/api/v1/iocs", headers=auth)
                assert (again.status_code, again.content) == (200, answer.content), case
            write(good)
            poll_until(
                lambda: httpx.get(server.url + "/healthz").json()["status"] == "ok",
                20,
                f"/healthz to recover from {case}",
            )
    finally:
        write(good)
        stop_process(server.proc)
    log = server.log()
    for case, _, says in cases:  # once per change, however many requests saw it
        assert sum(says in line for line in log.splitlines()) == sum(
            s == says for _, _, s in cases
        ), (case, log)
    assert log.count("pointer valid again") == len(cases)
    assert "Traceback" not in log


def test_a_worker_that_never_loaded_a_build_answers_503_alike(published, tmp_path):
    data, _, key = published
    path = data / "bucket" / layout.POINTER_KEY
    good = path.read_bytes()
    path.write_bytes(b"<html>oops</html>")
    try:
        server = start_server(data, tmp_path / "serve.log")
        try:
            health = httpx.get(server.url + "/healthz")
            assert health.status_code == 503
            assert health.json() == {
                "status": "build_unreadable",
                "detail": f"the pointer {layout.POINTER_KEY} is not a JSON object",
            }
            api = httpx.get(server.url + "/api/v1/iocs", headers={"Authorization": f"Bearer {key}"})
            assert api.status_code == 503, api.text
            assert api.json()["error"]["code"] == "service_unavailable"
            assert (
                api.json()["error"]["message"]
                == "The published feed cannot be read; retry shortly."
            )
            path.write_bytes(good)
            poll_until(
                lambda: httpx.get(server.url + "/healthz").json()["status"] == "ok",
                20,
                "the worker to load the build once the pointer is valid",
            )
            api = httpx.get(server.url + "/api/v1/iocs", headers={"Authorization": f"Bearer {key}"})
            assert api.status_code == 200
        finally:
            stop_process(server.proc)
    finally:
        path.write_bytes(good)


# --- a corrupt limiter database at run time ---------------------------------------------------


def corrupt_sqlite(path: Path) -> None:
    """Overwrite a live SQLite database, its WAL and its shared-memory index in place."""
    for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
        part = path.with_name(name)
        if part.exists():
            with open(part, "r+b") as fh:
                fh.write(b"\xde\xad\xbe\xef" * (os.fstat(fh.fileno()).st_size // 4 + 1))


def test_a_corrupt_limits_database_is_an_unavailable_store(tmp_path):
    from worker.limits.fallback import FallbackLimiter
    from worker.limits.windows import LimiterUnavailable, SQLiteLimiter

    path = tmp_path / "limits.sqlite"
    primary = SQLiteLimiter(path)
    assert primary.hit("k", 100, 1000).remaining == 99
    corrupt_sqlite(path)
    for call in (
        lambda: primary.hit("k", 100, 1000),
        lambda: primary.peek("k", 100, 1000),
        lambda: primary.hit_many([("k", 100, 1000), ("j", 100, 1000)]),
    ):
        with pytest.raises(LimiterUnavailable, match=r"limits\.sqlite: file is not a database"):
            call()
    limiter = FallbackLimiter(primary)
    decided = [limiter.hit("k", 100, 1000) for _ in range(12)]
    assert [d.allowed for d in decided] == [True] * 10 + [False] * 2  # the 10 % cap
    assert not limiter.healthy
    assert len(limiter.hit_many([("j", 100, 1000)] * 3)) == 3


@pytest.mark.parametrize("fallback", ["0.1", "0"])
def test_a_worker_with_a_corrupt_limits_database_applies_the_documented_policy(
    published, tmp_path, fallback
):
    data, _, key = published
    copy = tmp_path / "data"
    copy.mkdir()
    for name in ("keys.sqlite", "secret.key"):
        (copy / name).write_bytes((data / name).read_bytes())
    (copy / "bucket").symlink_to(data / "bucket")
    server = start_server(copy, tmp_path / "serve.log", "--limiter-fallback", fallback)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        for _ in range(2):  # the full path, then the kept answer (the hot path)
            assert httpx.get(server.url + "/api/v1/iocs", headers=auth).status_code == 200
        corrupt_sqlite(copy / "limits.sqlite")
        answers = [httpx.get(server.url + "/api/v1/iocs", headers=auth) for _ in range(4)]
    finally:
        stop_process(server.proc)
    log = server.log()
    assert "Traceback" not in log and "unhandled" not in log
    if fallback == "0":
        for resp in answers:
            assert resp.status_code == 503, resp.text
            assert resp.json()["error"]["code"] == "service_unavailable"
            assert resp.headers["retry-after"] == "1"
        assert "rate limiter: sqlite" in log and "file is not a database" in log
    else:
        for resp in answers:
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-ratelimit-limit"] == "100"  # 10 % of enterprise's 1000
        assert log.count("rate-limit store unavailable") == 1, log
        assert "limits.sqlite: file is not a database" in log


# --- the server process: corrupt databases at start, a killed worker -------------------------


@pytest.mark.parametrize("name", ["keys.sqlite", "limits.sqlite", "usage.sqlite"])
@pytest.mark.parametrize("damage", ["garbage", "header"])
def test_a_corrupt_database_stops_serve_before_workers_start(tmp_path, name, damage):
    import sqlite3

    path = tmp_path / name
    if damage == "garbage":
        path.write_bytes(b"this is not SQLite\n" * 300)
    else:  # a real database whose header was overwritten
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE t (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
        conn.commit()
        conn.close()
        with open(path, "r+b") as fh:
            fh.write(b"\x00" * 100)
    started = time.monotonic()
    result = socdef(
        "serve",
        "--port",
        "0",
        "--workers",
        "2",
        data_dir=tmp_path,
        check=False,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert time.monotonic() - started < 30
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"Error: {path} is not a usable SQLite database ("
    ), result.stderr
    assert "worker" not in result.stderr.lower()


def worker_pids(pid: int) -> set[int]:
    """The server's worker processes: its children that run the app."""
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except FileNotFoundError:
            continue
        for child in map(int, children):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"resource_tracker" not in cmdline:
                found.add(child)
    return found


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_a_killed_worker_is_replaced_while_the_others_serve(published, tmp_path, server):
    data, _, key = published
    proc = start_server(data, tmp_path / "serve.log", "--workers", "2", "--server", server)
    url = proc.url + "/api/v1/iocs"
    auth = {"Authorization": f"Bearer {key}"}
    try:
        first = poll_until(
            lambda: len(worker_pids(proc.proc.pid)) == 2 and worker_pids(proc.proc.pid),
            20,
            "two workers",
        )
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        # the others keep serving while the dead one is replaced
        survivors = set(first) - {victim}
        while not (worker_pids(proc.proc.pid) - set(first)):
            assert proc.proc.poll() is None, proc.log()
            assert httpx.get(url, headers=auth, timeout=10).status_code == 200
        now = poll_until(
            lambda: len(worker_pids(proc.proc.pid)) == 2 and worker_pids(proc.proc.pid),
            30,
            "the replacement worker",
        )
        assert survivors < now and victim not in now
        for _ in range(20):
            assert httpx.get(url, headers=auth, timeout=10).status_code == 200
        assert proc.proc.poll() is None
    finally:
        stop_process(proc.proc)


def test_every_worker_loads_the_build_as_it_starts(bucket, tmp_path):
    from worker.config import WorkerConfig, create_app

    root, ids, _ = bucket
    app = create_app(WorkerConfig.for_data_dir(tmp_path, bucket=str(root), pointer_ttl=0))
    poll_until(lambda: app.builds.build_id == ids[1], 20, "the build to load without a request")
    (root / layout.POINTER_KEY).unlink()
    assert app.builds.current().build_id == ids[1]  # the first request already finds it
    assert app.builds.problem == f"the pointer {layout.POINTER_KEY} is missing"


def test_a_deleted_pointer_leaves_every_worker_serving(published, tmp_path):
    data, _, key = published
    path = data / "bucket" / layout.POINTER_KEY
    good = path.read_bytes()
    server = start_server(data, tmp_path / "serve.log", "--workers", "2")
    try:
        path.unlink()
        deadline = time.monotonic() + 4 * 2.0  # twice the pointer TTL, with margin
        seen = set()
        while time.monotonic() < deadline:
            health = httpx.get(server.url + "/healthz")
            assert health.status_code == 200, health.text
            seen.add(health.json()["status"])
            api = httpx.get(server.url + "/api/v1/iocs", headers={"Authorization": f"Bearer {key}"})
            assert api.status_code == 200, api.text
        assert "degraded" in seen
    finally:
        path.write_bytes(good)
        stop_process(server.proc)


@pytest.mark.parametrize("body", [b"not gzip at all", b"\x1f\x8b\x08\x00truncated"])
def test_a_gzip_pointer_that_does_not_decode_keeps_the_loaded_build(moto_s3, two_builds, body):
    from worker.buckets.remote import S3Bucket
    from worker.buckets.sigv4 import Credentials

    root, ids = two_builds
    name = moto_s3.new_bucket()
    client = moto_s3.client()
    for path in [root / layout.POINTER_KEY, root / layout.manifest_key(ids[1])]:
        client.put_object(Bucket=name, Key=str(path.relative_to(root)), Body=path.read_bytes())
    bucket = S3Bucket(
        name,
        endpoint=moto_s3.endpoint,
        credentials=lambda: Credentials("testing-key", "testing-secret"),
    )
    source = BuildSource(bucket, pointer_ttl=0)
    assert source.current().build_id == ids[1]
    client.put_object(Bucket=name, Key=layout.POINTER_KEY, Body=body, ContentEncoding="gzip")
    with pytest.raises(StorageError, match="does not decode"):
        bucket.get(layout.POINTER_KEY)
    assert source.current().build_id == ids[1]
    assert source.problem == "the pointer could not be read (the bucket did not answer)"


def test_a_locked_database_at_start_is_not_called_corrupt(tmp_path):
    import sqlite3

    from generator.runtime import CorruptDatabase, check_databases

    path = tmp_path / "keys.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")  # a rollback-journal database: readers wait for it
    try:
        check_databases(tmp_path, timeout=0.05)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    path.write_bytes(b"garbage" * 100)
    with pytest.raises(CorruptDatabase, match="keys.sqlite is not a usable SQLite database"):
        check_databases(tmp_path, timeout=0.05)


def test_an_unknown_bucket_stops_serve_before_workers_start(tmp_path):
    result = socdef(
        "serve",
        "--port",
        "0",
        "--workers",
        "2",
        data_dir=tmp_path,
        check=False,
        timeout=60,
        env={"SOCDEF_BUCKET": "ftp://feeds.example.org/x"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "Error: unknown bucket 'ftp://feeds.example.org/x': use a folder, s3://… or https://…"
    ]


def test_the_first_publish_is_not_reported_as_a_recovery(two_builds, tmp_path, caplog):
    root, ids = two_builds
    empty = tmp_path / "bucket"
    empty.mkdir()
    source = BuildSource(LocalBucket(empty), pointer_ttl=0)
    with caplog.at_level(logging.INFO, logger="socdef.storage"):
        for _ in range(3):
            with pytest.raises(NoBuild):
                source.current()
        publish(root.parent / "build", LocalDestination(empty), build_id=ids[0])
        assert source.current().build_id == ids[0]
    assert [r.getMessage() for r in caplog.records] == [
        "no build has been published yet",
        f"a build has been published: serving build {ids[0]}",
    ]
