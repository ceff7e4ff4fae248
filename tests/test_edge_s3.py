"""Large downloads from S3: ``socdef serve --redirect-large MB`` answers a download of at least
MB megabytes with a 307 to a short-lived presigned URL of the object (moto in server mode), after
the key and the limits were checked; smaller answers are still sent by the worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import Server, in_one_minute, socdef, start_server, stop_server
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from tests.support import bearer, new_key, published

DOWNLOAD = "/feeds/misp/hashes.csv"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, moto_s3) -> Iterator[tuple[Server, Server, object]]:
    data = published(tmp_path_factory.mktemp("edge-s3"), iocs=2_000, days=60)
    bucket = moto_s3.new_bucket()
    socdef("publish", "--to", f"s3://{bucket}/feeds", data_dir=data, env=moto_s3.env)
    env = {**moto_s3.env, "SOCDEF_BUCKET": f"s3://{bucket}/feeds"}
    logs = tmp_path_factory.mktemp("logs")
    # hashes.csv of 2,000 indicators is ~140 kB: over 0.1 MB, the default poll (~57 kB) is not
    redirecting = start_server(
        data, logs / "s3.log", "--redirect-large", "0.1", "--redirect-seconds", "30", env=env
    )
    plain = start_server(data, logs / "plain.log")
    yield redirecting, plain, data
    for server in (redirecting, plain):
        stop_server(server)


def test_a_large_download_is_a_redirect_to_a_presigned_url(setup, moto_s3):
    redirecting, plain, data = setup
    key = new_key(data, "enterprise")
    moved = httpx.get(redirecting.url + DOWNLOAD, headers=bearer(key))
    assert moved.status_code == 307 and moved.content == b""
    for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "ratelimit", "x-request-id"):
        assert name in moved.headers, name
    location = moved.headers["location"]
    assert location.startswith(moto_s3.endpoint + "/")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["30"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    fetched = httpx.get(location)  # no key, no AWS credentials: the URL alone grants it
    assert fetched.status_code == 200
    alone = httpx.get(plain.url + DOWNLOAD, headers={**bearer(key), "Accept-Encoding": "identity"})
    assert fetched.content == alone.content and len(alone.content) > 100_000
    following = httpx.get(redirecting.url + DOWNLOAD, headers=bearer(key), follow_redirects=True)
    assert following.content == alone.content


def test_a_client_that_refuses_compression_gets_the_text_from_the_worker(setup, moto_s3):
    """The download is stored gzip-compressed and S3 sends it so: a client that refuses
    compression is not redirected there but gets the text from the worker."""
    redirecting, plain, data = setup
    key = new_key(data, "enterprise")
    identity = {**bearer(key), "Accept-Encoding": "identity"}
    kept = httpx.get(redirecting.url + DOWNLOAD, headers=identity)
    assert kept.status_code == 200 and "content-encoding" not in kept.headers
    alone = httpx.get(plain.url + DOWNLOAD, headers=identity)
    assert kept.content == alone.content and len(kept.content) > 100_000
    moved = httpx.get(
        redirecting.url + DOWNLOAD, headers={**bearer(key), "Accept-Encoding": "gzip"}
    )
    assert moved.status_code == 307
    fetched = httpx.get(moved.headers["location"], headers={"Accept-Encoding": "gzip"})
    assert fetched.headers["content-encoding"] == "gzip" and fetched.content == alone.content


def test_each_redirect_is_signed_anew(setup):
    """A presigned URL expires, so the worker never keeps one for its hot path."""
    redirecting, _, data = setup
    key = new_key(data, "enterprise")
    first = httpx.get(redirecting.url + DOWNLOAD, headers=bearer(key)).headers["location"]
    time.sleep(1.1)  # X-Amz-Date has whole seconds
    second = httpx.get(redirecting.url + DOWNLOAD, headers=bearer(key)).headers["location"]
    assert first != second
    date = parse_qs(urlsplit(second).query)["X-Amz-Date"][0]
    assert abs(time.mktime(time.strptime(date, "%Y%m%dT%H%M%SZ")) - time.mktime(time.gmtime())) < 60


def test_the_signature_is_the_one_botocore_computes(setup, moto_s3):
    """moto does not check signatures, so the worker's presigned URL is compared with the one
    boto3 makes for the same object, second and lifetime (made in the same second)."""
    redirecting, _, data = setup
    key = new_key(data, "enterprise")
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=moto_s3.endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    for _ in range(5):
        before = time.time()
        ours = urlsplit(
            httpx.get(redirecting.url + DOWNLOAD, headers=bearer(key)).headers["location"]
        )
        bucket, _, object_key = ours.path.lstrip("/").partition("/")
        theirs = urlsplit(
            client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": object_key}, ExpiresIn=30
            )
        )
        if int(before) == int(time.time()):
            break
    assert (ours.netloc, ours.path) == (theirs.netloc, theirs.path)
    assert parse_qs(ours.query) == parse_qs(theirs.query)


def test_small_answers_and_refusals_stay_with_the_worker(setup):
    redirecting, plain, data = setup

    def eleven() -> list[httpx.Response]:
        key = new_key(data, "free")
        return [httpx.get(redirecting.url + "/api/v1/iocs", headers=bearer(key)) for _ in range(11)]

    answers = in_one_minute(eleven)
    assert [r.status_code for r in answers] == [200] * 10 + [429]
    assert answers[0].json()["data"]
    assert answers[10].json()["error"]["code"] == "rate_limit_exceeded"
    no_key = httpx.get(redirecting.url + DOWNLOAD)
    assert no_key.status_code == 401 and "location" not in no_key.headers


def test_redirects_need_an_s3_bucket(tmp_path):
    published(tmp_path, iocs=50, days=2)
    refused = socdef(
        "serve", "--port", "0", "--redirect-large", "1", data_dir=tmp_path, check=False, timeout=60
    )
    assert refused.returncode == 1
    assert "redirects to presigned URLs need an s3:// bucket" in refused.stderr
