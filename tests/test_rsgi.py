"""The worker over granian's RSGI interface answers exactly as over ASGI.

Two real granian servers on 127.0.0.1 run the same published build with the same keys, one
with ``--interface asgi`` (``worker.config:app_from_env``), one with ``--interface rsgi``
(``worker.rsgi:rsgi_from_env``); each has its own limiter and usage databases, so the same
requests in the same order must get the same status, headers (apart from ``Date`` and the
request id) and body from both: first and repeated (hot path) polls, HEAD, gzip and brotli,
304, every error status, request bodies, TAXII pages, and the access log with ``api_key=``
redacted.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.conftest import (
    ROOT,
    in_one_minute,
    poll_until,
    reserved_port,
    stop_process,
    wait_for_room_in_minute,
    wait_http,
)
from worker.access.keys import KeyStore, load_or_create_secret
from worker.access.session import mint
from worker.config import WorkerConfig, session_secret
from worker.contract import taxii_common as tc
from worker.rsgi import _Exchange, asgi_scope, hot_inputs

IOCS = "/api/v1/iocs"
OBJECTS = f"/api/taxii2/api/collections/{tc.collection_id('all')}/objects/"
VARYING = ("date", "x-request-id")
TARGETS = {"asgi": "worker.config:app_from_env", "rsgi": "worker.rsgi:rsgi_from_env"}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("rsgi-build")
    return support.published(data, iocs=400, days=20, now=int(time.time()) - 60)


@pytest.fixture(scope="module")
def keys(published, tmp_path_factory) -> dict[str, str]:
    """A key per tier, made once; each server's data folder gets a copy of the same records."""
    data = tmp_path_factory.mktemp("rsgi-keys")
    store = KeyStore(data / "keys.sqlite", load_or_create_secret(data / "secret.key"))
    made = {
        tier: store.create(f"{tier}@example.org", tier)[0] for tier in ("free", "pro", "enterprise")
    }
    for n in range(3):  # one per run of a limit sequence (in_one_minute)
        made[f"limited{n}"] = store.create(f"limited{n}@example.org", "free")[0]
    made["flush"], flush = store.create("flush@example.org", "free")
    made["flush_id"] = flush.id
    store.close()
    session_secret(WorkerConfig.for_data_dir(data))  # the session key both servers share
    made["dir"] = str(data)
    return made


class Granian:
    """granian (1 process) serving the worker over one interface, its log in a file.

    granian binds with SO_REUSEPORT and cannot announce a port 0 it bound, so the port is
    reserved here first (``tests.conftest.reserved_port``) and held for the server's life."""

    def __init__(self, interface: str, data: Path, bucket: Path, log: Path) -> None:
        config = WorkerConfig.for_data_dir(data, bucket=str(bucket), access_log=True)
        self.data = data
        self.reserved = reserved_port()
        self.port = self.reserved.getsockname()[1]
        self.log_path = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "granian",
                    "--interface",
                    interface,
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                    "--no-ws",
                    "--log-level",
                    "warning",
                    TARGETS[interface],
                ],
                cwd=ROOT,
                env={**os.environ, **config.to_env()},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/healthz", self.proc)

    def stop(self) -> None:
        stop_process(self.proc)
        self.reserved.close()

    def access(self) -> list[str]:
        """The whole access-log lines written so far (a line still being written is left out)."""
        text = self.log_path.read_text(errors="replace")
        whole = text[: text.rfind("\n") + 1].splitlines()
        return [line.split(" socdef.access ", 1)[1] for line in whole if " socdef.access " in line]


@pytest.fixture(scope="module")
def servers(published, keys, tmp_path_factory) -> Iterator[dict[str, Granian]]:
    started: dict[str, Granian] = {}
    try:
        for interface in TARGETS:
            data = tmp_path_factory.mktemp(f"rsgi-{interface}")
            for name in ("keys.sqlite", "secret.key", "session.key"):
                shutil.copy(Path(keys["dir"]) / name, data / name)
            started[interface] = Granian(interface, data, published / "bucket", data / "server.log")
        yield started
    finally:
        for server in started.values():
            server.stop()


