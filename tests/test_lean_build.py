"""Lean builds: framed objects read back by range as their text, TAXII bytes stored once."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from generator.build.sinks import ObjectWriter
from generator.build.tree import build
from generator.publish.folder import LocalDestination
from generator.publish.headers import content_type
from generator.publish.upload import publish
from generator.store.generations import Store
from generator.store.synthetic import synthetic_store
from tests.buildseries import changed
from worker.buckets.storage import BLOCKS, Build, BuildSource, LocalBucket
from worker.contract import framing, layout
from worker.contract import taxii_common as tc

NOW = 1_795_000_000


def _text(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(
        f'{{"value":"{rng.getrandbits(64):x}.example","n":{i}}},\n'.encode() for i in range(n)
    )


@pytest.mark.parametrize("size", [0, 1, framing.BLOCK - 1, framing.BLOCK, 3 * framing.BLOCK + 17])
def test_a_framed_text_comes_back_whole(size):
    text = (_text(size // 20 + 1, size) * 2)[:size]
    stored = framing.frame(text)
    assert framing.unframe(stored) == text
    if size > 1000:
        assert len(stored) < len(text) / 2


def test_written_in_pieces_or_whole_the_stored_bytes_are_the_same(tmp_path):
    text = _text(9000, 1)
    writer = ObjectWriter(tmp_path)
    writer.put("iocs/day/2026-11-28/json.dat", text)
    with writer.stream("iocs/day/2026-11-27/json.dat") as stream:
        for at in range(0, len(text), 7777):
            stream.write(memoryview(text)[at : at + 7777])
            assert stream.size == min(len(text), at + 7777)  # offsets into the text
    whole, pieces = (writer.objects[f"iocs/day/2026-11-{d}/json.dat"] for d in (28, 27))
    assert whole == pieces
    assert writer.framed == {f"iocs/day/2026-11-{d}/json.dat": len(text) for d in (27, 28)}
    assert whole[1] < len(text) / 2  # the manifest's size is the stored one


def test_ranges_of_a_framed_object_are_ranges_of_its_text(tmp_path):
    text = _text(12000, 2)
    writer = ObjectWriter(tmp_path)
    writer.put("taxii/c/all/obj/0.dat", text)
    writer.put("iocs/day/2026-11-28/ts.bin", b"\1" * 80)  # never framed
    manifest = {
        "build_id": "b",
        "generated_at": NOW,
        "objects": writer.objects,
        "framed": writer.framed,
    }
    built = Build(LocalBucket(tmp_path), manifest)
    assert built.ref("taxii/c/all/obj/0.dat").size == len(text)
    assert built.read("taxii/c/all/obj/0.dat") == text
    assert built.read("iocs/day/2026-11-28/ts.bin") == b"\1" * 80
    rng = random.Random(3)
    cuts = [0, 1, framing.BLOCK - 1, framing.BLOCK, framing.BLOCK + 1, len(text) - 1, len(text)]
    cuts += [rng.randrange(len(text)) for _ in range(200)]
    for _ in range(400):
        start, end = sorted(rng.sample(cuts, 2))
        if rng.random() < 0.2:  # a cold block cache, else a warm one
            BLOCKS.clear()
        assert built.read_range("taxii/c/all/obj/0.dat", start, end) == text[start:end]
    assert built.read_range("taxii/c/all/obj/0.dat", 5, 5) == b""
    for key, data in (("taxii/c/all/obj/0.dat", text), ("iocs/day/2026-11-28/ts.bin", b"\1" * 80)):
        spans = sorted(tuple(sorted(rng.sample(range(len(data) + 1), 2))) for _ in range(300))
        joined = b"".join(data[a:b] for a, b in spans)
        assert built.read_ranges(key, spans) == joined  # many ranges, blocks looked up once


def test_framed_objects_are_binary_to_http():
    assert content_type("iocs/day/2026-11-28/json.dat") == "application/octet-stream"
    assert content_type("taxii/c/all/man/3.dat") == "application/octet-stream"
    assert content_type("iocs/default/free/all.all.all.csv").startswith("text/csv")


@pytest.fixture(scope="module")
def published_build(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("lean")
    store = synthetic_store(str(tmp / "store"), 3000, now=NOW, days=20)
    result = build(store, tmp / "build", now=NOW)
    publish(tmp / "build", LocalDestination(tmp / "bucket"), build_id=result.build_id)
    manifest = json.loads((tmp / "build" / layout.manifest_key(result.build_id)).read_text())
    return tmp, manifest


def test_every_partition_and_taxii_chunk_is_framed_and_nothing_else(published_build):
    _, manifest = published_build
    framed = set(manifest["framed"])
    assert framed == {k for k in manifest["objects"] if framing.is_framed(k)}
    assert any(k.endswith("/stix.dat") for k in framed)
    assert any(k.startswith("taxii/c/all/obj/") for k in framed)
    assert any(k.startswith("iocs/default/") and k.endswith(".json") for k in framed)
    # what an edge may send as stored stays as it is
    assert not any(k.startswith(("devices/", "feeds/", "site/")) for k in framed)
    assert not any(k.startswith("iocs/default/") and not k.endswith(".json") for k in framed)


def test_per_type_collections_store_no_objects_of_their_own(published_build):
    tmp, manifest = published_build
    chunks = [k for k in manifest["objects"] if k.startswith("taxii/c/") and "/obj/" in k]
    assert chunks and all(k.startswith("taxii/c/all/obj/") for k in chunks)
    built = BuildSource(LocalBucket(tmp / "bucket")).current()
    for name in tc.COLLECTIONS[1:]:
        meta = built.read_json(tc.collection_key(name, "meta.json"))
        assert meta["data"] == tc.ALL_COLLECTION


def test_the_published_build_reads_back_as_built(published_build):
    tmp, manifest = published_build
    built = BuildSource(LocalBucket(tmp / "bucket")).current()
    for key, text_size in list(manifest["framed"].items())[:40]:
        text = built.read(key)
        assert len(text) == text_size
        stored = (tmp / "build" / layout.object_key(manifest["objects"][key][0])).read_bytes()
        assert framing.unframe(stored) == text


def test_a_changed_indicator_leaves_the_other_taxii_chunks_as_they_were(tmp_path):
    store = synthetic_store(str(tmp_path / "store"), 6000, now=NOW, days=20)
    first = build(store, tmp_path / "build", now=NOW)
    sightings, count = changed(store.sightings(), 1 / store.sightings().num_rows, seed=4)
    later = Store(tmp_path / "later")
    later.commit(store.articles(), sightings, {"as_of": NOW + 3600, "sources": {}})
    second = build(later, tmp_path / "build", now=NOW + 3600)

    def chunks(build_id: str) -> set[str]:
        objects = json.loads((tmp_path / "build" / layout.manifest_key(build_id)).read_text())
        return {sha for k, (sha, _) in objects["objects"].items() if "/all/obj/" in k}

    before, after = chunks(first.build_id), chunks(second.build_id)
    assert count == 1 and len(before) >= 12, len(before)
    # the chunks the changed record's objects (its indicator, its relationships) left, and the
    # newest chunk they joined, differ; no other
    assert len(before - after) <= 4, (len(before - after), len(before))
