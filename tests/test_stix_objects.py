"""The STIX renderer hands over object boundaries (type, id, bytes of each object), and the
TAXII build takes them as they are: it never parses rendered bytes."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pyarrow as pa
import pytest

from exports import stix21
from exports.registry import render_variants
from generator.build.taxii import META_OBJECTS, TaxiiError, TaxiiSink
from tests.seed import seed_records


def test_objects_are_the_record_objects_one_by_one():
    records = seed_records()
    assert any(len(r.mitre_techniques) > 1 for r in records)  # relationships are covered
    for r in records:
        rendered = stix21.render_objects(r)
        objects = rendered.objects()
        assert [json.loads(o.data[:-1]) for o in objects] == stix21.record_objects(r)
        assert [(o.type, o.id) for o in objects] == [
            (d["type"], d["id"]) for d in stix21.record_objects(r)
        ]
        assert all(o.data.endswith(b",") for o in objects)
        assert b"".join(o.data for o in objects) == rendered.line == stix21.render_line(r)
        assert rendered.ends[-1] == len(rendered.line)


def test_render_variants_hands_the_objects_with_the_lines():
    records = seed_records()
    rendered = render_variants(records, ["csv", "stix"])
    assert rendered.stix_objects is not None
    assert [o.line for o in rendered.stix_objects] == rendered["stix"]
    assert render_variants(records, ["csv"]).stix_objects is None


def spooled(sink: TaxiiSink) -> tuple[bytes, list[int], bytes, bytes]:
    sink.spool.seek(0)
    return sink.spool.read(), list(sink.ends), bytes(sink.stix_type), bytes(sink.uuids)


def test_sink_takes_the_boundaries_it_is_handed():
    records = seed_records()
    by_day, by_objects = TaxiiSink(), TaxiiSink()
    by_day.add_day("d", records)
    by_objects.add_rendered("d", records, render_variants(records, ["stix"]))
    data, ends, types, uuids = spooled(by_objects)
    assert spooled(by_day) == (data, ends, types, uuids)
    # first what every collection holds (the identity, the TLP markings), then the records'
    shared = [
        json.loads(data[a:b][:-1])
        for a, b in zip(ends, ends[1 : len(META_OBJECTS) + 1], strict=False)
    ]
    assert [o["id"] for o in shared] == [o["id"] for o in META_OBJECTS]
    ends, uuids = ends[len(META_OBJECTS) :], uuids[16 * len(META_OBJECTS) :]
    objects = [o for r in records for o in stix21.render_objects(r).objects()]
    assert [data[a:b] for a, b in zip(ends, ends[1:], strict=False)] == [o.data for o in objects]
    assert uuids == b"".join(uuid.UUID(o.id.split("--")[1]).bytes for o in objects)
    # the sink reads the handed-over ends, not the bytes: shifted ends move the objects
    r = next(r for r in records if r.mitre_techniques)
    honest = stix21.render_objects(r)
    shifted = honest._replace(ends=(honest.ends[0] + 1, *honest.ends[1:]))
    sink = TaxiiSink()
    start = sink.size
    sink.add_objects([r], [shifted])
    assert list(sink.ends)[len(META_OBJECTS) + 1] == start + honest.ends[0] + 1


def test_sink_refuses_objects_that_do_not_fit():
    r = next(r for r in seed_records() if r.mitre_techniques)
    rendered = stix21.render_objects(r)
    with pytest.raises(TaxiiError, match="unexpected STIX type"):
        TaxiiSink().add_objects([r], [rendered._replace(types=("note", *rendered.types[1:]))])
    with pytest.raises(TaxiiError, match="ends do not match"):
        TaxiiSink().add_objects([r], [rendered._replace(ends=(*rendered.ends[:-1], 1))])
    with pytest.raises(TaxiiError, match="techniques"):
        fewer = replace(r, mitre_techniques=r.mitre_techniques[1:])
        TaxiiSink().add_objects([fewer], [rendered])


def test_object_ids_are_kept_as_bytes_and_written_as_their_text():
    from generator.build.taxii import _uuid_bytes, _uuid_text

    ids = [str(uuid.uuid4()) for _ in range(300)] + [
        str(uuid.UUID(int=0)),
        str(uuid.UUID(int=-1 % 2**128)),
    ]
    raw = _uuid_bytes("".join(ids))
    assert raw == b"".join(uuid.UUID(i).bytes for i in ids)
    column = pa.Array.from_buffers(pa.binary(16), len(ids), [None, pa.py_buffer(raw)])
    assert _uuid_text(column).to_pylist() == [i.encode() for i in ids]
    assert _uuid_text(column.slice(5, 3)).to_pylist() == [i.encode() for i in ids[5:8]]
    for wrong in (ids[0][:-1], ids[0].upper(), ids[0].replace("-", "x", 1)):
        with pytest.raises(TaxiiError):
            _uuid_bytes(wrong)
