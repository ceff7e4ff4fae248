"""What the standards-format endpoints (MISP, CEF/syslog, OpenIOC) share: their parameters and
the selection of precomputed lines (conditional GET is :func:`worker.encoding.conditional`).

Each endpoint accepts only the parameters the spec gives it; they are checked by the list
endpoint's own parser, so a bad ``type``, ``since``, ``limit`` or ``format`` is the same 400.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.buckets.storage import Build
from worker.contract.tiers import Tier
from worker.endpoints import query
from worker.endpoints.params import parse_list


@dataclass(frozen=True, slots=True)
class ExportParams:
    view: str
    since: int
    until: int
    limit: int
    format: str

    @property
    def key(self) -> str:
        """The normalised query: with the build id it names the answer's bytes."""
        return f"{self.view}|{self.since}|{self.until}|{self.limit}|{self.format}"


def parse_export(
    raw: dict[str, str],
    tier: Tier,
    now: int,
    names: tuple[str, ...],
    formats: tuple[str, ...] = ("json",),
) -> ExportParams:
    """The endpoint's parameters ``names`` out of the query; any other parameter is ignored."""
    p = parse_list({k: raw[k] for k in names if k in raw}, tier, now, formats)
    return ExportParams(p.view, p.since, p.until, p.limit, p.format)


def select(build: Build, p: ExportParams, variant: str) -> query.Selection:
    return query.select(build, query.Query(p.view, variant, p.since, p.until, 0, p.limit))
