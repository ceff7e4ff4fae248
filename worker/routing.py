"""Routes as data: a path pattern, its method handlers, how it authenticates and what it needs.

A handler takes a :class:`Ctx` and returns a :class:`~worker.http.Response`. New endpoints are
one :class:`Route` line in ``worker/routes.py``. A handler reaches the worker only through
:class:`Services` (``worker.app.App`` is one), so no endpoint imports the app that routes to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from worker.http import Request, Response

if TYPE_CHECKING:
    from worker.buckets.storage import Build, BuildSource
    from worker.contract.tiers import Tier
    from worker.limits.windows import Limiter

Handler = Callable[["Ctx"], Response]
PARAM = re.compile(r"\{([a-zA-Z_]+)\}")


@dataclass(frozen=True, slots=True)
class Route:
    pattern: str
    handlers: dict[str, Handler]
    auth: str = "key"  # "key" (API key + limits), "session" (sb-access-token), "none"
    scope: str | None = None  # the key scope the route needs
    # how errors are written: "spec" (the OpenAPI error shape, JSON), "taxii" (TAXII's error
    # resource), "text" (one line of text: the route answers text), "format" (text when the
    # ``format`` parameter names a text format, else JSON); see ``worker.app.error_style``
    errors: str = "spec"


class Services(Protocol):
    """What an endpoint may use of the worker that serves it."""

    builds: BuildSource  # the current build
    public_url: str | None  # the base of links in answers (None: from the request's Host)
    source_name: str  # the feed's name in answers
    keys: Any  # worker.access.keys.KeyStore: the session routes' key management
    limiter: Limiter  # the account limits (key operations spend them too)
    limit_scale: float
    accounts: Any  # worker.access.accounts.Accounts: an account's tier
    usage: Any  # worker.limits.usage.UsageLog


@dataclass(slots=True)
class Ctx:
    req: Request
    app: Services
    route: Route
    params: dict[str, str] = field(default_factory=dict)
    key: Any = None  # worker.access.keys.ApiKey for "key" routes
    tier: Tier | None = None
    user: str | None = None  # the session's user for "session" routes
    decision: Any = None  # worker.limits.windows.Decision once the limiter has decided
    iocs: int = 0  # indicators in the answer, for the usage log

    def build(self) -> Build:
        return self.app.builds.current()


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.exact: dict[str, Route] = {}
        self.patterns: list[tuple[re.Pattern[str], Route]] = []
        for route in routes:
            if "{" in route.pattern:
                self.patterns.append((_compile(route.pattern), route))
            else:
                self.exact[route.pattern] = route

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        for candidate in (path, path.rstrip("/") or "/", path + "/"):
            route = self.exact.get(candidate)
            if route is not None and (candidate == path or route.errors != "taxii"):
                return route, {}
        for regex, route in self.patterns:
            found = regex.match(path)
            if found:
                return route, found.groupdict()
        return None


def _compile(pattern: str) -> re.Pattern[str]:
    parts = PARAM.split(pattern)  # literal, name, literal, name, ...
    regex = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    return re.compile(f"^{regex}$")