def both(servers: dict[str, Granian], method: str, path: str, **kwargs) -> httpx.Response:
    """The request on both servers; their answers must be the same. Returns the RSGI one."""
    wait_for_room_in_minute(1.5)  # no minute boundary between the two servers' answers
    headers = httpx.Headers(kwargs.pop("headers", None))
    headers.setdefault("host", "feeds.test")  # links in the answers name the Host
    answers = {
        name: httpx.request(method, server.url + path, headers=headers, timeout=10, **kwargs)
        for name, server in servers.items()
    }
    asgi, rsgi = answers["asgi"], answers["rsgi"]
    assert rsgi.status_code == asgi.status_code, (method, path, asgi.text, rsgi.text)
    assert _headers(rsgi) == _headers(asgi), (method, path)
    assert _body(rsgi) == _body(asgi), (method, path)
    return rsgi


def _body(resp: httpx.Response) -> bytes:
    """The body with the request id (an error names it) replaced by a mark."""
    request_id = resp.headers["x-request-id"]
    assert re.fullmatch(r"req_[0-9a-f]{16}", request_id)
    return resp.content.replace(request_id.encode(), b"req_ID")


def _headers(resp: httpx.Response) -> list[tuple[str, str]]:
    out = []
    for name, value in resp.headers.multi_items():
        if name in VARYING:
            continue
        # seconds to the window's end: the two answers may fall on either side of a second
        if name == "ratelimit":
            value = re.sub(r";t=\d+", "", value)
        elif name == "retry-after":
            value = "seconds" if value.isdigit() else value
        out.append((name, value))
    # compared as a set: a kept answer (hot path) carries the rate-limit headers after Vary, the
    # full path before it, and one server may take the full path where the other took the hot
    # one (its key cache entry, 5 s, expired in between on a loaded machine)
    return sorted(out)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_polls_first_and_repeated_with_every_coding(servers, keys) -> None:
    auth = bearer(keys["enterprise"])
    first = both(servers, "GET", IOCS, headers={**auth, "Accept-Encoding": "identity"})
    assert first.status_code == 200 and first.json()
    for coding in ("identity", "gzip", "br", "gzip, br"):
        for _ in range(3):  # the first is the full path, the others the hot path
            resp = both(servers, "GET", IOCS, headers={**auth, "Accept-Encoding": coding})
            assert resp.status_code == 200
    head = both(servers, "HEAD", IOCS, headers={**auth, "Accept-Encoding": "identity"})
    assert head.content == b"" and int(head.headers["content-length"]) == len(first.content)
    zipped = both(servers, "GET", IOCS, headers={**auth, "Accept-Encoding": "gzip"})
    for coding, etag in (("identity", first.headers["etag"]), ("gzip", zipped.headers["etag"])):
        for _ in range(3):
            again = both(
                servers,
                "GET",
                IOCS,
                headers={**auth, "Accept-Encoding": coding, "If-None-Match": etag},
            )
            assert (again.status_code, again.headers["etag"]) == (304, etag)
    for query in ({"limit": "5"}, {"type": "domain", "limit": "3"}, {"limit": "abc"}):
        for _ in range(2):
            both(servers, "GET", IOCS, headers=auth, params=query)


def test_errors_are_the_same(servers, keys) -> None:
    assert both(servers, "GET", IOCS).status_code == 401
    assert both(servers, "GET", IOCS, headers=bearer("sk_live_nope")).status_code == 401
    assert both(servers, "GET", IOCS, headers={"X-API-Key": keys["pro"]}).status_code == 200
    assert both(servers, "GET", "/api/v1/iocs/cef", headers=bearer(keys["pro"])).status_code == 403
    assert both(servers, "GET", "/nowhere", headers=bearer(keys["pro"])).status_code == 404
    assert both(servers, "DELETE", IOCS, headers=bearer(keys["pro"])).status_code == 405
    taxii = {**bearer(keys["pro"]), "Accept": "text/html"}
    assert both(servers, "GET", OBJECTS, headers=taxii).status_code == 406
    assert (
        both(
            servers, "GET", OBJECTS, headers=bearer(keys["pro"]), params={"limit": "zero"}
        ).status_code
        == 400
    )
    two = [("Authorization", f"Bearer {keys['pro']}"), ("Authorization", "Bearer sk_live_x")]
    both(servers, "GET", IOCS, headers=two)
    fresh = iter(keys[f"limited{n}"] for n in range(3))

    def twelve() -> list[int]:  # a key of its own each run: its minute starts empty
        limited = bearer(next(fresh))
        return [both(servers, "GET", IOCS, headers=limited).status_code for _ in range(12)]

    statuses = in_one_minute(twelve)
    assert statuses[:10] == [200] * 10 and statuses[10:] == [429, 429]  # free: 10 a minute


