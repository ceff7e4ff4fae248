"""The signed publish pointer: ``current.json`` names its build, ``generated_at``, a generation
and the manifest's SHA-256, and is signed (``pointers/<sha256>.minisig``, checked by Debian's
``minisign -V``). ``socdef verify`` and the worker with ``--public-key`` refuse a pointer that
is unsigned, tampered with, or older than the last one they accepted (a bucket or CDN replaying
an older signed build), and still follow a normal publish. docs/publish.md, "The signed
pointer"."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import poll_until, socdef
from tests.support import published
from tests.test_signing import minisign_verify
from worker.contract import layout

NOW = int(time.time()) // 3600 * 3600 - 3 * 3600


def pointer_of(bucket: Path) -> tuple[bytes, bytes]:
    """(bytes, signature bytes) of the bucket's pointer."""
    raw = (bucket / layout.POINTER_KEY).read_bytes()
    key = layout.pointer_signature_key(hashlib.sha256(raw).hexdigest())
    return raw, (bucket / key).read_bytes()


def put_pointer(bucket: Path, pointer: tuple[bytes, bytes]) -> None:
    """What a bucket or CDN replaying a pointer it kept serves."""
    raw, signature = pointer
    key = bucket / layout.pointer_signature_key(hashlib.sha256(raw).hexdigest())
    key.parent.mkdir(exist_ok=True)
    key.write_bytes(signature)
    (bucket / layout.POINTER_KEY).write_bytes(raw)


def build_id_of(pointer: tuple[bytes, bytes]) -> str:
    return str(json.loads(pointer[0])["build_id"])


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, tuple[bytes, bytes], tuple[bytes, bytes]]:
    """A data folder whose bucket got a signed build A, then a signed build B one hour later;
    with the pointers of both as the bucket served them."""
    data = tmp_path_factory.mktemp("pointer")
    socdef("keys", "signing-init", data_dir=data)
    published(data, iocs=80, days=2, now=NOW)
    first = pointer_of(data / "bucket")
    socdef("build", "--now", str(NOW + 3600), data_dir=data)
    socdef("publish", data_dir=data)
    return data, first, pointer_of(data / "bucket")


def test_the_pointer_is_numbered_and_minisign_verifies_its_signature(history):
    data, first, second = history
    old, new = json.loads(first[0]), json.loads(second[0])
    assert (old["generation"], new["generation"]) == (1, 2)
    assert new["build_id"] != old["build_id"] and new["generated_at"] == NOW + 3600
    manifest = (data / "bucket" / layout.manifest_key(new["build_id"])).read_bytes()
    assert new["manifest_sha256"] == hashlib.sha256(manifest).hexdigest()
    bucket = data / "bucket"
    signature = bucket / layout.pointer_signature_key(hashlib.sha256(second[0]).hexdigest())
    checked = minisign_verify(bucket / layout.POINTER_KEY, signature, data / "signing.pub")
    assert checked.returncode == 0, checked.stderr
    assert (
        f"socdef pointer generation 2 build {new['build_id']} generated_at {NOW + 3600}"
        in checked.stdout
    )
    tampered = data / "tampered-pointer.json"
    tampered.write_bytes(second[0].replace(b'"generation": 2', b'"generation": 9'))
    assert minisign_verify(tampered, signature, data / "signing.pub").returncode != 0
    # the signatures of the current pointer and the one it replaced are kept, no others
    kept = {p.name for p in (bucket / layout.POINTER_SIGNATURES).iterdir()}
    assert kept == {Path(layout.pointer_signature_key(hashlib.sha256(p[0]).hexdigest())).name
                    for p in (first, second)}  # fmt: skip


def verify(bucket: Path, data: Path, state: Path, check: bool = True):
    return socdef("verify", str(bucket), "--state", str(state), data_dir=data, check=check)


def test_verify_follows_a_publish_and_refuses_a_replayed_older_pointer(history, tmp_path):
    data, first, second = history
    bucket, state = tmp_path / "bucket", tmp_path / "verified.json"
    shutil.copytree(data / "bucket", bucket)
    put_pointer(bucket, first)  # what the bucket served after the first publish
    assert "pointer generation 1" in verify(bucket, data, state).stdout
    put_pointer(bucket, second)  # the next publish: accepted, and remembered
    ok = verify(bucket, data, state).stdout
    assert ok.startswith(f"verified {build_id_of(second)}") and "pointer generation 2" in ok
    put_pointer(bucket, first)  # an older signed pointer and build, replayed
    replayed = verify(bucket, data, state, check=False)
    assert replayed.returncode == 1 and "Traceback" not in replayed.stderr
    assert "goes back" in replayed.stderr and "generation 1" in replayed.stderr
    assert json.loads(state.read_text())[str(bucket)]["generation"] == 2
    fresh = verify(bucket, data, tmp_path / "other-state.json")  # never saw generation 2
    assert f"verified {build_id_of(first)}" in fresh.stdout


