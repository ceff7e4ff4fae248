"""Every endpoint the worker serves: one line each."""

from __future__ import annotations

from worker import iocs, keys_api
from worker.routing import Route

ROUTES: list[Route] = [
    Route("/api/v1/iocs", {"GET": iocs.list_iocs}, scope="read:iocs"),
    Route("/api/v1/keys", {"GET": keys_api.list_keys, "POST": keys_api.create_key},
          auth="session"),
    Route("/api/v1/keys/{keyId}", {"GET": keys_api.get_key, "DELETE": keys_api.revoke_key},
          auth="session"),
    Route("/api/v1/keys/{keyId}/usage", {"GET": keys_api.key_usage}, auth="session"),
]
