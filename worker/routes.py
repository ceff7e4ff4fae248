"""Every endpoint the worker serves: one line each."""

from __future__ import annotations

from worker import iocs
from worker.routing import Route

ROUTES: list[Route] = [
    Route("/api/v1/iocs", {"GET": iocs.list_iocs}, scope="read:iocs"),
]
