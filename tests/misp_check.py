"""The MISP gate: pymisp (event load, strict attributes, its own feed tooling) and its JSON schema.

* ``schema-lax.json`` shipped with pymisp, run with ``jsonschema``: ``MISPEvent.load`` no longer
  validates, and the strict ``schema.json`` predates ``first_seen``/``last_seen`` (pymisp's own
  ``to_feed()`` output fails it).
* ``MISPEvent().load`` must accept the document; every attribute must pass
  ``MISPAttribute(strict=True).from_dict``, which refuses unknown types and bad category/type
  pairs instead of repairing them.
* A feed must be what pymisp's feed tooling derives from its event files: ``manifest.json`` equal
  to ``MISPEvent.manifest`` of each event, ``hashes.csv`` equal to ``attributes_hashes("md5")``,
  and ``pymisp.tools.feed.feed_meta_generator`` run over the event files must agree.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from importlib.resources import files
from pathlib import Path

import jsonschema
from pymisp import MISPAttribute, MISPEvent
from pymisp.tools.feed import feed_meta_generator

from exports.attack import technique_names

_DATA = files("pymisp") / "data"
LAX = jsonschema.Draft4Validator(json.loads((_DATA / "schema-lax.json").read_text()))
DESCRIBE = json.loads((_DATA / "describeTypes.json").read_text())["result"]
GALAXY = re.compile(r'^misp-galaxy:mitre-attack-pattern="(.+) - (T\d{4}(?:\.\d{3})?)"$')
SCHEMA_SLICE = 400
TLP_TAGS = {"tlp:clear", "tlp:green", "tlp:amber", "tlp:amber+strict", "tlp:red"}


def _check_attribute(a: dict) -> None:
    MISPAttribute(strict=True).from_dict(**a)
    assert a["type"] in DESCRIBE["category_type_mappings"][a["category"]], a
    assert isinstance(a["to_ids"], bool) and isinstance(a["value"], str)
    uuid.UUID(a["uuid"])
    names = [t["name"] for t in a.get("Tag", [])]
    assert len([n for n in names if n in TLP_TAGS]) == 1, names
    for name in names:
        found = GALAXY.match(name)
        if name.startswith("misp-galaxy:"):
            assert found and technique_names()[found[2]] == found[1], name


def _check_schema(doc: dict) -> None:
    """The schema over the event, in slices of attributes: its ``uniqueItems`` is quadratic, so
    uniqueness across slices is checked on the attribute uuids instead."""
    attributes = doc["Event"].get("Attribute", [])
    for start in range(0, max(1, len(attributes)), SCHEMA_SLICE):
        part = {"Event": {**doc["Event"], "Attribute": attributes[start : start + SCHEMA_SLICE]}}
        errors = [e.message for e in LAX.iter_errors(part)]
        assert not errors, errors[:5]
    assert len({a["uuid"] for a in attributes}) == len(attributes)


def check_event(raw: bytes) -> dict:
    """Every check of one ``{"Event": ...}`` document; returns it parsed."""
    doc = json.loads(raw)
    _check_schema(doc)
    event = MISPEvent()
    event.load(raw.decode())
    body = doc["Event"]
    uuid.UUID(body["uuid"])
    assert "\n" not in body["info"] and len(body["info"]) <= 256
    assert len(event.attributes) == len(body.get("Attribute", []))
    for a in body.get("Attribute", []):
        _check_attribute(a)
    return doc


def _tag_names(entry: dict) -> dict:
    return {**entry, "Tag": [t["name"] for t in entry["Tag"]]}


def check_feed(feed: dict[str, bytes], max_attributes: int) -> dict[str, dict]:
    """Every check of a feed given as {file name: bytes}; returns the parsed events by uuid."""
    manifest = json.loads(feed["manifest.json"])
    names = {n.removesuffix(".json") for n in feed if n not in ("manifest.json", "hashes.csv")}
    assert set(manifest) == names
    events, hashes = {}, []
    for name in names:
        events[name] = check_event(feed[f"{name}.json"])
        assert events[name]["Event"]["uuid"] == name
        assert 0 < len(events[name]["Event"]["Attribute"]) <= max_attributes
        event = MISPEvent()
        event.load(feed[f"{name}.json"].decode())
        assert _tag_names(event.manifest[name]) == _tag_names(manifest[name])
        hashes += [f"{h},{name}" for h in event.attributes_hashes("md5")]
    assert sorted(feed["hashes.csv"].decode().splitlines()) == sorted(hashes)
    _check_with_feed_tooling(feed, manifest)
    return events


def _check_with_feed_tooling(feed: dict[str, bytes], manifest: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, data in feed.items():
            if name not in ("manifest.json", "hashes.csv"):
                (folder / name).write_bytes(data)
        feed_meta_generator(folder)
        derived = json.loads((folder / "manifest.json").read_text())
        assert {k: _tag_names(v) for k, v in derived.items()} == {
            k: _tag_names(v) for k, v in manifest.items()
        }
        assert sorted((folder / "hashes.csv").read_text().splitlines()) == sorted(
            feed["hashes.csv"].decode().splitlines()
        )
