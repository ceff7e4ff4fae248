"""The export formats: one record per format, and nothing else (data only, standard library only).

A *format* is what a client asks for: JSON, CSV, TXT on ``GET /api/v1/iocs?format=<name>`` (a
*list format*), or STIX 2.1, MISP, CEF, Syslog, OpenIOC on a route of their own. A format's
records are stored per day in one or more *variants* (``iocs/day/<day>/<variant>.dat``, one
rendered line per record, see ``worker.contract.layout``); the renderer of each variant is named here by
its dotted path and loaded by ``exports.registry``, so the worker can read this table without
importing any renderer.

Every list of formats reads this table: the renderers and batch renderers
(``exports.registry``), the list formats, their envelopes and the variant answered without
context (``worker.contract.layout``, ``worker.endpoints.query``, ``worker.endpoints.iocs``, ``worker.endpoints.params``), the media
types and formats of the own-route endpoints (``worker.endpoints.stix``, ``worker.endpoints.misp``, ``worker.endpoints.cef``,
``worker.endpoints.openioc``), the Content-Type of published objects (``generator.publish.headers``), the
build's process split (``generator.build.tree``) and the download links of the site
(``generator.site.links``). Adding a
list format is its renderer module, one record below and its golden file
(``tests/golden/iocs.<extension>``); ``tests/test_format_table.py`` fails until the record has
a golden, a media type and a docs entry.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text/plain; charset=utf-8"
CSV = "text/csv; charset=utf-8"
LIST_ROUTE = "/api/v1/iocs"


@dataclass(frozen=True, slots=True)
class Variant:
    """One rendering stored per day: ``iocs/day/<day>/<name>.dat``, one line per record."""

    name: str
    renderer: str  # dotted path of the function that renders one record to its line (bytes)
    media_type: str  # Content-Type of the published ``<name>.dat`` partition
    # Optional: dotted path of a faster renderer of a whole day's records, shared by the variants
    # that name it; it returns their lines (the same bytes as ``renderer``), one list per
    # variant in this table's order, or just the list when one variant names it.
    batch: str = ""


@dataclass(frozen=True, slots=True)
class Format:
    """What a client can ask for, and everything the build, the worker and the site know of it."""

    name: str  # the format's name: ``format=<name>``, ``iocs/default/<tier>/<view>.<name>``
    label: str  # its name on the site's formats page
    media_type: str  # the Content-Type the worker answers with
    extension: str  # the file extension of a saved answer (and of its golden file)
    scope: str  # the tier scope that may fetch it (``worker.contract.tiers``)
    variants: tuple[Variant, ...]  # what the build stores per day; the first is the format's own
    doc: str  # its page under docs/
    route: str | None = None  # its own route; None: a list format on LIST_ROUTE
    selector: tuple[tuple[str, str], ...] = ()  # query parameters that pick it on its route
    header: bytes = b""  # list formats: the bytes before the lines (CSV's header row)
    json_envelope: bool = False  # list formats: lines inside JSON ``meta``/``data``/``links``
    no_context: str = ""  # list formats: the variant answered to ``include_context=false``

    @property
    def listed(self) -> bool:
        """A list format: ``GET /api/v1/iocs?format=<name>``, precomputed per tier and view."""
        return self.route is None

    @property
    def path(self) -> str:
        """The spec path that serves the format."""
        return self.route or LIST_ROUTE

    @property
    def params(self) -> tuple[tuple[str, str], ...]:
        """The query parameters that pick the format on its path."""
        return (("format", self.name),) if self.route is None else self.selector

    def variant(self, include_context: bool) -> str:
        """The variant that answers: the format's own, or its ``no_context`` one without context."""
        return self.variants[0].name if include_context or not self.no_context else self.no_context


CSV_HEADER = (
    b"id,type,value,confidence,first_seen,last_seen,source_article,source_feed,category,tags,"
    b"status,valid_until,warnings,categories\n"
)

BATCH_JSON = "exports.ioc_json.render_lines"  # json and jsonnc from one dict per record
BATCH_CEF = "exports.cef.render_lines"  # cef and syslog from one event per record

FORMATS: tuple[Format, ...] = (
    Format(
        "json",
        "JSON",
        "application/json",
        "json",
        "read:iocs",
        (
            Variant("json", "exports.ioc_json.render_line", TEXT, BATCH_JSON),
            Variant("jsonnc", "exports.ioc_json.render_line_no_context", TEXT, BATCH_JSON),
        ),
        "formats/lists.md",
        json_envelope=True,
        no_context="jsonnc",
    ),
    Format(
        "csv",
        "CSV",
        CSV,
        "csv",
        "read:iocs",
        (Variant("csv", "exports.ioc_csv.render_line", CSV, "exports.ioc_csv.render_lines"),),
        "formats/lists.md",
        header=CSV_HEADER,
    ),
    Format(
        "txt",
        "TXT",
        TEXT,
        "txt",
        "read:iocs",
        (Variant("txt", "exports.ioc_txt.render_line", TEXT),),
        "formats/lists.md",
    ),
    Format(
        "stix",
        "STIX 2.1",
        "application/stix+json;version=2.1",
        "json",
        "read:stix",
        (Variant("stix", "exports.stix21.render_line", TEXT),),
        "formats/stix.md",
        route="/api/v1/iocs/stix",
    ),
    Format(
        "misp",
        "MISP",
        "application/json",
        "json",
        "read:misp",
        (Variant("misp", "exports.misp.render_line", TEXT),),
        "formats/misp.md",
        route="/api/v1/iocs/misp",
    ),
    Format(
        "cef",
        "CEF",
        TEXT,
        "log",
        "read:cef",
        (Variant("cef", "exports.cef.render_line", TEXT, BATCH_CEF),),
        "formats/cef.md",
        route="/api/v1/iocs/cef",
        selector=(("format", "cef"),),
    ),
    Format(
        "syslog",
        "Syslog",
        TEXT,
        "log",
        "read:cef",
        (Variant("syslog", "exports.cef.render_syslog_line", TEXT, BATCH_CEF),),
        "formats/cef.md",
        route="/api/v1/iocs/cef",
        selector=(("format", "syslog"),),
    ),
    Format(
        "openioc",
        "OpenIOC",
        "application/xml",
        "xml",
        "read:openioc",
        (
            Variant("openioc", "exports.openioc.render_item", TEXT),
            Variant("openiocp", "exports.openioc.render_params", TEXT),
        ),
        "formats/openioc.md",
        route="/api/v1/iocs/openioc",
    ),
)

BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}
LISTED: tuple[Format, ...] = tuple(f for f in FORMATS if f.listed)
# Every variant the build stores per day, in the order it renders them.
VARIANTS: tuple[Variant, ...] = tuple(v for f in FORMATS for v in f.variants)
