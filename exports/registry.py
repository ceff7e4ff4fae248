"""The table of record variants the build writes per day; a new variant is one line here."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from exports import cef, ioc_csv, ioc_json, ioc_txt, misp, openioc, stix21
from exports.model import IOCRecord

LineRenderer = Callable[[IOCRecord], bytes]

VARIANT_RENDERERS: dict[str, LineRenderer] = {
    "json": ioc_json.render_line,
    "jsonnc": ioc_json.render_line_no_context,
    "csv": ioc_csv.render_line,
    "txt": ioc_txt.render_line,
    "stix": stix21.render_line,
    "misp": misp.render_line,
    "cef": cef.render_line,
    "syslog": cef.render_syslog_line,
    "openioc": openioc.render_item,
    "openiocp": openioc.render_params,
}


# Renderers of a day's records, several variants at once where they share work: the same
# bytes as VARIANT_RENDERERS, faster. Each entry: variants → their lines, in that order.
BATCH_RENDERERS: dict[tuple[str, ...], Callable[[list[IOCRecord]], Sequence[list[bytes]]]] = {
    ("json", "jsonnc"): ioc_json.render_lines,
    ("csv",): lambda records: (ioc_csv.render_lines(records),),
    ("cef", "syslog"): cef.render_lines,
}


def render_variants(records: list[IOCRecord], variants: Sequence[str]) -> dict[str, list[bytes]]:
    """The lines of ``variants`` (each: one per record), batched where it helps."""
    out: dict[str, list[bytes]] = {}
    for group, render in BATCH_RENDERERS.items():
        if all(v in variants for v in group):
            out.update(zip(group, render(records), strict=True))
    for variant in variants:
        if variant not in out:
            out[variant] = [VARIANT_RENDERERS[variant](r) for r in records]
    return {variant: out[variant] for variant in variants}