def test_taxii_pages_and_basic_auth(servers, keys) -> None:
    basic = {
        "Authorization": "Basic " + base64.b64encode(f":{keys['pro']}".encode()).decode(),
        "Accept": tc.TAXII_MEDIA_TYPE,
    }
    page = both(servers, "GET", OBJECTS, headers=basic, params={"limit": "20"})
    assert page.status_code == 200 and page.json()["more"]
    for _ in range(3):
        both(
            servers,
            "GET",
            OBJECTS,
            headers=basic,
            params={"limit": "20", "next": page.json()["next"]},
        )
    assert both(servers, "GET", "/api/taxii2/").status_code == 200
    assert both(servers, "GET", OBJECTS, headers={"Accept": tc.TAXII_MEDIA_TYPE}).status_code == 401


def test_request_bodies_reach_the_app(servers, keys) -> None:
    token = mint(
        "owner@example.org", Path(keys["dir"], "session.key").read_bytes(), now=time.time()
    )
    cookie = {
        "Cookie": f"sb-access-token={token}",
        "Content-Type": "application/json",
        "Sec-Fetch-Site": "same-origin",
    }
    made = {
        name: httpx.post(
            server.url + "/api/v1/keys", headers=cookie, content=b'{"name": "ci"}', timeout=10
        )
        for name, server in servers.items()
    }
    assert made["asgi"].status_code == made["rsgi"].status_code == 201, made["rsgi"].text
    assert made["rsgi"].json()["data"]["name"] == "ci"
    both(
        servers,
        "POST",
        "/api/v1/keys",
        headers={**cookie, "Sec-Fetch-Site": "cross-site"},
        content=b'{"name": "x"}',
    )
    both(servers, "POST", "/api/v1/keys", headers=cookie, content=b"{not json")
    assert (
        both(
            servers, "POST", "/api/v1/keys", headers=cookie, content=b"x" * (70 * 1024)
        ).status_code
        == 413
    )
    for server in servers.values():  # each made a key of its own (ids and secrets differ)
        listed = httpx.get(server.url + "/api/v1/keys", headers=cookie, timeout=10)
        assert listed.status_code == 200 and [k["name"] for k in listed.json()["data"]] == ["ci"]


def test_access_log_lines_match_and_api_key_is_redacted(servers, keys) -> None:
    before = {name: len(server.access()) for name, server in servers.items()}
    both(servers, "GET", IOCS, params={"api_key": keys["pro"], "limit": "2"})
    both(servers, "GET", IOCS, params={"api_key": keys["pro"] + "x"})
    for _ in range(2):
        both(servers, "GET", IOCS + "?limit=4", headers=bearer(keys["pro"]))

    # The log is flushed once a second, so an earlier test's last line may still land after
    # ``before``: this test's lines are the ones naming its four requests.
    mine = re.compile(r'"GET /api/v1/iocs\?(?:api_key=\[redacted\](?:&limit=2)?|limit=4)" ')

    def logged() -> dict[str, list[str]] | None:  # this test's four lines in each log
        got = {
            name: [line for line in server.access()[before[name] :] if mine.search(line)]
            for name, server in servers.items()
        }
        return got if all(len(got[name]) >= 4 for name in got) else None

    lines = poll_until(logged, what="the four requests in both access logs")
    for name, found in lines.items():
        assert found and all(keys["pro"] not in line for line in found), name
        assert any("api_key=[redacted]" in line for line in found), name

    def shape(line: str) -> str:  # the client's port, the timing and the id differ
        return re.sub(r" [\d.]+ms req_[0-9a-f]{16}$", "", line)

    assert [shape(x) for x in lines["rsgi"]] == [shape(x) for x in lines["asgi"]]


