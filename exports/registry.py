"""The table of record variants the build writes per day; a new variant is one line here."""

from __future__ import annotations

from collections.abc import Callable

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
