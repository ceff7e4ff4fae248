"""The change feed survives a lost build folder: the state the next build diffs against is
published beside each build and restored from the bucket (docs/changes.md), so a cursor a
client holds still works after a build on a new machine. Over S3 (moto) and a folder bucket,
through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from tests.test_changes import head_of_since, replay, tier_list
from tests.test_store_bucket import T1, T2, bucket, cycle, feeds  # noqa: F401 - fixtures
from worker.buckets.storage import Build, LocalBucket
from worker.contract import changes as contract
from worker.contract import layout
from worker.contract.tiers import TIERS
from worker.endpoints import changes


def served(root: Path, build_id: str) -> Build:
    manifest = json.loads((root / layout.manifest_key(build_id)).read_bytes())
    return Build(LocalBucket(root), manifest)


def latest(data: Path) -> str:
    return (data / "build" / "LATEST").read_text().strip()


def test_a_cursor_survives_a_build_on_a_new_machine(bucket, feeds, tmp_path):  # noqa: F811
    old, new = tmp_path / "old", tmp_path / "new"
    cycle(bucket, old, feeds["a"], T1)
    a_id = latest(old)
    build_a = served(old / "build", a_id)
    before = {t: tier_list(build_a, t) for t in TIERS}
    cursors = {
        t: contract.encode(changes.page(build_a, TIERS[t], "now", 1, "json").next) for t in TIERS
    }
    state_key = contract.published_state_key(a_id)
    assert bucket.dest.get(state_key) is not None  # published beside the build
    shutil.rmtree(old)  # a fresh runner: no data dir, no build folder

    bucket.run(new, "ingest", "--offline", str(feeds["b"]), "--now", str(T2))
    built = bucket.run(new, "build")
    assert f"restored the change feed of build {a_id}" in built.stderr
    bucket.run(new, "publish")
    b_id = latest(new)
    assert b_id != a_id
    # what readers see: the bucket's build (a folder bucket is read as it is)
    target = bucket.env["SOCDEF_BUCKET"]
    root = new / "build" if target.startswith("s3://") else Path(target)
    assert bucket.dest.get(contract.published_state_key(b_id)) is not None
    build_b = served(root, b_id)
    assert [e.build_id for e in changes.read_index(build_b).entries][-2:] == [a_id, b_id]
    total = 0
    for tier in TIERS:
        found, _ = head_of_since(build_b, tier, cursors[tier])
        total += len(found)
        assert replay(before[tier], found) == tier_list(build_b, tier)
    assert total > 0  # B changed the list: the cursor from A carried real changes
