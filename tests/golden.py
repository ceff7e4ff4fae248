"""Golden files: ``tests/golden/<name>`` holds the expected bytes of one rendering.

Every record variant in ``exports.registry.VARIANT_RENDERERS`` has an entry in
``VARIANT_GOLDENS``: the golden file it is checked against and how the seed corpus
(``tests/seed.py``) is rendered into it — the variant's lines in the order the build writes
them, wrapped the way the worker answers with them. A list format of ``worker.contract.formats`` gets its
entry from its record: ``iocs.<extension>``, wrapped as its record says.

Regenerate after a deliberate change, then review the diff before committing:

    python -m tests.golden --update           # every variant's golden file
    SOCDEF_UPDATE_GOLDEN=1 pytest tests/...   # the goldens those tests assert
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from exports.registry import VARIANT_RENDERERS
from tests.seed import SEED_NOW, seed_records
from worker.contract import formats, layout
from worker.endpoints import query
from worker.endpoints.exports import ExportParams
from worker.endpoints.misp import event_document
from worker.endpoints.openioc import document as openioc_document
from worker.endpoints.stix import StixParams, bundle

GOLDEN = Path(__file__).resolve().parent / "golden"

GOLDEN_BUILD_ID = "golden"
GOLDEN_SOURCE = "socdef"
YEAR = 365 * layout.DAY_SECONDS
EXPORT_PARAMS = ExportParams(layout.ALL_VIEW, SEED_NOW - YEAR, SEED_NOW, 100, "json")
STIX_PARAMS = StixParams("all", 0, SEED_NOW, 1000, "bundle", True, True, None)


def assert_golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("SOCDEF_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"no golden file {path}: run python -m tests.golden --update"
    expected = path.read_bytes()
    assert data == expected, (
        f"{name} differs from its golden file (python -m tests.golden --update)"
    )


def variant_lines(variant: str) -> bytes:
    """The seed corpus as the build stores ``variant``: one rendering per record, newest first."""
    render = VARIANT_RENDERERS[variant]
    return b"".join(render(r) for r in seed_records())


def _json_list(variant: str) -> bytes:
    meta = {
        "total": len(seed_records()),
        "limit": EXPORT_PARAMS.limit,
        "offset": 0,
        "generated_at": query.iso(SEED_NOW),
        "feed_version": GOLDEN_BUILD_ID,
        "source": GOLDEN_SOURCE,
        "filters": query.meta_filters(EXPORT_PARAMS.view, EXPORT_PARAMS.since, EXPORT_PARAMS.until),
    }
    return query.json_head(meta, variant_lines(variant)) + b"}\n"


def list_answer(fmt: formats.Format) -> bytes:
    """The seed corpus as the list answer of ``fmt`` (a JSON one ends with its links' ``}``)."""
    if fmt.json_envelope:
        return _json_list(fmt.name)
    return fmt.header + variant_lines(fmt.name)


def _stix() -> bytes:
    doc = json.loads(bundle(STIX_PARAMS, "seed-build", variant_lines("stix")))
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _misp() -> bytes:
    return event_document(
        GOLDEN_BUILD_ID, SEED_NOW, EXPORT_PARAMS, GOLDEN_SOURCE, variant_lines("misp")
    )


def _openioc() -> bytes:
    return openioc_document(
        GOLDEN_BUILD_ID,
        SEED_NOW,
        EXPORT_PARAMS,
        GOLDEN_SOURCE,
        variant_lines("openioc"),
        variant_lines("openiocp"),
    )


# variant -> (golden file name, renderer of the seed corpus). The two OpenIOC variants (items
# and their parameters) only exist together, as one document, so they share one golden file.
VARIANT_GOLDENS: dict[str, tuple[str, Callable[[], bytes]]] = {
    **{f.name: (f"iocs.{f.extension}", partial(list_answer, f)) for f in formats.LISTED},
    "jsonnc": ("iocs-no-context.json", lambda: _json_list("jsonnc")),
    "stix": ("stix_bundle.json", _stix),
    "misp": ("misp-event.json", _misp),
    "cef": ("cef.log", lambda: variant_lines("cef")),
    "syslog": ("syslog.log", lambda: variant_lines("syslog")),
    "openioc": ("openioc.xml", _openioc),
    "openiocp": ("openioc.xml", _openioc),
}


def update(variants: list[str]) -> list[Path]:
    """Rewrite the golden files of ``variants``; returns the paths written."""
    written: list[Path] = []
    for variant in variants:
        name, render = VARIANT_GOLDENS[variant]
        path = GOLDEN / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render())
        if path not in written:
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.golden", description="Check or rewrite the per-variant golden files."
    )
    parser.add_argument("--update", action="store_true", help="rewrite the golden files")
    parser.add_argument(
        "variants",
        nargs="*",
        metavar="VARIANT",
        help=f"variants to handle (default: all of {', '.join(VARIANT_GOLDENS)})",
    )
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANT_GOLDENS]
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    variants = args.variants or list(VARIANT_GOLDENS)
    if args.update:
        for path in update(variants):
            print(f"wrote {path.relative_to(GOLDEN.parent.parent)}")
        return 0
    stale = [
        v
        for v in variants
        if not (GOLDEN / VARIANT_GOLDENS[v][0]).exists()
        or (GOLDEN / VARIANT_GOLDENS[v][0]).read_bytes() != VARIANT_GOLDENS[v][1]()
    ]
    for v in stale:
        print(f"{v}: {VARIANT_GOLDENS[v][0]} is stale or missing")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
