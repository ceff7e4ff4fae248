"""Session tokens are verified strictly: every malformed or forged token is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.access.session import SessionRequired, mint, verify

SECRET = b"s" * 32
NOW = 1_800_000_000.0


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(header: dict, claims: dict, secret: bytes = SECRET, alg=hashlib.sha256) -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), alg).digest()
    return f"{head}.{body}.{b64(sig)}"


GOOD_CLAIMS = {"sub": "Ana@Example.org", "exp": NOW + 60}


def test_a_valid_token_names_its_user():
    assert verify(token({"alg": "HS256"}, GOOD_CLAIMS), SECRET, now=NOW) == "ana@example.org"
    assert verify(mint("bo@example.org", SECRET, now=NOW), SECRET, now=NOW) == "bo@example.org"


@pytest.mark.parametrize(
    "bad",
    [
        token({"alg": "none"}, GOOD_CLAIMS),
        token({"alg": "HS256"}, GOOD_CLAIMS).rsplit(".", 1)[0] + ".",
        b64(b'{"alg":"none"}') + "." + b64(json.dumps(GOOD_CLAIMS).encode()) + ".",
        token({"alg": "HS512"}, GOOD_CLAIMS, alg=hashlib.sha512),
        token({"alg": "RS256"}, GOOD_CLAIMS),
        token({"alg": "HS256", "crit": ["exp"]}, GOOD_CLAIMS),
        token({"alg": "HS256"}, {"sub": "a", "exp": NOW}),  # expired exactly now
        token({"alg": "HS256"}, {"sub": "a", "exp": NOW - 1}),
        token({"alg": "HS256"}, {"sub": "a"}),  # no exp
        token({"alg": "HS256"}, {"sub": "a", "exp": "tomorrow"}),
        token({"alg": "HS256"}, {"sub": "a", "exp": True}),
        token({"alg": "HS256"}, {"exp": NOW + 60}),  # no sub
        token({"alg": "HS256"}, {"sub": "", "exp": NOW + 60}),
        token({"alg": "HS256"}, {"sub": "a", "exp": NOW + 60, "nbf": NOW + 30}),
        token({"alg": "HS256"}, GOOD_CLAIMS, secret=b"wrong-secret-wrong-secret-wrong!!"),
        "a.b",
        "a.b.c.d",
        "",
        "sk_live_0000000000000000000000000000000000000",
    ],
)
def test_bad_tokens_are_refused(bad):
    with pytest.raises(SessionRequired):
        verify(bad, SECRET, now=NOW)


def test_tampered_claims_are_refused():
    good = token({"alg": "HS256"}, GOOD_CLAIMS)
    head, _, sig = good.split(".")
    forged = b64(json.dumps({"sub": "admin@example.org", "exp": NOW + 60}).encode())
    with pytest.raises(SessionRequired):
        verify(f"{head}.{forged}.{sig}", SECRET, now=NOW)


def test_audience_is_checked_when_configured():
    t = token({"alg": "HS256"}, {**GOOD_CLAIMS, "aud": "authenticated"})
    assert verify(t, SECRET, now=NOW, audience="authenticated")
    with pytest.raises(SessionRequired):
        verify(t, SECRET, now=NOW, audience="other")
    # RFC 7519 § 4.1.3: aud may be a list; the token is for us when the list names us
    listed = token({"alg": "HS256"}, {**GOOD_CLAIMS, "aud": ["other", "authenticated"]})
    assert verify(listed, SECRET, now=NOW, audience="authenticated") == "ana@example.org"
    for aud in (["other"], [], None, "authenticated-x", ["authenticated-x"]):
        with pytest.raises(SessionRequired):
            verify(
                token({"alg": "HS256"}, {**GOOD_CLAIMS, "aud": aud}),
                SECRET,
                now=NOW,
                audience="authenticated",
            )


@given(st.text(max_size=300))
def test_arbitrary_strings_never_crash(text):
    try:
        verify(text, SECRET, now=NOW)
    except SessionRequired:
        pass
