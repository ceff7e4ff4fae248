"""Every endpoint the worker serves: one line each."""

from __future__ import annotations

from worker.endpoints import (
    cef,
    changes,
    feeds,
    iocs,
    misp,
    openioc,
    search,
    signing,
    site,
    stats,
    stix,
)
from worker.endpoints import keys as keys_api
from worker.routing import Route
from worker.taxii import endpoints as taxii

COLLECTION = "/api/taxii2/api/collections/{collectionId}/"
OBJECT = COLLECTION + "objects/{objectId}/"

ROUTES: list[Route] = [
    Route("/api/v1/iocs", {"GET": iocs.list_iocs}, scope="read:iocs", errors="format"),
    Route(
        "/api/v1/iocs/changes", {"GET": changes.list_changes}, scope="read:iocs", errors="format"
    ),
    Route("/api/v1/iocs/search", {"GET": search.search_iocs}, scope="read:search"),
    Route("/api/v1/iocs/range/{prefix}", {"GET": search.ioc_range}, scope="read:search"),
    Route("/api/v1/iocs/stats", {"GET": stats.get_stats}, scope="read:stats"),
    Route(
        "/api/v1/iocs/suppressed",
        {"GET": iocs.suppressed_report},
        scope="read:iocs",
        errors="format",
    ),
    Route("/api/v1/iocs/stix", {"GET": stix.export_stix}, scope="read:stix"),
    Route("/api/v1/iocs/misp", {"GET": misp.misp_event}, scope="read:misp"),
    Route("/feeds/misp/{name}", {"GET": misp.feed_file}, scope="read:misp"),
    Route("/api/v1/iocs/cef", {"GET": cef.cef_events}, scope="read:cef", errors="text"),
    Route("/api/v1/feeds", {"GET": feeds.feeds_index}, scope="read:iocs"),
    Route("/api/v1/feeds/{name}", {"GET": feeds.feed_file}, scope="read:iocs", errors="text"),
    Route("/api/v1/iocs/openioc", {"GET": openioc.openioc_document}, scope="read:openioc"),
    Route("/api/v1/keys", {"GET": keys_api.list_keys, "POST": keys_api.create_key}, auth="session"),
    Route(
        "/api/v1/keys/{keyId}",
        {"GET": keys_api.get_key, "DELETE": keys_api.revoke_key},
        auth="session",
    ),
    Route("/api/v1/keys/{keyId}/usage", {"GET": keys_api.key_usage}, auth="session"),
    # the publisher's minisign public key (docs/publish.md), no key
    Route("/api/v1/signing-key", {"GET": signing.signing_key}, auth="none"),
    Route("/signing.pub", {"GET": signing.public_key_file}, auth="none"),
    # TAXII 2.1 (docs/taxii.md): discovery needs no key; errors in TAXII's shape
    Route("/api/taxii2/", {"GET": taxii.discovery}, auth="none", errors="taxii"),
    Route("/api/taxii2/api/", {"GET": taxii.api_root}, scope="read:taxii", errors="taxii"),
    Route(
        "/api/taxii2/api/collections/",
        {"GET": taxii.collections},
        scope="read:taxii",
        errors="taxii",
    ),
    Route(COLLECTION, {"GET": taxii.collection}, scope="read:taxii", errors="taxii"),
    Route(COLLECTION + "objects/", {"GET": taxii.get_objects}, scope="read:taxii", errors="taxii"),
    Route(OBJECT, {"GET": taxii.get_object}, scope="read:taxii", errors="taxii"),
    Route(OBJECT + "versions/", {"GET": taxii.get_versions}, scope="read:taxii", errors="taxii"),
    Route(
        COLLECTION + "manifest/", {"GET": taxii.get_manifest}, scope="read:taxii", errors="taxii"
    ),
    Route(
        "/api/taxii2/api/status/{statusId}/",
        {"GET": taxii.status},
        scope="read:taxii",
        errors="taxii",
    ),
    # the docs site (site/… objects of the current build), no key
    Route("/", {"GET": site.page}, auth="none"),
    Route("/docs/", {"GET": site.page}, auth="none"),
    Route("/docs/{page}/", {"GET": site.page}, auth="none"),
    Route("/docs/{page}", {"GET": site.page}, auth="none"),
    Route("/static/{asset}", {"GET": site.page}, auth="none"),
]
