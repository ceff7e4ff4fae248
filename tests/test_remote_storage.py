"""Worker storage backends: the SigV4 signer, S3 and HTTP buckets over real HTTP, the cache."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.publish.s3 import S3Destination
from generator.publish.upload import publish
from tests.buildseries import build_series, local_answers, observe
from tests.s3fixture import moto_s3_fixture  # noqa: F401 - the moto_s3 fixture
from worker.buckets.cache import ByteCache, CachedBucket
from worker.buckets.remote import HttpBucket, S3Bucket, open_bucket
from worker.buckets.sigv4 import Credentials, sign
from worker.buckets.storage import BuildSource, LocalBucket, StorageError
from worker.contract import layout

WHEN = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("token", [None, "session-token"])
@pytest.mark.parametrize(
    "path",
    [
        "/feeds/current.json",
        "/b/objects/ab/ab%20c%2B~d",
        "/bucket/builds/20261128T120000Z-0a1b.json",
    ],
)
def test_sigv4_matches_botocore(path, token):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    host = "127.0.0.1:9000"
    ours = sign(
        "GET",
        host,
        path,
        {},
        Credentials("AKIDEXAMPLE", "secret/key+x", token),
        "eu-west-3",
        now=WHEN.timestamp(),
    )
    request = AWSRequest(method="GET", url=f"http://{host}{path}")
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        S3SigV4Auth(
            BotoCredentials("AKIDEXAMPLE", "secret/key+x", token), "s3", "eu-west-3"
        ).add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]


@pytest.fixture(scope="module")
def published_series(tmp_path_factory, moto_s3):
    """Two builds published to a folder and to S3 (the second is current)."""
    tmp = tmp_path_factory.mktemp("remote")
    ids = build_series(tmp, tmp / "build", 2000, [None, 5])
    name = moto_s3.new_bucket()
    s3 = S3Destination(name, "feeds/", endpoint_url=moto_s3.endpoint)
    from generator.publish.folder import LocalDestination

    for build_id in ids:
        publish(tmp / "build", LocalDestination(tmp / "bucket"), build_id=build_id)
        publish(tmp / "build", s3, build_id=build_id)
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{name}/*",
            }
        ],
    }
    moto_s3.client().put_bucket_policy(Bucket=name, Policy=json.dumps(public_read))
    return tmp, ids, name, local_answers(tmp / "build", ids), s3


def buckets(moto_s3, tmp, name) -> dict[str, object]:
    return {
        "local": LocalBucket(tmp / "bucket"),
        "s3": S3Bucket(
            name,
            "feeds",
            endpoint=moto_s3.endpoint,
            credentials=lambda: Credentials("testing-key", "testing-secret"),
        ),
        # unsigned GETs of a public-read bucket: what a CDN in front of the bucket does
        "http": HttpBucket(f"{moto_s3.endpoint}/{name}/feeds/"),
    }


def test_every_backend_reads_the_same_bytes(moto_s3, published_series):
    tmp, ids, name, known, _ = published_series
    local = LocalBucket(tmp / "bucket")
    manifest = local.get(layout.manifest_key(ids[1]))
    for label, bucket in buckets(moto_s3, tmp, name).items():
        assert bucket.get(layout.manifest_key(ids[1])) == manifest, label  # stored gzipped on S3
        assert bucket.get("objects/00/missing") is None, label
        source = BuildSource(bucket, pointer_ttl=0)
        assert source.current().build_id == ids[1], label
        for key, ref in list(source.current().objects.items())[:40]:
            obj = layout.object_key(ref.sha256)
            whole = local.get_range(obj, 0, ref.stored_size)
            assert bucket.get_range(obj, 0, ref.stored_size, ref.stored_size) == whole, (label, key)
            # the size from the manifest, as the worker passes it: an object stored compressed
            # comes back marked gzip (on S3), recognised as its stored bytes by that size
            assert (
                bucket.get_range(obj, ref.stored_size // 3, ref.stored_size // 2, ref.stored_size)
                == whole[ref.stored_size // 3 : ref.stored_size // 2]
            ), (label, key)
        seen = observe(
            bucket,
            lambda: S3Destination(
                name,
                "feeds/",  # noqa: B023
                endpoint_url=moto_s3.endpoint,
            ).sizes("objects/"),
            known,
        )
        assert (seen.build_id, seen.missing, seen.matches) == (ids[1], 0, True), label


def test_open_bucket_reads_the_setting(moto_s3, tmp_path):
    assert isinstance(open_bucket(str(tmp_path)), LocalBucket)
    s3 = open_bucket("s3://feeds/x", environ=moto_s3.env)
    assert isinstance(s3, CachedBucket) and isinstance(s3.inner, S3Bucket)
    assert s3.inner.origin.host == moto_s3.endpoint.removeprefix("http://")
    aws = open_bucket(
        "s3://my-feeds/p",
        environ={"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
    )
    assert aws.inner.origin.host == "my-feeds.s3.eu-west-1.amazonaws.com"
    assert aws.inner.base_path == "/p"
    cdn = open_bucket("https://cdn.example.org/feeds/")
    assert isinstance(cdn.inner, HttpBucket) and cdn.inner.base_path == "/feeds"
    with pytest.raises(StorageError):
        open_bucket("ftp://example.org/feeds")


class NoRangeHandler(http.server.SimpleHTTPRequestHandler):
    """A plain static server: ignores Range, gzips nothing."""

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def static_server(tmp_path) -> Iterator[str]:
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "blob").write_bytes(bytes(range(256)) * 10)
    handler = functools.partial(NoRangeHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_origin_that_ignores_ranges_is_cut_locally(static_server):
    bucket = HttpBucket(static_server)
    data = bytes(range(256)) * 10
    assert bucket.get_range("objects/blob", 100, 700) == data[100:700]
    assert bucket.get("objects/absent") is None
    with pytest.raises(StorageError):
        bucket.get_range("objects/blob", 2000, 3000)  # past the end: fewer bytes than asked


def test_an_unreachable_origin_is_a_storage_error():
    from tests.conftest import free_port

    bucket = HttpBucket(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(StorageError):
        bucket.get("current.json")


class Counting:
    """A bucket over a dict that counts the reads that reach it."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects, self.reads = objects, []

    def get(self, key: str) -> bytes | None:
        self.reads.append((key, None))
        return self.objects.get(key)

    def get_range(self, key: str, start: int, end: int, size: int | None = None) -> bytes:
        self.reads.append((key, (start, end)))
        return self.objects[key][start:end]


