"""Standards exports built our way vs the reference library building the same document.

    python bench/formats.py                  # every part, N = 100,000 IOCs
    python bench/formats.py -n 20000 stix    # one part, smaller

STIX: a bundle of N records (identity, TLP markings, indicators, vulnerabilities,
attack-patterns and their relationships). Ours renders each record's line with
``exports.stix21.render_line`` and wraps the lines with the edge's envelope
(``worker.endpoints.stix.bundle``); the baseline builds the same objects with the ``stix2`` library
(``Indicator(...)`` etc., each validating itself and parsing its pattern) and serialises
``Bundle(...)``. Both start from the same records and the same field values. The script checks
that the two bundles hold the same objects and that stix2-validator judges a sample of each
identically, then prints objects/s for both and the ratio (goal: ours >= 50x).

MISP: an event of N attributes. Ours renders each record's attribute line
(``exports.misp.render_line``) and wraps them (``worker.endpoints.misp.event_document``); the baseline
is pymisp's ``MISPEvent.add_attribute`` for each attribute, then ``to_json()`` (goal >= 10x).

Both sides are timed alike: one untimed warm-up run, then ``--rounds`` timed runs, median of
this process's CPU time.
The baseline's inputs (the attribute and STIX object dicts our exporter would make) are built
once before its timing, so its time is the library's work alone, not our dict building.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exports.model import IOCRecord  # noqa: E402

NOW = 1_795_000_000
SAMPLE = 300  # records whose bundles go through the validator (it takes ~3 ms per object)


def make_records(n: int) -> list[IOCRecord]:
    from generator.store.records import aggregate
    from generator.store.synthetic import synthetic_tables

    records = aggregate(*synthetic_tables(n * 11 // 10 + 100, now=NOW, days=365))
    assert len(records) >= n, "the synthetic store folded into too few records"
    return records[:n]


def stix_ours(records: list[IOCRecord]) -> bytes:
    from exports.stix21 import render_line
    from worker.endpoints.stix import StixParams, bundle

    data = b"".join([render_line(r) for r in records])
    p = StixParams("all", NOW - 365 * 86_400, NOW, len(records), "bundle", True, True, None)
    return bundle(p, "bench", data)  # "bench" stands in for the build id


def stix_dicts(records: list[IOCRecord]) -> list[dict]:
    """The baseline's input: each record's STIX objects as plain dicts (untimed)."""
    from exports.stix21 import record_objects

    return [d for r in records for d in record_objects(r)]


def stix_library(dicts: list[dict], bundle_id: str) -> str:
    import stix2

    from worker.contract.stix_common import IDENTITY, TLP_IDS, tlp_marking

    classes = {
        "indicator": stix2.Indicator,
        "vulnerability": stix2.Vulnerability,
        "attack-pattern": stix2.AttackPattern,
        "relationship": stix2.Relationship,
        "identity": stix2.Identity,
        "marking-definition": stix2.MarkingDefinition,
    }

    def build(d: dict) -> object:
        return classes[d["type"]](**{k: v for k, v in d.items() if k != "type"})

    objects = [build(d) for d in dicts]
    used = {ref for o in objects for ref in o.get("object_marking_refs", ())}
    head = [build(IDENTITY)] + [build(tlp_marking(lvl)) for lvl in TLP_IDS if TLP_IDS[lvl] in used]
    return stix2.Bundle(objects=head + objects, id=bundle_id).serialize()


def _normalised(doc: dict) -> list:
    """Objects with every timestamp as epoch milliseconds (stix2 trims ``.000`` on some)."""
    from datetime import datetime

    def fix(value: object) -> object:
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str) and len(value) >= 20 and value.endswith("Z") and value[4] == "-":
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return value
        return value

    return fix(doc["objects"])


def timed(fn: Callable[[], object], rounds: int) -> tuple[float, object]:
    """Median CPU seconds (this process, user + system) of ``rounds`` runs after one untimed
    warm-up run, and the last output. Both sides run in this one process, so CPU time keeps
    other jobs' load off whichever side was being timed."""
    fn()  # warm-up: imports, caches, the allocator's arenas
    times, out = [], None
    for _ in range(rounds):
        gc.collect()
        started = time.process_time()
        out = fn()
        times.append(time.process_time() - started)
    return statistics.median(times), out


