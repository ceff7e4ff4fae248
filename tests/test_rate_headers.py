"""One rate-header renderer: ``rate_text`` writes the headers, ``rate_raw`` is its bytes."""

from __future__ import annotations

import pytest

from worker import app as worker_app
from worker.limits.windows import Decision

NOW = 1_800_000_000


@pytest.mark.parametrize(
    "binding,current",
    [
        ("minute", b'"minute";r=7;t=42'),
        ("day", b'"day";r=0;t=3600'),
    ],
)
def test_the_header_bytes(monkeypatch, binding, current):
    monkeypatch.setattr(worker_app.time, "time", lambda: NOW + 0.5)
    d = Decision(True, 10, 7, NOW + 42, 1000, 0, NOW + 3600, 0, binding)
    assert worker_app.rate_raw(d) == [
        (b"x-ratelimit-limit", b"10"),
        (b"x-ratelimit-remaining", b"7"),
        (b"x-ratelimit-reset", b"%d" % (NOW + 42)),
        (b"ratelimit-policy", b'"minute";q=10;w=60, "day";q=1000;w=86400'),
        (b"ratelimit", current),
    ]
    assert worker_app.rate_raw(d) == [(k.encode(), v.encode()) for k, v in worker_app.rate_text(d)]


def test_a_reset_in_the_past_is_zero_seconds_away(monkeypatch):
    monkeypatch.setattr(worker_app.time, "time", lambda: NOW)
    d = Decision(False, 10, 0, NOW - 5, 1000, 990, NOW + 9, 5, "minute")
    assert worker_app.rate_raw(d)[-1] == (b"ratelimit", b'"minute";r=0;t=0')
