"""``socdef publish --to s3://…`` against moto over HTTP: metadata, resume after SIGKILL, errors."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
from botocore.exceptions import ClientError

from generator.build.tree import build
from generator.publish.s3 import S3Destination
from tests.buildseries import (
    NOW,
    build_series,
    local_answers,
    make_store,
    manifest_of,
    object_keys,
    observe,
)
from tests.conftest import ROOT, socdef
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from worker.buckets.remote import open_bucket
from worker.contract import layout

N_IOCS = 3000


def published(out: str) -> dict[str, int]:
    """``published ID: uploaded 12 (0.1 MB), skipped 3, removed 0`` → the three counts."""
    words = out.replace(",", " ").replace("(", " ").split()
    return {
        w: int(words[i + 1]) for i, w in enumerate(words) if w in ("uploaded", "skipped", "removed")
    }


def test_cli_publish_to_s3_honours_the_aws_environment_and_sets_metadata(moto_s3, tmp_path):
    data = tmp_path / "data"
    make_store(data / "store", N_IOCS)
    socdef("build", data_dir=data)
    name = moto_s3.new_bucket()
    first = published(
        socdef("publish", "--to", f"s3://{name}/feeds", data_dir=data, env=moto_s3.env).stdout
    )
    assert first["uploaded"] > 0 and first["skipped"] == 0
    # --endpoint-url wins over the environment's endpoint
    bad_env = {**moto_s3.env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    again = published(
        socdef(
            "publish",
            "--to",
            f"s3://{name}/feeds/",
            "--endpoint-url",
            moto_s3.endpoint,
            data_dir=data,
            env=bad_env,
        ).stdout
    )
    assert again == {"uploaded": 0, "skipped": first["uploaded"], "removed": 0}

    s3 = moto_s3.client()
    build_id = (data / "build" / "LATEST").read_text()
    manifest = manifest_of(data / "build", build_id)

    def head(logical: str) -> dict:
        key = (
            logical
            if "/" not in logical or logical.startswith("builds/")
            else layout.object_key(manifest["objects"][logical][0])
        )
        return s3.head_object(Bucket=name, Key=f"feeds/{key}")

    pointer = head(layout.POINTER_KEY)
    assert pointer["ContentType"] == "application/json"
    assert pointer["CacheControl"] == "public, max-age=30"
    stored_manifest = head(layout.manifest_key(build_id))
    assert stored_manifest["ContentEncoding"] == "gzip"
    assert "immutable" in stored_manifest["CacheControl"]
    day = sorted(k for k in manifest["objects"] if k.endswith("/csv.dat"))[0]
    expected = {
        day: "application/octet-stream",  # framed: compressed blocks read by range
        day.replace("csv.dat", "json.idx"): "application/octet-stream",
        layout.default_key("pro", layout.ACTIVE_VIEW, "json"): "application/octet-stream",
        layout.default_key("pro", layout.ACTIVE_VIEW, "csv"): "text/csv",
        layout.view_index_key(layout.ACTIVE_VIEW): "application/json",
    }
    compressed = manifest.get("coded", {})
    assert layout.default_key("pro", layout.ACTIVE_VIEW, "csv") in compressed
    for logical, media in expected.items():
        meta = head(logical)
        assert meta["ContentType"].startswith(media), logical
        assert meta["CacheControl"] == "public, max-age=31536000, immutable"
        # text sent whole is stored gzip-compressed and says so; ranges are read from the rest
        assert meta.get("ContentEncoding") == ("gzip" if logical in compressed else None), logical


def test_cli_publish_errors_are_one_line(moto_s3, tmp_path):
    data = tmp_path / "data"
    make_store(data / "store", 200)
    socdef("build", data_dir=data)
    for target in ("s3://no-such-bucket-here/x", "ftp://example.org/x"):
        failed = socdef("publish", "--to", target, data_dir=data, env=moto_s3.env, check=False)
        assert failed.returncode == 1, failed.stderr
        assert failed.stderr.startswith("Error: ") and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1


class Reader(threading.Thread):
    """Polls the bucket like a worker with a zero pointer TTL, recording what it resolves."""

    def __init__(
        self, spec: str, env: dict[str, str], dest: S3Destination, known: dict[str, bytes]
    ) -> None:
        super().__init__(daemon=True)
        self.spec, self.env, self.dest, self.known = spec, env, dest, known
        self.seen: list = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                bucket = open_bucket(self.spec, environ=self.env)
                self.seen.append(observe(bucket, lambda: self.dest.sizes("objects/"), self.known))
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                self.errors.append(repr(exc))
            time.sleep(0.1)


def settled_objects(dest: S3Destination) -> set[str]:
    """The bucket's objects once a PUT that moto was still receiving when its sender was killed
    has landed: two listings 0.3 s apart that agree."""
    seen = set(dest.sizes("objects/"))
    while True:
        time.sleep(0.3)
        now = set(dest.sizes("objects/"))
        if now == seen:
            return now
        seen = now


def wait_for(s3, bucket: str, key: str, proc: subprocess.Popen) -> bool:
    """Poll until ``key`` exists; False if the process ended first."""
    while proc.poll() is None:
        try:
            s3.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError:
            time.sleep(0.005)
    return False


def test_a_killed_publish_resumes_and_a_polling_reader_never_sees_a_mix(moto_s3, tmp_path):
    """SIGKILL mid-upload at random points (seeds 1, 2) and once the manifest is up (seed 3)."""
    data = tmp_path / "data"
    out = data / "build"
    ids = build_series(tmp_path, out, N_IOCS, [None, 11, 12, 13])
    known = local_answers(out, ids)
    name = moto_s3.new_bucket()
    spec = f"s3://{name}/feeds"
    s3 = moto_s3.client()
    dest = S3Destination(name, "feeds/", endpoint_url=moto_s3.endpoint)
    socdef("publish", "--to", spec, "--build-id", ids[0], data_dir=data, env=moto_s3.env)
    reader = Reader(spec, moto_s3.env, dest, known)
    reader.start()
    killed_mid_upload = 0
    try:
        for seed, build_id in zip((1, 2, 3), ids[1:], strict=True):
            todo = sorted(object_keys(manifest_of(out, build_id)) - set(dest.sizes("objects/")))
            rng = random.Random(seed)
            mark = (
                layout.manifest_key(build_id)
                if seed == 3
                else todo[rng.randrange(len(todo) // 10, len(todo) * 9 // 10)]
            )
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "generator",
                    "publish",
                    "--to",
                    spec,
                    "--build-id",
                    build_id,
                    "--data-dir",
                    str(data),
                ],
                cwd=ROOT,
                env={**os.environ, **moto_s3.env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_for(s3, name, f"feeds/{mark}", proc)
            time.sleep(rng.uniform(0, 0.05))
            killed_mid_upload += seed != 3 and proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            left = len(object_keys(manifest_of(out, build_id)) - settled_objects(dest))
            assert seed == 3 or left < len(todo)  # some arrived before the kill
            resumed = published(
                socdef(
                    "publish", "--to", spec, "--build-id", build_id, data_dir=data, env=moto_s3.env
                ).stdout
            )
            assert resumed["uploaded"] == left  # what arrived before the kill is not re-sent
            time.sleep(0.5)
        # the second observation from now began after the last publish ended (one observation
        # against moto can take longer than the pause above when the machine is busy)
        after = len(reader.seen) + 2
        deadline = time.monotonic() + 60
        while len(reader.seen) < after and not reader.errors and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reader.stop.set()
        reader.join(timeout=60)
    assert killed_mid_upload >= 1
    assert not reader.errors, reader.errors[:3]
    assert len(reader.seen) >= 5
    assert all(o.missing == 0 and o.matches for o in reader.seen), [
        o for o in reader.seen if o.missing or not o.matches
    ][:3]
    order = [o.build_id for o in reader.seen]
    assert set(order) <= set(ids) and order[-1] == ids[-1]
    ranks = [ids.index(b) for b in order]
    assert ranks == sorted(ranks)  # never back to an older build


def test_build_then_publish_twice_uploads_nothing_the_second_time(moto_s3, tmp_path):
    store = make_store(tmp_path / "store", N_IOCS)
    result = build(store, tmp_path / "build", now=NOW)
    dest = S3Destination(moto_s3.new_bucket(), "", endpoint_url=moto_s3.endpoint)
    from generator.publish.upload import publish

    first = publish(tmp_path / "build", dest)
    second = publish(tmp_path / "build", dest)
    assert first.build_id == second.build_id == result.build_id
    assert second.uploaded == 0 and second.skipped == first.uploaded


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "http://x/y"])
def test_bad_s3_urls_are_refused(url):
    from generator.publish.folder import PublishError
    from generator.publish.s3 import parse_s3_url

    with pytest.raises(PublishError):
        parse_s3_url(url)