class _Headers:
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


class _Scope:
    proto = "http"
    http_version = "1.1"
    server = "127.0.0.1:8000"
    client = "[::1]:5000"
    scheme = "http"
    method = "GET"

    def __init__(self, path: str, query: str, headers: list[tuple[str, str]]) -> None:
        self.path, self.query_string, self.headers = path, query, _Headers(headers)


@pytest.mark.parametrize(
    "headers,query",
    [
        (
            [
                ("host", "a.test"),
                ("authorization", "Bearer sk_live_abc"),
                ("accept-encoding", "br"),
            ],
            "",
        ),
        ([("authorization", "Token  sk_live_abc "), ("accept", "application/json")], "limit=5"),
        ([("authorization", "Basic " + base64.b64encode(b"u:sk_live_p").decode())], ""),
        ([("authorization", "Basic " + base64.b64encode(b"sk_live_u:").decode())], ""),
        ([("authorization", "Basic !!!")], ""),
        ([("authorization", "Digest x")], ""),
        ([("authorization", "Bearer a"), ("authorization", "Bearer b")], ""),
        ([("host", "a"), ("host", "b"), ("authorization", "Bearer a")], ""),
        ([("authorization", "Bearer a"), ("if-none-match", '"x"'), ("if-none-match", '"y"')], ""),
        ([("authorization", "Bearer a")], "API_KEY=x"),
        ([("host", "h\u00e9.test"), ("authorization", "Bearer a")], "q=%C3%A9"),
        ([], ""),
    ],
)
def test_hot_inputs_match_the_asgi_scope_the_adapter_builds(headers, query) -> None:
    from worker.app import hot_inputs as asgi_hot_inputs

    scope = _Scope("/api/v1/iocs", query, headers)
    assert hot_inputs(scope) == asgi_hot_inputs(asgi_scope(scope))
    assert asgi_scope(scope)["client"] == ("::1", 5000)


