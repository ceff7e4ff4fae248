"""A source's retraction on the real CLI, build and worker: ``socdef retract`` names an article,
and every indicator only retracted articles reported is withdrawn in every format (lists, the
suppression report, STIX/TAXII polled by taxii2-client, the MISP feed read by pymisp, CEF),
while one another article also reported stays active."""

from __future__ import annotations

import pytest

from generator.store.generations import Store
from generator.store.lifecycle import RETRACTED, Retraction, RetractionError, parse_retractions
from tests.conftest import socdef
from tests.support import new_key, published
from tests.test_lifecycle import T0, _feed_event, _switch, get, records, tables
from tests.test_taxii_http import SCALE, collection, every_object

GONE = "45.137.21.77"  # only in the retracted article
KEPT = "qzxv-loader-gate.com"  # in both articles
RETRACTED_ARTICLE, OTHER = "a" * 16, "e" * 16


def two_articles(root) -> None:
    articles = [
        (RETRACTED_ARTICLE, T0, [("ipv4", GONE), ("domain", KEPT)]),
        (OTHER, T0 + 60, [("domain", KEPT)]),
    ]
    Store(root).commit(*tables(articles), {"as_of": T0 + 120, "sources": {}})


def test_a_retracted_article_withdraws_what_only_it_reported(serve_process, tmp_path):
    data = published(tmp_path / "data", store=two_articles)
    server = serve_process(data, *SCALE)
    key = new_key(data, "enterprise")
    assert {GONE, KEPT} <= set(records(server.url, key))
    taxii, log = collection(server.url, key)
    first = {o.get("pattern", ""): o for o in every_object(taxii)}
    marks = [h["x-taxii-date-added-last"] for h in log.headers if "x-taxii-date-added-last" in h]
    event = _feed_event(server.url, key, GONE)

    said = socdef(
        "retract", f"https://x/{RETRACTED_ARTICLE}", "--reason", "post withdrawn", data_dir=data
    ).stdout
    assert f"retracted article {RETRACTED_ARTICLE}" in said and "1 indicator(s)" in said
    assert "post withdrawn" in (data / "retractions.txt").read_text()
    _switch(server, data)

    # lists: gone from the default answers, withdrawn with its reason; the other stays
    assert GONE not in records(server.url, key) and KEPT in records(server.url, key)
    assert GONE not in get(server.url, key, format="txt").text
    withdrawn = records(server.url, key, status="withdrawn")[GONE]
    assert RETRACTED in withdrawn["warnings"]
    assert records(server.url, key, status="all")[KEPT]["status"] == "active"
    # the suppression report names it and why
    report = get(server.url, key, "/api/v1/iocs/suppressed").json()["data"]
    (item,) = [i for i in report["items"] if i["value"] == GONE]
    assert item["held_by"] == [RETRACTED] and report["by_list"][RETRACTED] == 1
    # TAXII: a poller holding the previous X-TAXII-Date-Added-Last receives the revocation
    polled = every_object(taxii, added_after=marks[-1])
    version = next(o for o in polled if GONE in o.get("pattern", ""))
    assert version["revoked"] is True
    assert version["modified"] > first[version["pattern"]]["modified"]
    assert not any(KEPT in o.get("pattern", "") for o in polled)  # unchanged: not re-sent
    # MISP: the re-fetched event keeps the attribute with to_ids false, and is newer
    refetched = _feed_event(server.url, key, GONE)
    assert next(a for a in refetched.attributes if a.value == GONE).to_ids is False
    assert refetched.timestamp > event.timestamp
    # CEF: a removal record
    cef = get(server.url, key, "/api/v1/iocs/cef", status="all").text
    removal = next(line for line in cef.splitlines() if f"dst={GONE}" in line)
    assert "act=remove reason=withdrawn" in removal
    # explain tells why
    story = socdef("explain", GONE, data_dir=data).stdout
    assert story.startswith(f"ipv4 {GONE}: withdrawn") and "retracted by its source" in story


def test_retract_refuses_an_article_the_store_does_not_hold(tmp_path):
    two_articles(tmp_path / "store")
    out = socdef("retract", "https://nowhere.example/post", data_dir=tmp_path, check=False)
    assert out.returncode == 1
    assert "no article 'https://nowhere.example/post' in the store" in out.stderr
    assert not (tmp_path / "retractions.txt").exists()


def test_the_retractions_file_reports_every_bad_line():
    text = "# comment\n2026-12-01T10:00:00Z https://x/a removed\nyesterday https://x/b\nlonely\n"
    with pytest.raises(RetractionError) as err:
        parse_retractions(text, "retractions.txt")
    assert "line 3" in str(err.value) and "line 4" in str(err.value)
    good = parse_retractions("2026-12-01T10:00:00Z https://x/a removed by the vendor\n")
    assert good == [Retraction("https://x/a", 1_796_119_200, "removed by the vendor")]
    assert parse_retractions(good[0].line()) == good


def test_a_bad_retractions_file_stops_the_build_with_its_line(tmp_path):
    two_articles(tmp_path / "store")
    (tmp_path / "retractions.txt").write_text("soon https://x/aaaaaaaaaaaaaaaa\n")
    out = socdef("build", data_dir=tmp_path, check=False)
    assert out.returncode == 1 and "retractions.txt: line 1" in out.stderr


def test_retract_by_article_id_at_a_given_time(tmp_path):
    two_articles(tmp_path / "store")
    socdef("retract", RETRACTED_ARTICLE, "--at", str(T0 + 3600), data_dir=tmp_path)
    (entry,) = parse_retractions((tmp_path / "retractions.txt").read_text())
    assert entry == Retraction(RETRACTED_ARTICLE, T0 + 3600, "")