def test_small_objects_are_fetched_whole_once_and_sliced():
    inner = Counting({"objects/aa/a": b"x" * 1000, "current.json": b"{}"})
    bucket = CachedBucket(inner, budget=1 << 20, whole_limit=4096)
    assert bucket.get_range("objects/aa/a", 10, 20, 1000) == b"x" * 10
    assert bucket.get_range("objects/aa/a", 500, 1000, 1000) == b"x" * 500
    assert inner.reads == [("objects/aa/a", (0, 1000))]
    bucket.get("current.json")
    bucket.get("current.json")
    assert inner.reads.count(("current.json", None)) == 2  # the pointer is never cached


def test_large_objects_are_read_by_range_and_ranges_are_cached():
    inner = Counting({"objects/bb/b": bytes(10_000)})
    bucket = CachedBucket(inner, budget=1 << 20, whole_limit=4096)
    for _ in range(3):
        assert bucket.get_range("objects/bb/b", 100, 300, 10_000) == bytes(200)
    assert inner.reads == [("objects/bb/b", (100, 300))]


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 400)), max_size=60))
def test_the_byte_cache_stays_within_its_budget(puts):
    cache = ByteCache(1000)
    for key, size in puts:
        cache.put(key, bytes(size))
        assert cache.size <= 1000
        assert cache.size == sum(len(v) for v in cache._items.values())
    for key, size in puts[-1:]:
        if size <= 250:
            assert cache.get(key) == bytes(size)  # the last one put is still there


def test_a_failing_pointer_read_keeps_the_current_build(tmp_path):
    class Flaky(LocalBucket):
        down = False

        def get(self, key):
            if self.down and key == layout.POINTER_KEY:
                raise StorageError("origin unreachable")
            return super().get(key)

    from generator.publish.folder import LocalDestination

    ids = build_series(tmp_path, tmp_path / "build", 300, [None])
    publish(tmp_path / "build", LocalDestination(tmp_path / "bucket"), build_id=ids[0])
    bucket = Flaky(tmp_path / "bucket")
    source = BuildSource(bucket, pointer_ttl=0)
    assert source.current().build_id == ids[0]
    bucket.down = True
    assert source.current().build_id == ids[0]
    with pytest.raises(StorageError):
        BuildSource(bucket, pointer_ttl=0).current()  # nothing to fall back on


def test_gzip_stored_objects_are_decoded_on_whole_reads(moto_s3):
    name = moto_s3.new_bucket()
    client = moto_s3.client()
    client.put_object(
        Bucket=name, Key="m.json", Body=gzip.compress(b'{"a": 1}'), ContentEncoding="gzip"
    )
    bucket = S3Bucket(
        name,
        endpoint=moto_s3.endpoint,
        credentials=lambda: Credentials("testing-key", "testing-secret"),
    )
    assert bucket.get("m.json") == b'{"a": 1}'
