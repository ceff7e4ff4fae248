"""``socdef serve --port 0``: the server binds a free port itself and names it on stdout, with a
warning line first when its folder bucket holds no published build."""

from __future__ import annotations

import httpx
import pytest

from tests import support
from tests.conftest import LISTENING, announced, running_server


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    return support.published(tmp_path_factory.mktemp("port0"), iocs=50, days=3)


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("--workers", "2"),
        ("--interface", "asgi"),
        ("--server", "uvicorn"),
        ("--server", "uvicorn", "--workers", "2"),
    ],
    ids=["granian", "granian-2", "granian-asgi", "uvicorn", "uvicorn-2"],
)
def test_port_0_names_the_bound_port(tmp_path, extra):
    log = tmp_path / "server.log"
    with running_server(tmp_path / "empty", log, *extra) as server:
        port = int(server.url.rsplit(":", 1)[1])
        assert port > 0
        # every process of the server answers on the named port (granian binds one socket per
        # worker): many requests reach both workers' sockets, none is refused
        answers = [httpx.get(f"{server.url}/healthz", timeout=5) for _ in range(20)]
        assert {a.status_code for a in answers} == {503}  # answering, nothing published
        lines = server.log().splitlines()
        warning = next(i for i, line in enumerate(lines) if line.startswith("warning: "))
        assert "no published build" in lines[warning] and "socdef publish" in lines[warning]
        assert lines.index(f"listening on {server.url}") > warning


def test_a_published_bucket_gives_no_warning(tmp_path, published):
    log = tmp_path / "server.log"
    with running_server(published, log) as server:
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        text = server.log()
        assert f"listening on {server.url}\n" in text and "warning" not in text


def test_two_servers_on_port_0_get_two_ports(tmp_path, published):
    with (
        running_server(published, tmp_path / "a.log") as one,
        running_server(published, tmp_path / "b.log") as two,
    ):
        assert one.url != two.url
        for server in (one, two):
            assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
            assert announced(server.log_path, server.proc, LISTENING).group(1) == server.url
