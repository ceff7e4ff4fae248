"""Hostile and unusual requests against a real ``socdef serve``: each is answered in the spec's
error shape (TAXII's on TAXII routes), never with a 500, and no credential reaches the log."""

from __future__ import annotations

import json
import logging
import subprocess
import time
import urllib.request

import httpx
import pytest

from tests.conftest import running_server, socdef
from tests.support import new_key, published, serving
from worker.app import RedactingFilter
from worker.contract import taxii_common as tc

COOKIE = "sb-access-token"
COLLECTION = f"/api/taxii2/api/collections/{tc.collection_id('all')}/"
# valid ISO 8601, but outside the years 1-9999 once moved to UTC
OUT_OF_RANGE = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")
DATED = [
    ("/api/v1/iocs", "since"),
    ("/api/v1/iocs", "until"),
    ("/api/v1/iocs/stix", "since"),
    ("/api/v1/iocs/misp", "since"),
    ("/api/v1/iocs/cef", "since"),
    ("/api/v1/iocs/openioc", "since"),
]
TAXII_DATED = [
    (COLLECTION + "objects/", "added_after"),
    (COLLECTION + "objects/", "match[version]"),
    (COLLECTION + "manifest/", "added_after"),
    (COLLECTION + "manifest/", "match[version]"),
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data = published(tmp_path_factory.mktemp("faults"), iocs=300, days=10)
    socdef("users", "set-tier", "owner@example.org", "enterprise", data_dir=data)
    return data


@pytest.fixture(scope="module")
def key(data_dir) -> str:
    return new_key(data_dir, "enterprise", "reader@example.org")


@pytest.fixture(scope="module")
def server(data_dir, tmp_path_factory):
    yield from serving(data_dir, tmp_path_factory, "--access-log", "--limit-scale", "100")


def assert_error(resp: httpx.Response, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    error = resp.json()["error"]
    assert error["code"] == code and error["message"]
    assert error["request_id"] == resp.headers["x-request-id"]
    return error


def assert_taxii_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == tc.TAXII_MEDIA_TYPE
    error = resp.json()
    assert error["http_status"] == str(status) and error["title"]
    assert error["error_id"] == resp.headers["x-request-id"]
    return error


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(("path", "name"), DATED)
def test_dates_out_of_range_are_a_400(server, key, path, name, value):
    resp = httpx.get(
        server.url + path,
        params={name: value},
        timeout=30,
        # the CEF route answers errors as text unless asked for JSON (docs/formats/devices.md)
        headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
    )
    error = assert_error(resp, 400, "invalid_parameter")
    assert error["details"] == {"parameter": name, "value": value}


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(("path", "name"), TAXII_DATED)
def test_taxii_dates_out_of_range_are_a_taxii_400(server, key, path, name, value):
    resp = httpx.get(
        server.url + path,
        params={name: value},
        timeout=30,
        headers={"Authorization": f"Bearer {key}"},
    )
    error = assert_taxii_error(resp, 400)
    assert error["details"] == {"parameter": name, "value": value}


@pytest.fixture(scope="module")
def session(data_dir) -> dict[str, str]:
    token = socdef("session", "create", "--user", "owner@example.org", data_dir=data_dir)
    return {COOKIE: token.stdout.strip()}


def write(server, method: str, path: str, session, headers=None, **kw) -> httpx.Response:
    """A cookie-authenticated write as a same-origin page makes it (``headers`` on top)."""
    sent = {
        "Origin": server.url,
        "Sec-Fetch-Site": "same-origin",
        "Content-Type": "application/json",
        **(headers or {}),
    }
    sent = {k: v for k, v in sent.items() if v is not None}
    with httpx.Client(base_url=server.url, cookies=session, timeout=30) as client:
        return client.request(method, path, headers=sent, **kw)


@pytest.mark.parametrize("depth", [5_000, 60_000])
def test_deeply_nested_key_body_is_a_400(server, session, depth):
    resp = write(server, "POST", "/api/v1/keys", session, content=b'{"name":' + b"[" * depth)
    assert_error(resp, 400, "invalid_body")


def test_every_api_answer_says_nosniff(server, key, session):
    bearer = {"Authorization": f"Bearer {key}"}
    answers = [
        httpx.get(server.url + "/api/v1/iocs", headers=bearer, timeout=30) for _ in range(3)
    ]  # the repeats come from the kept answer (the hot path)
    answers += [
        httpx.get(server.url + "/api/v1/iocs", timeout=30),
        httpx.get(server.url + "/api/v1/iocs", params={"since": "x"}, headers=bearer),
        httpx.get(server.url + COLLECTION + "objects/", headers=bearer, timeout=30),
        httpx.get(server.url + "/api/v1/keys", cookies=session, timeout=30),
        httpx.get(server.url + "/healthz", timeout=30),
        httpx.get(server.url + "/docs/", timeout=30),
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 401, 400, 200, 200, 200, 200]
    for resp in answers:
        assert resp.headers.get_list("x-content-type-options") == ["nosniff"], resp.url


def test_a_401_challenges_bearer_and_basic(server):
    resp = httpx.get(server.url + "/api/v1/iocs", timeout=30)
    assert_error(resp, 401, "missing_api_key")
    assert resp.headers.get_list("www-authenticate") == ['Basic realm="socdef", Bearer']
    bad = httpx.get(server.url + "/api/v1/iocs/stix", headers={"X-API-Key": "sk_live_nope"})
    assert_error(bad, 401, "invalid_api_key")
    assert "www-authenticate" in bad.headers


def test_wget_user_and_password_answer_the_challenge(server, key, tmp_path):
    """wget sends ``--user``/``--password`` only after a ``Basic`` challenge."""
    out = tmp_path / "iocs.json"
    done = subprocess.run(
        [
            "wget",
            "-q",
            "--user",
            "siem",
            "--password",
            key,
            "-O",
            str(out),
            server.url + "/api/v1/iocs?limit=5",
        ],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(out.read_bytes())["data"]) == 5


@pytest.mark.parametrize(
    "media",
    [
        "text/plain; charset=json",
        "application/x-www-form-urlencoded; a=json",
        "application/jsonx",
        "text/json",
        "multipart/form-data; json",
    ],
)
def test_cookie_writes_need_the_json_media_type(server, session, media):
    resp = write(
        server,
        "POST",
        "/api/v1/keys",
        session,
        headers={"Content-Type": media},
        content=b'{"name": "from a form"}',
    )
    assert assert_error(resp, 400, "invalid_body")["details"] == {"content_type": media}


@pytest.mark.parametrize("media", ["application/json", "Application/JSON; charset=utf-8"])
def test_cookie_writes_take_json_with_parameters(server, session, media):
    resp = write(
        server,
        "POST",
        "/api/v1/keys",
        session,
        headers={"Content-Type": media},
        content=b'{"name": "json"}',
    )
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": None, "Sec-Fetch-Site": None},
        {"Origin": "null", "Sec-Fetch-Site": None},
        {"Origin": None, "Sec-Fetch-Site": "none"},
        {"Origin": None, "Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_cookie_writes_need_a_same_origin_sign(server, session, headers):
    made = write(server, "POST", "/api/v1/keys", session, headers=headers, json={"name": "csrf"})
    assert_error(made, 403, "cross_site_request")
    revoked = write(server, "DELETE", "/api/v1/keys/key_nope", session, headers=headers)
    assert_error(revoked, 403, "cross_site_request")


@pytest.mark.parametrize("headers", [{"Origin": None}, {"Sec-Fetch-Site": None}])
def test_either_same_origin_sign_is_enough(server, session, headers):
    made = write(server, "POST", "/api/v1/keys", session, headers=headers, json={"name": "ok"})
    assert made.status_code == 201, made.text
    key_id = made.json()["data"]["id"]
    revoked = write(server, "DELETE", f"/api/v1/keys/{key_id}", session, headers=headers)
    assert revoked.status_code == 200, revoked.text


@pytest.fixture(scope="module", params=["rsgi", "asgi"])
def logging_server(request, data_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "server.log"
    with running_server(data_dir, log, "--access-log", "--interface", request.param) as srv:
        yield srv


def logged(server, *responses: httpx.Response) -> str:
    """The server's log once every answer's access line is in it."""
    ids = [r.headers["x-request-id"] for r in responses]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = server.log()
        if all(i in log for i in ids):
            return log
        time.sleep(0.05)
    raise AssertionError(f"access lines missing from the log:\n{server.log()}")


# ``%5F`` is ``_``, ``%61`` is ``a``: each name decodes to ``api_key`` and authenticates
ENCODED_NAMES = ["api%5Fkey", "api%5fkey", "%61pi_key", "%61%70%69%5F%6B%65%79", "api_key"]


def test_no_credential_reaches_the_access_log(logging_server, key):
    url = logging_server.url + "/api/v1/iocs"
    answers = [httpx.get(f"{url}?limit=1&{name}={key}", timeout=30) for name in ENCODED_NAMES]
    assert [r.status_code for r in answers] == [200] * len(ENCODED_NAMES)
    answers += [
        httpx.get(f"{url}?api_key={key}x&%61pi_key={key}y&limit=2", timeout=30),  # 401
        httpx.get(f"{url}?api%5Fkey={key}", timeout=30, headers={"X-API-Key": key}),
        httpx.get(url, timeout=30, headers={"X-API-Key": key}),
        httpx.get(url, timeout=30, auth=("siem", key)),
    ]
    for _ in range(3):  # kept answers: the hot path logs these
        answers.append(
            httpx.get(
                f"{url}?api%5Fkey={key}", timeout=30, headers={"Authorization": f"Bearer {key}"}
            )
        )
    assert [r.status_code for r in answers[len(ENCODED_NAMES) :]] == [401] + [200] * 6
    log = logged(logging_server, *answers)
    assert key not in log and key[8:] not in log and key[-12:] not in log
    for name in ENCODED_NAMES:
        assert f"{name}=[redacted]" in log


def test_log_records_lose_encoded_credentials_whoever_writes_them():
    record = logging.LogRecord(
        "granian.access",
        logging.INFO,
        __file__,
        1,
        'GET "/x?%%61pi_key=%s&api%%5Fkey=%s&limit=1" 200',
        ("s1", "s2"),
        None,
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == 'GET "/x?%61pi_key=[redacted]&api%5Fkey=[redacted]&limit=1" 200'


def test_urllib_basic_auth_handler_answers_the_challenge(server, key):
    """Python's HTTPBasicAuthHandler, like wget, sends the password only when challenged."""
    url = server.url + "/api/v1/iocs?limit=3"
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, server.url, "siem", key)
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
    with opener.open(url, timeout=30) as resp:
        assert resp.status == 200 and len(json.loads(resp.read())["data"]) == 3
