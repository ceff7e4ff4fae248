"""The renderers of the record variants the build writes per day, loaded from ``worker.contract.formats``.

A variant is declared by its record in ``worker.contract.formats`` (name, renderer path, media type and,
optionally, a faster batch renderer it shares with other variants); this module only turns
those paths into functions. STIX is rendered with its object boundaries
(``exports.stix21.render_objects``), which the day's ``Rendered`` hands to the TAXII build along
with the lines.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import cast

from exports import stix21
from exports.model import IOCRecord
from worker.contract import formats

LineRenderer = Callable[[IOCRecord], bytes]
BatchRenderer = Callable[[list[IOCRecord]], Sequence[list[bytes]]]


def named(path: str) -> object:
    """The object a dotted path names."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def load(path: str) -> LineRenderer:
    """The function a dotted path names: ``exports.ioc_csv.render_line``."""
    return cast(LineRenderer, named(path))


def load_batch(path: str, variants: int) -> BatchRenderer:
    """The batch renderer ``path`` names, as one list of lines per variant (``variants`` many)."""
    if variants > 1:
        return cast(BatchRenderer, named(path))
    render = cast(Callable[[list[IOCRecord]], list[bytes]], named(path))
    return lambda records: (render(records),)


def batch_groups() -> dict[str, tuple[str, ...]]:
    """Each batch renderer of the table → the variants naming it, in the table's order."""
    groups: dict[str, tuple[str, ...]] = {}
    for v in formats.VARIANTS:
        if v.batch:
            groups[v.batch] = (*groups.get(v.batch, ()), v.name)
    return groups


VARIANT_RENDERERS: dict[str, LineRenderer] = {v.name: load(v.renderer) for v in formats.VARIANTS}

# Renderers of a day's records, several variants at once where they share work: the same
# bytes as VARIANT_RENDERERS, faster. Each entry: variants → their lines, in that order.
BATCH_RENDERERS: dict[tuple[str, ...], BatchRenderer] = {
    group: load_batch(path, len(group)) for path, group in batch_groups().items()
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
