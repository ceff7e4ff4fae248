"""The docs site, built into the tree as ``site/…`` objects (served by the worker at ``/``).

A build sink: it counts what the statistics page charts while the build streams the records,
then renders every page from ``templates/`` (jinja2, autoescaped) and copies the static assets
of ``site/``. Pages hold only what the store and the code decide (the build's ``generated_at``,
never the wall clock), so the same store gives the same bytes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from exports.attack import technique_name, technique_names
from exports.devices import lists as device_lists
from exports.model import IOCRecord
from generator.build.sinks import BuildInfo, ObjectWriter
from generator.errors import SocdefError
from generator.site import apiref as site_apiref
from generator.site import links as site_links
from generator.site.stats import SiteStats
from worker.contract import device_files, layout
from worker.contract.tiers import TIERS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
ASSETS = ROOT / "site"
ATTACK_JSON = "/static/attack.json"


@dataclass(frozen=True, slots=True)
class Page:
    url: str  # where the worker serves it
    template: str
    title: str
    nav: bool = True


PAGES: tuple[Page, ...] = (
    Page("/", "index.html", "Home"),
    Page("/docs/", "getting-started.html", "Getting started"),
    Page("/docs/api/", "api.html", "API reference"),
    Page("/docs/browse/", "browse.html", "Browse indicators"),
    Page("/docs/suppressed/", "suppressed.html", "Suppression report"),
    Page("/docs/formats/", "formats.html", "Formats & downloads"),
    Page("/docs/stats/", "stats.html", "Statistics"),
    Page("/docs/keys/", "keys.html", "API keys"),
)


class SiteError(SocdefError, RuntimeError):
    """The templates, assets or spec the site is built from are missing."""


def environment() -> Environment:
    if not TEMPLATES.is_dir() or not ASSETS.is_dir():
        raise SiteError(
            f"{TEMPLATES} and {ASSETS} are needed to build the site: "
            "run socdef build from a source checkout (pip install -e .)"
        )
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["markdown"] = site_apiref.markdown
    env.globals["cell_url"] = site_links.cell_url
    return env


def iso(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def context(stats: SiteStats, info: BuildInfo, spec: dict[str, Any]) -> dict[str, Any]:
    served = site_links.served_operations()
    return {
        "site_name": info.source_name,
        "generated_at": iso(info.generated_at),
        "total": stats.total(),
        "totals_by_type": stats.totals_by_type(),
        "pages": [p for p in PAGES if p.nav],
        "tiers": list(TIERS.values()),
        "types": site_links.TYPES,
        "ioc_types": layout.IOC_TYPES,
        "technique_name": technique_name,
        "key_placeholder": site_links.KEY_PLACEHOLDER,
        "downloads": {t: site_links.tier_columns(spec, t, served) for t in TIERS},
        "device_files": device_files.DEVICE_FILES,
        "device_route": device_files.ROUTE,
        "panos_max": device_lists.PANOS_MAX_ENTRIES,
        "fortigate_max": device_lists.FORTIGATE_MAX_LINES,
        "serves": lambda path, method="GET": site_links.is_served(method, path, served),
        "spec": spec,
        "operations": site_apiref.operations(spec),
        "schemas": site_apiref.schemas(spec),
        "charts": stats.charts(info.generated_at),
        "top_techniques": stats.top("mitre_attack"),
        "top_cves": stats.top("cve"),
    }


def render_pages(stats: SiteStats, info: BuildInfo) -> dict[str, bytes]:
    """Every page and asset of the site: logical key → bytes."""
    env = environment()
    ctx = context(stats, info, site_apiref.load_spec())
    out: dict[str, bytes] = {}
    for page in PAGES:
        html = env.get_template(page.template).render(ctx, page=page)
        out[layout.site_key(page.url)] = html.encode()
    # ATT&CK names for the browse page's script (the bundled table, id -> name)
    names = json.dumps(technique_names(), sort_keys=True, separators=(",", ":"))
    out[layout.site_key(ATTACK_JSON)] = names.encode()
    for asset in sorted(p for p in ASSETS.rglob("*") if p.is_file()):
        url = "/static/" + asset.relative_to(ASSETS).as_posix()
        out[layout.site_key(url)] = asset.read_bytes()
    return out


class Site:
    """The build sink: statistics while records stream, then every page."""

    def __init__(self) -> None:
        self.stats = SiteStats()

    def add_day(self, day: str, records: list[IOCRecord]) -> None:
        self.stats.add_day(day, records)

    def finish(self, out: ObjectWriter, info: BuildInfo) -> None:
        for key, data in sorted(render_pages(self.stats, info).items()):
            out.put(key, data)
