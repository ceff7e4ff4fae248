"""Deploy files: the Netlify build script produces the site, the feed files and the API proxy;
netlify.toml's headers match what the worker itself sends."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

from generator.store.synthetic import synthetic_store
from tests.conftest import ROOT
from worker import http
from worker.endpoints import site

NOW = 1_795_000_000


def netlify() -> dict:
    return tomllib.loads((ROOT / "netlify.toml").read_text())


def headers_for(path: str) -> dict[str, str]:
    return next(h["values"] for h in netlify()["headers"] if h["for"] == path)


def test_netlify_build_script_writes_site_feed_files_and_proxy(tmp_path):
    data, out = tmp_path / "data", tmp_path / "public"
    synthetic_store(str(data / "store"), 300, now=NOW, days=5)
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "SOCDEF_SKIP_INSTALL": "1",
        "SOCDEF_SKIP_INGEST": "1",
        "SOCDEF_DATA_DIR": str(data),
        "SOCDEF_PUBLISH_DIR": str(out),
        "SOCDEF_API_ORIGIN": "https://api.example.org/",
    }
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "netlify-build.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for page in ("index.html", "docs/index.html", "docs/api/index.html", "static/site.css"):
        assert (out / page).is_file(), page
    assert (out / "current.json").is_file() and any((out / "objects").rglob("*"))
    rules = (out / "_redirects").read_text().split("\n")
    assert "/api/*    https://api.example.org/api/:splat    200" in rules


def test_netlify_build_script_refuses_a_missing_or_bad_origin(tmp_path):
    env = {**os.environ, "SOCDEF_SKIP_INSTALL": "1", "SOCDEF_PUBLISH_DIR": str(tmp_path / "p")}
    env.pop("SOCDEF_API_ORIGIN", None)
    for origin in (None, "api.example.org"):
        if origin:
            env["SOCDEF_API_ORIGIN"] = origin
        result = subprocess.run(
            ["bash", str(ROOT / "deploy" / "netlify-build.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0 and "SOCDEF_API_ORIGIN" in result.stderr
        assert not (tmp_path / "p").exists()


def test_netlify_headers_match_the_worker():
    assert netlify()["build"]["publish"] == "public"
    assert headers_for("/*.html")["Content-Security-Policy"] == site.CSP
    assert headers_for("/*")["Cache-Control"] == http.PUBLIC
    assert "immutable" in headers_for("/objects/*")["Cache-Control"]
    assert "immutable" in headers_for("/builds/*")["Cache-Control"]
    assert "must-revalidate" in headers_for("/current.json")["Cache-Control"]
