"""The renderers of the record variants the build writes per day, loaded from ``worker.formats``.

A variant is declared by its record in ``worker.formats`` (name, renderer path, media type);
this module only turns the renderer paths into functions, and adds faster batch renderers.
STIX is rendered with its object boundaries (``exports.stix21.render_objects``), which the day's
``Rendered`` hands to the TAXII build along with the lines.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import cast

from exports import cef, ioc_csv, ioc_json, stix21
from exports.model import IOCRecord
from worker import formats

LineRenderer = Callable[[IOCRecord], bytes]


def load(path: str) -> LineRenderer:
    """The function a dotted path names: ``exports.ioc_csv.render_line``."""
    module, _, name = path.rpartition(".")
    return cast(LineRenderer, getattr(importlib.import_module(module), name))


VARIANT_RENDERERS: dict[str, LineRenderer] = {v.name: load(v.renderer) for v in formats.VARIANTS}


# Renderers of a day's records, several variants at once where they share work: the same
# bytes as VARIANT_RENDERERS, faster. Each entry: variants → their lines, in that order.
BATCH_RENDERERS: dict[tuple[str, ...], Callable[[list[IOCRecord]], Sequence[list[bytes]]]] = {
    ("json", "jsonnc"): ioc_json.render_lines,
    ("csv",): lambda records: (ioc_csv.render_lines(records),),
    ("cef", "syslog"): cef.render_lines,
}


class Rendered(dict[str, list[bytes]]):
    """A day's lines, variant → one per record. ``stix_objects``: each record's STIX objects
    (type, id, bytes of each; its ``stix`` line is their bytes) when ``stix`` was rendered."""

    stix_objects: list[stix21.StixObjects] | None = None


def render_variants(records: list[IOCRecord], variants: Sequence[str]) -> Rendered:
    """The lines of ``variants`` (each: one per record), batched where it helps."""
    out: dict[str, list[bytes]] = {}
    stix_objects = None
    if "stix" in variants:
        stix_objects = [stix21.render_objects(r) for r in records]
        out["stix"] = [objects.line for objects in stix_objects]
    for group, render in BATCH_RENDERERS.items():
        if all(v in variants for v in group):
            out.update(zip(group, render(records), strict=True))
    for variant in variants:
        if variant not in out:
            out[variant] = [VARIANT_RENDERERS[variant](r) for r in records]
    rendered = Rendered((variant, out[variant]) for variant in variants)
    rendered.stix_objects = stix_objects
    return rendered
