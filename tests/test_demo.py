"""The README's first command: `socdef demo` ingests the bundled sample, serves, prints a key."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import httpx
import pytest

from generator.sources.catalog import SAMPLE_DIR, load_sources
from tests.conftest import LISTENING, ROOT, announced, stop_process, wait_http
from tests.support import new_key
from worker.contract.layout import CATEGORIES, IOC_TYPES


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    log_path = data / "demo.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "generator", "demo", "--port", "0", "--data-dir", str(data)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = announced(log_path, proc, LISTENING, timeout=240).group(1)
        wait_http(base + "/healthz", proc)
    except BaseException:
        stop_process(proc)
        raise
    lines = log_path.read_text().splitlines()
    key = next((ln.split("API key: ")[1] for ln in lines if ln.startswith("API key: ")), None)
    curl = next((ln for ln in lines if ln.startswith("curl ")), None)
    assert key and curl, "\n".join(lines)
    yield {"key": key, "curl": curl, "base": base, "data": data, "lines": lines}
    stop_process(proc)


def test_demo_prints_an_enterprise_key_and_a_working_curl(demo):
    assert demo["key"].startswith("sk_live_")
    # printed once the server has bound, so with --port 0 it names the port it got: run as printed
    assert f'"{demo["base"]}/api/v1/iocs?limit=5"' in demo["curl"]
    curl = demo["curl"]
    if shutil.which("curl"):
        out = subprocess.run(
            shlex.split(curl), capture_output=True, text=True, timeout=30, check=True
        ).stdout
    else:  # the same request, made the way the printed line makes it
        url = shlex.split(curl)[-1]
        out = httpx.get(url, headers={"Authorization": f"Bearer {demo['key']}"}).text
    body = json.loads(out)
    assert len(body["data"]) == 5 and body["meta"]["total"] > 5


def test_every_tier_window_has_data_today(demo):
    """Dates are shifted at ingest so the sample is fresh on whatever day the demo runs."""
    for tier in ("free", "pro", "enterprise"):
        key = new_key(demo["data"], tier, "t@example.org")
        body = httpx.get(demo["base"] + "/api/v1/iocs", headers={"X-API-Key": key}).json()
        assert body["meta"]["total"] > 0, tier
        assert body["data"], tier


def test_sample_covers_every_type_and_category(demo):
    headers = {"X-API-Key": demo["key"]}
    total = httpx.get(demo["base"] + "/api/v1/iocs", headers=headers).json()["meta"]["total"]
    assert total >= 200
    for type_ in IOC_TYPES:
        body = httpx.get(
            demo["base"] + "/api/v1/iocs", headers=headers, params={"type": type_, "limit": "1"}
        ).json()
        assert body["meta"]["total"] >= 5, type_
    for category in CATEGORIES:
        body = httpx.get(
            demo["base"] + "/api/v1/iocs",
            headers=headers,
            params={"category": category, "limit": "1"},
        ).json()
        assert body["meta"]["total"] > 0, category


def test_sample_feeds_match_configured_sources():
    ids = {s.id for s in load_sources()}
    files = sorted(p.stem for p in SAMPLE_DIR.glob("*.xml"))
    assert len(files) >= 8 and set(files) <= ids
    categories = {s.category for s in load_sources() if s.id in files}
    assert categories == set(CATEGORIES)
    assert len(ids) >= 30
