"""One timestamp parser (``worker.endpoints.params.parse_time``) behind the list API's ``since``/``until``
and TAXII's ``added_after``/``match[version]``: both accept and refuse the same text, each
with its own message."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.endpoints.params import parse_time
from worker.errors import InvalidParameter
from worker.taxii.params import parse_timestamp

ZONES = st.sampled_from(["", "Z", "z", "+00:00", "+01:00", "-01:00", "+14:00", "-23:59"])
STAMPS = st.one_of(
    st.builds(lambda d, z: d.isoformat() + z, st.datetimes(), ZONES),
    st.text(alphabet="0123456789-:T.+Zz ", max_size=32),
)


def _outcome(parse, raw: str) -> tuple[bool, str]:
    try:
        parse("x", raw)
    except InvalidParameter as exc:
        return False, exc.message
    return True, ""


@given(STAMPS)
def test_both_parsers_accept_and_refuse_the_same_text(raw):
    api_ok, _ = _outcome(parse_time, raw)
    taxii_ok, _ = _outcome(parse_timestamp, raw)
    assert api_ok == taxii_ok
    if api_ok:
        delta = parse_time("x", raw) - datetime(1970, 1, 1, tzinfo=UTC)
        assert parse_timestamp("x", raw) == delta // (delta.resolution)


@pytest.mark.parametrize(
    "raw", ["yesterday", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
)
def test_each_route_keeps_its_own_message(raw):
    assert _outcome(parse_time, raw)[1] == (
        "Invalid x: expected an ISO 8601 date-time such as 2024-12-01T00:00:00Z"
    )
    assert _outcome(parse_timestamp, raw)[1] == (
        "Invalid x: expected a timestamp such as 2026-01-01T00:00:00.000000Z"
    )


def test_a_time_without_a_zone_is_utc():
    assert parse_timestamp("x", "1970-01-01T00:00:01.5") == 1_500_000
    assert parse_time("x", "1970-01-01T00:00:01") == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