class _Protocol:
    """An RSGI protocol object that records what it is given."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent: list[tuple] = []
        self.streamed: list[bytes] = []

    def __aiter__(self):
        return self._iter()

    async def _iter(self):
        for chunk in self.chunks:
            yield chunk

    async def client_disconnect(self) -> None:
        return None

    def response_bytes(self, status: int, headers: list, body: bytes) -> None:
        self.sent.append((status, headers, body))

    def response_stream(self, status: int, headers: list):
        self.sent.append((status, headers, None))
        protocol = self

        class Transport:
            async def send_bytes(self, data: bytes) -> None:
                protocol.streamed.append(data)

        return Transport()


def test_the_adapter_reads_bodies_and_streams() -> None:
    protocol = _Protocol([b"ab", b"cd"])
    exchange = _Exchange(protocol)

    async def run() -> list[dict]:
        got = [await exchange.receive() for _ in range(3)]
        await exchange.send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"x-a", b"caf\xc3\xa9"), (b"x-b", b"\xe9")],
            }
        )
        await exchange.send({"type": "http.response.body", "body": b"1", "more_body": True})
        await exchange.send({"type": "http.response.body", "body": b"2", "more_body": False})
        return got

    got = asyncio.run(run())
    assert [m["body"] for m in got] == [b"ab", b"cd", b""]
    assert [m["more_body"] for m in got] == [True, True, False]
    assert protocol.sent == [(201, [("x-a", "caf\u00e9"), ("x-b", "\u00e9")], None)]
    assert protocol.streamed == [b"1", b"2"]
    one = _Protocol([])
    whole = _Exchange(one)

    async def single() -> None:
        assert (await whole.receive())["more_body"] is False
        assert (await whole.receive())["type"] == "http.disconnect"
        await whole.send({"type": "http.response.start", "status": 200, "headers": []})
        await whole.send({"type": "http.response.body", "body": b"done"})

    asyncio.run(single())
    assert one.sent == [(200, [], b"done")] and one.streamed == []


def test_socdef_serve_runs_rsgi_under_granian_and_asgi_under_uvicorn(
    tmp_path, monkeypatch, capsys
) -> None:
    import granian.server
    import uvicorn
    from granian.constants import Interfaces

    from generator import runtime
    from generator.settings import Settings

    seen: dict[str, object] = {}

    class Recorder:
        def __init__(self, target: str, **options: object) -> None:
            seen.update(options, target=target)

        def on_startup(self, hook) -> None:
            seen["startup"] = hook

        def serve(self) -> None:
            seen["served"] = True

    monkeypatch.setattr(granian.server, "Server", Recorder)
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: seen.update(uvicorn=target))
    for name in [n for n in os.environ if n.startswith("SOCDEF_WORKER_")]:
        monkeypatch.delenv(name)  # run_server exports its settings: restored afterwards
    settings = Settings(data_dir=tmp_path)
    options = {
        "host": "127.0.0.1",
        "port": 0,
        "workers": 1,
        "limiter": "memory",
        "access_log": False,
    }
    runtime.run_server(settings, **options)
    assert seen["target"] == "worker.rsgi:rsgi_from_env" and seen["interface"] == Interfaces.RSGI
    assert seen["served"] is True and seen["factory"] is True
    assert seen["port"] != 0  # --port 0: a free port is picked (and held) before granian starts
    seen["startup"]()
    assert capsys.readouterr().out.endswith(f"listening on http://127.0.0.1:{seen['port']}\n")
    runtime.run_server(settings, **options, server="uvicorn")
    assert seen["uvicorn"] == "worker.config:app_from_env"


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_cached_key_lookup_honours_revocation_expiry_and_freshness(tmp_path) -> None:
    clock = _Clock()
    store = KeyStore(tmp_path / "keys.sqlite", b"s" * 32, clock=clock, cache_ttl=5)
    key, record = store.create("ana@example.org", "pro", expires_in_days=1)
    presented = key.encode()
    assert store.cached(presented) is None  # never authenticated: not in the cache
    assert store.authenticate(key).key is not None
    assert store.cached(presented).id == record.id
    clock.now += 6  # stale entry: the full path authenticates again
    assert store.cached(presented) is None
    assert store.authenticate(key).key is not None and store.cached(presented) is not None
    clock.now = record.created_at + 86_400  # expired
    assert store.cached(presented) is None
    other, _ = store.create("bo@example.org", "pro")
    assert store.authenticate(other).key is not None and store.cached(other.encode())
    store.revoke(store.authenticate(other).key.id)
    assert store.cached(other.encode()) is None
    assert store.authenticate(other).error == "revoked" and store.cached(other.encode()) is None
    assert store.cached(b"sk_live_" + b"x" * 38) is None
    store.close()


def test_request_ids_are_unique_and_a_forked_child_draws_its_own() -> None:
    from worker.http import new_request_id

    ids = {new_request_id() for _ in range(5_000)}
    assert len(ids) == 5_000 and all(re.fullmatch(r"req_[0-9a-f]{16}", i) for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's buffered ids must not come out here
        os.write(write, " ".join(new_request_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    parent = {new_request_id() for _ in range(100)}
    assert len(child) == 100 and not child & parent


def test_usage_rows_are_flushed_by_the_periodic_task(servers, keys) -> None:
    import sqlite3

    def rows(server: Granian) -> int:  # of the key this test alone uses
        with sqlite3.connect(server.data / "usage.sqlite") as db:
            return db.execute(
                "SELECT coalesce(sum(n), 0) FROM usage WHERE key_id = ?", (keys["flush_id"],)
            ).fetchone()[0]

    assert {name: rows(server) for name, server in servers.items()} == {"asgi": 0, "rsgi": 0}
    both(servers, "GET", IOCS, headers=bearer(keys["flush"]))
    # no request after it: only the once-a-second flush can write its row
    poll_until(
        lambda: all(rows(server) == 1 for server in servers.values()),
        what="the request's usage row on both servers",
    )