def stix_part(n: int, rounds: int) -> None:
    from tests.stix_check import problems

    records = make_records(n)
    ours_s, ours = timed(lambda: stix_ours(records), rounds)
    doc = json.loads(ours)
    count = len(doc["objects"])
    dicts = stix_dicts(records)
    lib_s, lib = timed(lambda: stix_library(dicts, doc["id"]), rounds)
    same = _normalised(json.loads(lib)) == _normalised(doc)
    sample = records[:SAMPLE]
    verdicts = (
        problems(json.loads(stix_ours(sample))),
        problems(json.loads(stix_library(stix_dicts(sample), doc["id"]))),
    )
    print(
        f"STIX bundle, {n:,} IOCs -> {count:,} objects ({len(ours) / 1e6:.1f} MB ours, "
        f"{len(lib) / 1e6:.1f} MB stix2)"
    )
    print(
        f"  ours (render lines + envelope), median of {rounds}: {ours_s:.2f} s, "
        f"{count / ours_s:,.0f} objects/s"
    )
    print(
        f"  stix2 {__import__('stix2').__version__} objects + Bundle.serialize(), median of "
        f"{rounds}: {lib_s:.2f} s, "
        f"{count / lib_s:,.0f} objects/s"
    )
    ratio = lib_s / ours_s
    verdict = "met" if ratio >= 50 else "NOT met"
    print(f"  ratio: ours is {ratio:.0f}x faster (goal >= 50x: {verdict})")
    print(
        f"  same objects: {same}; validator on {SAMPLE} records: ours {len(verdicts[0])} "
        f"problems, stix2 {len(verdicts[1])} problems, identical: {verdicts[0] == verdicts[1]}"
    )


def misp_ours(records: list[IOCRecord]) -> bytes:
    from exports.misp import render_line
    from worker.endpoints.exports import ExportParams
    from worker.endpoints.misp import event_document

    data = b"".join([render_line(r) for r in records])
    p = ExportParams("all.all.all", NOW - 365 * 86_400, NOW, len(records), "json")
    return event_document("bench", NOW, p, "socdef", data)  # "bench" stands in for the build id


def misp_attributes(records: list[IOCRecord]) -> list[dict]:
    """The baseline's input: each record's attribute fields as a dict (untimed)."""
    from exports.misp import attribute

    return [attribute(r) for r in records]


def misp_library(attributes: list[dict], head: dict) -> str:
    """The same event built by pymisp: the envelope's fields, then one add_attribute each."""
    from pymisp import MISPEvent

    event = MISPEvent()
    event.from_dict(**{k: v for k, v in head.items() if k != "Attribute"})
    for fields in attributes:
        event.add_attribute(**fields)
    return event.to_json()


def _misp_view(event: dict) -> list:
    """What both sides must agree on, per attribute (pymisp rewrites timestamps' spelling)."""
    from datetime import datetime

    def when(value: str) -> float:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

    return [
        (
            a["uuid"],
            a["type"],
            a["category"],
            a["value"],
            a["to_ids"],
            a["comment"],
            int(a["timestamp"]),
            when(a["first_seen"]),
            when(a["last_seen"]),
            [t["name"] for t in a["Tag"]],
        )
        for a in event["Attribute"]
    ]


def misp_part(n: int, rounds: int) -> None:
    from tests.misp_check import check_event

    records = make_records(n)
    ours_s, ours = timed(lambda: misp_ours(records), rounds)
    head = json.loads(ours)["Event"]
    attributes = misp_attributes(records)
    lib_s, lib = timed(lambda: misp_library(attributes, head), rounds)
    same = _misp_view(json.loads(lib)) == _misp_view(head)
    verdicts = []
    for doc in (misp_ours(records[:SAMPLE]), misp_library(attributes[:SAMPLE], head).encode()):
        try:
            check_event(doc if doc.startswith(b'{"Event"') else b'{"Event":' + doc + b"}")
            verdicts.append("valid")
        except AssertionError as exc:
            verdicts.append(f"invalid ({str(exc)[:80]})")
    print(
        f"MISP event, {n:,} attributes ({len(ours) / 1e6:.1f} MB ours, "
        f"{len(lib) / 1e6:.1f} MB pymisp)"
    )
    print(
        f"  ours (render lines + envelope), median of {rounds}: {ours_s:.2f} s, "
        f"{n / ours_s:,.0f} attributes/s"
    )
    print(
        f"  pymisp {__import__('pymisp').__version__} add_attribute + to_json(), median of "
        f"{rounds}: {lib_s:.2f} s, "
        f"{n / lib_s:,.0f} attributes/s"
    )
    ratio = lib_s / ours_s
    print(
        f"  ratio: ours is {ratio:.0f}x faster (goal >= 10x: {'met' if ratio >= 10 else 'NOT met'})"
    )
    print(
        f"  same attributes: {same}; MISP checks on {SAMPLE} attributes: ours {verdicts[0]}, "
        f"pymisp {verdicts[1]}"
    )


PARTS: dict[str, Callable[[int, int], None]] = {"stix": stix_part, "misp": misp_part}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="timed rounds of each side, after one warm-up (median)",
    )
    args = parser.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    for part in args.parts or PARTS:
        PARTS[part](args.n, args.rounds)


if __name__ == "__main__":
    main()
