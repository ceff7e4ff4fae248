"""Signed builds: minisign signatures of each published manifest and SHA256SUMS file, checked by
Debian's ``minisign -V`` and ``sha256sum -c``, by ``socdef verify`` over a folder, S3 and HTTP,
and the public key served by the worker. docs/publish.md describes them."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from generator.publish.minisign import parse_public
from tests.conftest import ROOT, announced, socdef, stop_process
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from tests.support import published
from worker.contract import coded, layout

MINISIGN = shutil.which("minisign")


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> Path:
    """A data folder with a signing key, built, then published signed to its bucket."""
    data = tmp_path_factory.mktemp("signed")
    made = socdef("keys", "signing-init", data_dir=data).stdout
    assert "minisign -P RW" in made
    published(data, iocs=120, days=3)
    return data


def current(data: Path) -> str:
    return json.loads((data / "bucket" / layout.POINTER_KEY).read_text())["build_id"]


def minisign_verify(data_file: Path, signature: Path, public: Path) -> subprocess.CompletedProcess:
    assert MINISIGN, "minisign is not installed: `make system-deps` installs it with apt"
    return subprocess.run(
        [MINISIGN, "-V", "-m", str(data_file), "-x", str(signature), "-p", str(public)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_signing_key_is_owner_only_and_never_replaced_by_accident(signed):
    secret = signed / "signing.key"
    assert secret.stat().st_mode & 0o777 == 0o600
    again = socdef("keys", "signing-init", data_dir=signed, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert not (signed / "bucket" / "signing.key").exists()  # the secret is never published
    assert all("signing.key" not in p.name for p in (signed / "bucket").rglob("*"))


def test_minisign_verifies_the_manifest_and_every_sha256sums(signed):
    bucket, build_id = signed / "bucket", current(signed)
    manifest = bucket / layout.manifest_key(build_id)
    checked = minisign_verify(manifest, Path(f"{manifest}.minisig"), signed / "signing.pub")
    assert checked.returncode == 0, checked.stderr
    assert f"socdef build {build_id} file {layout.manifest_key(build_id)}" in checked.stdout
    sums = sorted((bucket / "builds" / build_id).rglob(layout.SUMS_NAME))
    assert {str(p.relative_to(bucket)) for p in sums} == {
        layout.sums_key(build_id, prefix)
        for prefix in ("feeds/misp/", "iocs/default/free/", "iocs/default/pro/")
        + ("iocs/default/enterprise/",)
    }
    for path in sums:
        result = minisign_verify(path, Path(f"{path}.minisig"), signed / "signing.pub")
        assert result.returncode == 0, (path, result.stderr)
    changed = manifest.read_bytes().replace(b'"iocs":', b'"iocs": ', 1)
    (tampered := signed / "tampered.json").write_bytes(changed)
    refused = minisign_verify(tampered, Path(f"{manifest}.minisig"), signed / "signing.pub")
    assert refused.returncode != 0


def test_sha256sum_checks_the_files_of_a_download_set(signed, tmp_path):
    """The MISP feed's files, downloaded under their names (as text: a client decodes the
    files stored compressed), pass ``sha256sum -c``."""
    bucket, build_id = signed / "bucket", current(signed)
    manifest = json.loads((bucket / layout.manifest_key(build_id)).read_text())
    for key, (sha, _) in manifest["objects"].items():
        if key.startswith("feeds/misp/"):
            stored = (bucket / layout.object_key(sha)).read_bytes()
            text = coded.decompress(stored) if key in manifest.get("coded", {}) else stored
            (tmp_path / key.removeprefix("feeds/misp/")).write_bytes(text)
    shutil.copy(bucket / layout.sums_key(build_id, "feeds/misp/"), tmp_path / "SHA256SUMS")
    checked = subprocess.run(
        ["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0 and checked.stdout.count(": OK") >= 3, checked.stdout
    first = sorted(tmp_path.glob("*.json"))[0]
    first.write_bytes(first.read_bytes() + b" ")
    assert subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path).returncode != 0


def test_signing_leaves_the_build_tree_a_function_of_the_store(signed):
    before = tree_digest(signed / "build")
    socdef("publish", data_dir=signed)  # signs again: the build folder is only read
    assert tree_digest(signed / "build") == before
    manifest = signed / "build" / layout.manifest_key(current(signed))
    assert not Path(f"{manifest}.minisig").exists()  # the signature lives in the bucket only


def test_verify_accepts_the_published_build_and_names_what_was_tampered(signed, tmp_path):
    copy = tmp_path / "bucket"
    shutil.copytree(signed / "bucket", copy)
    ok = socdef("verify", str(copy), data_dir=signed)
    assert ok.stdout.startswith(f"verified {current(signed)}: signed by ")
    assert "4 SHA256SUMS files match" in ok.stdout
    build_id = current(signed)
    objects = json.loads((copy / layout.manifest_key(build_id)).read_text())["objects"]
    victim = copy / layout.object_key(objects["feeds/misp/manifest.json"][0])
    victim.write_bytes(victim.read_bytes()[:-1] + b"X")
    bad = socdef("verify", str(copy), data_dir=signed, check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"{victim.relative_to(copy)} does not match its hash" in bad.stderr
    sums = copy / layout.sums_key(build_id, "iocs/default/free/")
    sums.write_text(sums.read_text().replace("0", "1", 1))
    assert (
        "signature does not match"
        in socdef("verify", str(copy), data_dir=signed, check=False).stderr
    )


def test_verify_refuses_another_key_and_an_unsigned_build(signed, tmp_path):
    other = tmp_path / "other"
    socdef("keys", "signing-init", data_dir=other)
    wrong = socdef(
        "verify", str(signed / "bucket"), "--public-key", str(other / "signing.pub"),
        data_dir=signed, check=False,
    )  # fmt: skip
    assert wrong.returncode == 1 and "signed by key" in wrong.stderr
    unsigned = published(tmp_path / "unsigned", iocs=50, days=2)
    refused = socdef(
        "verify", str(unsigned / "bucket"), "--public-key", str(signed / "signing.pub"),
        data_dir=unsigned, check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "is not signed" in refused.stderr


def test_verify_downloads_from_s3_and_from_an_http_origin(signed, moto_s3, tmp_path):
    bucket = moto_s3.new_bucket()
    socdef("publish", "--to", f"s3://{bucket}/feeds", data_dir=signed, env=moto_s3.env)
    over_s3 = socdef("verify", f"s3://{bucket}/feeds", data_dir=signed, env=moto_s3.env)
    assert over_s3.stdout.startswith(f"verified {current(signed)}")
    log = tmp_path / "http.log"
    with open(log, "w") as out:
        origin = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
            cwd=signed / "bucket", stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        port = announced(log, origin, r"port ([0-9]+)").group(1)
        over_http = socdef("verify", f"http://127.0.0.1:{port}", data_dir=signed)
        assert over_http.stdout.startswith(f"verified {current(signed)}")
    finally:
        stop_process(origin)


def test_the_worker_serves_the_public_key(signed, serve_process, tmp_path):
    server = serve_process(signed)
    answer = httpx.get(server.url + "/api/v1/signing-key", timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    pinned = parse_public((signed / "signing.pub").read_text())
    assert data["key_id"] == pinned.key_id_hex and data["public_key"] == pinned.encoded()
    assert data["build_id"] == current(signed)
    assert data["signature"] == layout.signature_key(current(signed))
    assert (signed / "bucket" / data["signature"]).is_file()
    text = httpx.get(server.url + "/signing.pub", timeout=30)
    assert text.status_code == 200 and text.text == (signed / "signing.pub").read_text()
    page = httpx.get(server.url + "/docs/formats/", timeout=30).text  # the site says where
    assert "<code>/signing.pub</code>" in page and "socdef verify" in page
    unsigned = serve_process(published(tmp_path / "plain", iocs=30, days=1))
    missing = httpx.get(unsigned.url + "/api/v1/signing-key", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_spec_documents_the_signing_key_answer():
    spec = json.loads((ROOT / "spec" / "openapi.json").read_text())
    operation = spec["paths"]["/api/v1/signing-key"]["get"]
    assert operation["security"] == [] and "404" in operation["responses"]
    fields = spec["components"]["schemas"]["SigningKeyResponse"]["properties"]["data"]
    assert {"key_id", "public_key", "signature"} <= set(fields["required"])
