"""A suppression or withdrawal made after publication reaches TAXII pollers: the revoked
version gets the ``date_added`` of the publish that made the change, so taxii2-client polling
with the previous ``X-TAXII-Date-Added-Last`` against real ``socdef serve`` receives it, and a
rebuild that changes nothing sends nothing again (docs/lifecycle.md, "When the state changed")."""

from __future__ import annotations

import json

import pytest

from generator.store.lifecycle import DAY, Ledger, PolicyError
from tests.support import new_key, published
from tests.test_lifecycle import IP, T0, _switch, one_article_store, records
from tests.test_taxii_http import SCALE, collection, every_object


def last_mark(log) -> str:
    return [h["x-taxii-date-added-last"] for h in log.headers if "x-taxii-date-added-last" in h][-1]


def test_a_change_after_publish_is_dated_after_it(serve_process, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "overrides.txt").write_text("allow 8.8.8.8\n")  # a resolver an operator keeps
    published(data, store=one_article_store)
    server = serve_process(data, *SCALE)
    key = new_key(data, "enterprise")
    assert {"8.8.8.8", IP} <= set(records(server.url, key))
    taxii, log = collection(server.url, key)
    first = {o["id"]: o for o in every_object(taxii)}
    mark = last_mark(log)

    # no new ingest: the same store and clock; the operator drops the allow and blocks the IP
    (data / "overrides.txt").write_text(f"block {IP}\n")
    _switch(server, data)
    all_states = records(server.url, key, status="all")
    assert all_states["8.8.8.8"]["status"] == "suppressed"
    assert all_states[IP]["status"] == "withdrawn"
    polled = {o.get("pattern", ""): o for o in every_object(taxii, added_after=mark)}
    for value in ("8.8.8.8", IP):
        (version,) = [o for p, o in polled.items() if f"'{value}'" in p]
        assert version["revoked"] is True
        assert version["modified"] > first[version["id"]]["modified"]
    mark = last_mark(log)

    # rebuilt a day later with nothing changed: the revoked versions keep their dates, and
    # nothing is sent again
    _switch(server, data, "--now", str(T0 + DAY))
    assert every_object(taxii, added_after=mark) == []
    ledger = Ledger.parse(json.loads((data / "lifecycle.json").read_text()))
    assert ledger.changes[f"ipv4 {IP}"][0] == "withdrawn"
    assert ledger.changes["ipv4 8.8.8.8"][0] == "suppressed"


def test_an_unreadable_ledger_is_an_error():
    with pytest.raises(PolicyError, match="ledger"):
        Ledger.parse({"through": "soon"})
    assert Ledger.parse({"through": 5, "changes": {"ipv4 1.2.3.4": ["withdrawn", 9]}}) == Ledger(
        5, {"ipv4 1.2.3.4": ("withdrawn", 9)}
    )
