"""The worker's hand-off of bodies to an edge, without servers: what it names, what it writes,
what it leaves alone, and the presigned URL's signature."""

from __future__ import annotations

import os
import time

from worker.buckets.sigv4 import Credentials, presign
from worker.buckets.storage import ObjectRef
from worker.handoff import CREATED, RETIRE_AFTER, Handoff
from worker.http import Request, Response

SHA = "ab" * 32


def request(method: str = "GET") -> Request:
    return Request(method, "/api/v1/iocs", {}, {}, "http", "127.0.0.1")


def answer(body: bytes, status: int = 200, etag: bool = True) -> Response:
    resp = Response(status, body)
    if etag:
        resp.header("etag", '"tag"')
    return resp


def test_aws_documented_presigned_url():
    """The example of AWS's "Authenticating Requests: Using Query Parameters" (S3 docs)."""
    url = presign(
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "us-east-1",
        86400,
        now=1369353600,  # 2013-05-24T00:00:00Z
    )
    assert url.endswith(
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    assert url.startswith("https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=")


def test_an_object_is_named_and_a_composed_answer_written_once(tmp_path):
    handoff = Handoff(prefix="/_socdef/", answers=tmp_path, objects=True)
    whole = answer(b"stored bytes")
    whole.source = ObjectRef(SHA, 12)
    handoff(request(), whole, "b1")
    assert dict(whole.headers)["x-accel-redirect"] == f"/_socdef/objects/ab/{SHA}"
    assert whole.body == b"" and not (tmp_path / "b1").exists()

    composed = [answer(b'{"data":[]}') for _ in range(2)]
    for resp in composed:
        handoff(request("HEAD"), resp, "b1")
    targets = {dict(resp.headers)["x-accel-redirect"] for resp in composed}
    assert len(targets) == 1
    written = tmp_path / targets.pop().removeprefix("/_socdef/answers/")
    assert written.read_bytes() == b'{"data":[]}' and written.parent.parent.name == "b1"
    assert [p.name for p in written.parent.iterdir()] == [written.name]  # no partial file left


def test_errors_and_answers_without_an_etag_keep_their_body(tmp_path):
    handoff = Handoff(prefix="/_socdef/", answers=tmp_path, objects=True)
    for resp in (answer(b"refused", 429), answer(b'{"status":"ok"}', etag=False)):
        handoff(request(), resp, "b1")
        assert resp.body and "x-accel-redirect" not in dict(resp.headers)
    posted = answer(b"created")
    handoff(request("POST"), posted, "b1")
    assert posted.body == b"created"


def test_a_replaced_build_s_answers_go_after_a_minute(tmp_path):
    """A build's folder is removed once the build that replaced it has had answers for over a
    minute; a build replaced less than a minute ago, and the current one, stay."""
    now = time.time()
    for name, age in (("old", 3 * RETIRE_AFTER), ("previous", 2 * RETIRE_AFTER), ("last", 10)):
        (tmp_path / name).mkdir()
        marker = tmp_path / name / CREATED
        marker.touch()
        os.utime(marker, (now - age, now - age))
    Handoff(prefix="/_socdef/", answers=tmp_path)(request(), answer(b"new"), "current")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "last", "previous"]


def test_a_large_object_is_a_presigned_redirect_never_kept():
    signed: list[tuple[str, int]] = []

    def sign(key: str, seconds: int) -> str:
        signed.append((key, seconds))
        return f"https://s3.example/{key}?sig"

    handoff = Handoff(presign=sign, redirect_min=10, redirect_seconds=30)
    large, small = answer(b"x" * 10), answer(b"x" * 9)
    large.source, small.source = ObjectRef(SHA, 10), ObjectRef(SHA, 9)
    large.shared = small.shared = object()
    assert handoff.presigned(request(), large) and not handoff.presigned(request(), small)
    assert large.status == 307 and large.body == b"" and large.shared is None
    assert dict(large.headers)["location"] == f"https://s3.example/objects/ab/{SHA}?sig"
    assert "etag" not in dict(large.headers) and signed == [(f"objects/ab/{SHA}", 30)]
    assert small.status == 200 and small.body == b"x" * 9