def test_verify_refuses_a_tampered_or_unsigned_pointer(history, tmp_path):
    data, _, second = history
    bucket, state = tmp_path / "bucket", tmp_path / "verified.json"
    shutil.copytree(data / "bucket", bucket)
    raw = json.loads(second[0])
    raw["history"] = raw["history"][:1]  # any change: the bytes are signed, not the fields
    changed = json.dumps(raw, sort_keys=True).encode()
    put_pointer(bucket, (changed, second[1]))  # the old signature moved to the new bytes' name
    refused = verify(bucket, data, state, check=False)
    assert refused.returncode == 1 and "signature does not match" in refused.stderr
    (bucket / layout.POINTER_KEY).write_bytes(changed + b" ")  # no signature at all
    unsigned = verify(bucket, data, state, check=False)
    assert unsigned.returncode == 1 and "is not signed" in unsigned.stderr
    put_pointer(bucket, second)  # the publisher's own pointer, checked with another key
    other = tmp_path / "other"
    socdef("keys", "signing-init", data_dir=other)
    wrong = socdef(
        "verify", str(bucket), "--public-key", str(other / "signing.pub"), "--state",
        str(state), data_dir=data, check=False,
    )  # fmt: skip
    assert wrong.returncode == 1 and "signed by key" in wrong.stderr
    assert not state.exists()  # nothing refused is remembered


def health(url: str) -> dict:
    return httpx.get(url + "/healthz", timeout=10).json()


def test_the_worker_refuses_a_replayed_or_tampered_pointer_and_follows_a_publish(
    history, serve_process, tmp_path
):
    source, first, second = history
    data = tmp_path / "data"
    shutil.copytree(source, data, symlinks=True)
    bucket = data / "bucket"
    key = ("--public-key", str(data / "signing.pub"))
    server = serve_process(data, *key)
    assert health(server.url)["build_id"] == build_id_of(second)
    put_pointer(bucket, first)  # a replayed older pointer and build
    found = poll_until(lambda: health(server.url).get("detail"), what="the pointer refused")
    assert "was refused: it goes back" in found and "generation 1" in found
    assert health(server.url)["build_id"] == build_id_of(second)  # still serving B
    poll_until(lambda: "still serving build" in server.log(), what="the refusal logged")
    assert "was refused: it goes back" in server.log()
    tampered = second[0].replace(b'"generation": 2', b'"generation": 3')
    put_pointer(bucket, (tampered, second[1]))
    detail = poll_until(
        lambda: (health(server.url).get("detail") or "").partition("its signature")[2] or None,
        what="the tampered pointer refused",
    )
    assert "does not match" in detail
    assert health(server.url)["build_id"] == build_id_of(second)
    put_pointer(bucket, second)
    poll_until(lambda: health(server.url)["status"] == "ok", what="the valid pointer back")
    socdef("build", "--now", str(NOW + 7200), data_dir=data)
    socdef("publish", data_dir=data)  # a normal publish: generation 3
    third = json.loads((bucket / layout.POINTER_KEY).read_bytes())
    assert third["generation"] == 3
    poll_until(lambda: health(server.url)["build_id"] == third["build_id"], what="the switch")
    remembered = json.loads((data / "pointer-accepted.json").read_text())
    assert [v["generation"] for v in remembered.values()] == [3]
    put_pointer(bucket, second)  # replayed to a worker that restarts: it remembers
    restarted = serve_process(data, *key)
    refused = httpx.get(restarted.url + "/healthz", timeout=10)
    assert refused.status_code == 503 and "goes back" in refused.json()["detail"]


def test_a_signed_pointer_binds_its_manifest(history, tmp_path):
    """A bucket that keeps the signed pointer but changes the manifest it names (here: one byte
    of whitespace) is refused; the build already loaded stays, and the real one is followed."""
    from worker.buckets.minisign import parse_public
    from worker.buckets.storage import BuildSource, LocalBucket
    from worker.buckets.trust import Memory, PointerTrust

    source, first, second = history
    bucket = tmp_path / "bucket"
    shutil.copytree(source / "bucket", bucket)
    put_pointer(bucket, first)
    public = parse_public((source / "signing.pub").read_text())
    trust = PointerTrust(public, Memory(tmp_path / "accepted.json", str(bucket)))
    builds = BuildSource(LocalBucket(bucket), pointer_ttl=0, trust=trust)
    assert builds.current().build_id == build_id_of(first)
    manifest = bucket / layout.manifest_key(build_id_of(second))
    real = manifest.read_bytes()
    manifest.write_bytes(real + b"\n")
    put_pointer(bucket, second)
    assert builds.current().build_id == build_id_of(first)
    assert builds.problem is not None and "not the one the signed pointer names" in builds.problem
    assert json.loads((tmp_path / "accepted.json").read_text())[str(bucket)]["generation"] == 1
    manifest.write_bytes(real)
    assert builds.current().build_id == build_id_of(second) and builds.problem is None
