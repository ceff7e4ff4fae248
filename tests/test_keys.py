"""API keys: format, checksum, hashed storage, ownership, expiry, revocation and caching."""

from __future__ import annotations

import hmac
import multiprocessing
import os
import stat
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.access import keys as keys_module
from worker.access.keys import (
    ALPHABET,
    KEY_PREFIX,
    HmacSha256,
    KeyStore,
    KeyStoreError,
    checksum_ok,
    generate_key,
    load_or_create_secret,
)
from worker.contract.tiers import TIERS

SECRET = bytes(range(32))
T0 = 1_750_000_000.0
DAY = 86_400

random_parts = st.text(alphabet=ALPHABET, min_size=32, max_size=32)


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "keys.db"


@pytest.fixture
def store(db_path: Path, clock: FakeClock):
    keystore = KeyStore(db_path, SECRET, clock=clock, cache_ttl=5.0)
    yield keystore
    keystore.close()


def _count_statements(keystore: KeyStore) -> list[str]:
    statements: list[str] = []
    keystore._conn.set_trace_callback(statements.append)
    return statements


# --- format -------------------------------------------------------------------------------


def test_generated_key_shape() -> None:
    key = generate_key()
    assert key.startswith(KEY_PREFIX)
    assert len(key) == len(KEY_PREFIX) + 32 + 6
    assert set(key[len(KEY_PREFIX) :]) <= set(ALPHABET)
    assert checksum_ok(key)


def test_generated_keys_differ() -> None:
    assert len({generate_key() for _ in range(200)}) == 200


@given(random_parts)
def test_assembled_keys_pass(random_part: str) -> None:
    assert checksum_ok(keys_module._assemble(random_part))


@given(random_parts, st.data())
def test_any_single_character_change_fails(random_part: str, data: st.DataObject) -> None:
    key = keys_module._assemble(random_part)
    index = data.draw(st.integers(0, len(key) - 1), label="index")
    replacement = data.draw(st.characters().filter(lambda c: c != key[index]), label="char")
    assert not checksum_ok(key[:index] + replacement + key[index + 1 :])


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        KEY_PREFIX,
        "sk_test_" + "a" * 38,
        "rk_live_" + "a" * 38,
        KEY_PREFIX + "a" * 38,
        KEY_PREFIX + "a" * 37,
        KEY_PREFIX + "a" * 39,
        KEY_PREFIX + "a" * 31 + "_" + "a" * 6,
        KEY_PREFIX + "٣" * 38,
        None,
        42,
        b"sk_live_",
    ],
)
def test_checksum_rejects_malformed(candidate: object) -> None:
    assert not checksum_ok(candidate)  # type: ignore[arg-type]


def test_checksum_rejects_whitespace_and_truncation() -> None:
    key = generate_key()
    for bad in (key + "\n", " " + key, key[:-1], key + "0", key.upper(), key.lower()):
        if bad != key:
            assert not checksum_ok(bad)


# --- storage ------------------------------------------------------------------------------


def test_only_the_digest_is_stored(tmp_path: Path, db_path: Path, clock: FakeClock) -> None:
    keystore = KeyStore(db_path, SECRET, clock=clock)
    key, record = keystore.create("Alice@Example.org", "pro", name="ci")
    assert keystore.authenticate(key).key == record
    digest = keystore._digest(key)
    random_part = key[len(KEY_PREFIX) : -6]

    def check_files() -> None:  # the database and its -wal/-shm side files
        blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert key.encode() not in blob
        assert random_part.encode() not in blob
        assert random_part[4:].encode() not in blob  # the first 4 are the public preview
        assert digest in blob

    check_files()
    keystore.close()  # checkpoints the WAL into the main file
    check_files()


def test_database_file_is_private(db_path: Path, clock: FakeClock) -> None:
    KeyStore(db_path, SECRET, clock=clock).close()
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600


def test_schema_is_idempotent_and_versioned(db_path: Path, clock: FakeClock) -> None:
    first = KeyStore(db_path, SECRET, clock=clock)
    key, _ = first.create("a@example.org", "free")
    second = KeyStore(db_path, SECRET, clock=clock)
    assert second.authenticate(key).error is None
    assert second._conn.execute("PRAGMA user_version").fetchone()[0] == keys_module.SCHEMA_VERSION
    assert second._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first.close()
    second.close()


def test_newer_schema_is_refused(db_path: Path, clock: FakeClock) -> None:
    KeyStore(db_path, SECRET, clock=clock).close()
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(KeyStoreError, match="newer"):
        KeyStore(db_path, SECRET, clock=clock)


def test_short_secret_is_refused(db_path: Path) -> None:
    with pytest.raises(KeyStoreError):
        KeyStore(db_path, b"short")


def test_another_secret_does_not_recognise_keys(db_path: Path, clock: FakeClock) -> None:
    first = KeyStore(db_path, SECRET, clock=clock)
    key, _ = first.create("a@example.org", "free")
    other = KeyStore(db_path, bytes(32), clock=clock)
    assert other.authenticate(key).error == "unknown"
    first.close()
    other.close()


def _create_keys(path: str, count: int, barrier) -> None:  # runs in a child process
    barrier.wait()
    keystore = KeyStore(path, SECRET)
    for _ in range(count):
        keystore.create("a@example.org", "free")
    keystore.close()


def test_processes_open_and_write_one_new_file(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(4)
    workers = [ctx.Process(target=_create_keys, args=(str(db_path), 25, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    keystore = KeyStore(db_path, SECRET)
    assert len(keystore.list()) == 100
    keystore.close()


# --- management ---------------------------------------------------------------------------


def test_create_defaults(store: KeyStore) -> None:
    key, record = store.create("Bob@Example.ORG", "free")
    assert uuid.UUID(record.id).version == 4
    assert record.user == "bob@example.org"
    assert record.tier == "free"
    assert record.scopes == TIERS["free"].scopes
    assert record.created_at == int(T0)
    assert record.expires_at is None
    assert record.revoked_at is None and record.revoke_reason is None
    assert record.preview == key[: len(KEY_PREFIX) + 4] + "…"
    assert key[-6:] not in record.preview


def test_create_with_options(store: KeyStore) -> None:
    _, record = store.create(
        "a@example.org",
        "enterprise",
        name="siem",
        expires_in_days=30,
        scopes=["read:misp", "read:iocs"],
    )
    assert record.name == "siem"
    assert record.expires_at == int(T0) + 30 * DAY
    assert record.scopes == ("read:iocs", "read:misp")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tier": "platinum"}, "unknown tier"),
        ({"name": "x" * 101}, "at most 100"),
        ({"name": "bad\nname"}, "printable"),
        ({"expires_in_days": 0}, "1 to 365"),
        ({"expires_in_days": 366}, "1 to 365"),
        ({"expires_in_days": True}, "1 to 365"),
        ({"expires_in_days": 1.5}, "1 to 365"),
        ({"scopes": ["read:misp"]}, "not available"),
        ({"scopes": []}, "at least one"),
        ({"scopes": "read:iocs"}, "sequence"),
        ({"user": "   "}, "account id"),
        ({"user": "a b@example.org"}, "without spaces"),
        ({"user": "x" * 255}, "account id"),
    ],
)
def test_create_validation(store: KeyStore, kwargs: dict, message: str) -> None:
    args = {"user": "a@example.org", "tier": "free"} | kwargs
    user, tier = args.pop("user"), args.pop("tier")
    with pytest.raises(KeyStoreError, match=message):
        store.create(user, tier, **args)
    assert store.list() == []


def test_name_limits_accepted(store: KeyStore) -> None:
    assert store.create("a@example.org", "free", name="x" * 100)[1].name == "x" * 100
    assert store.create("a@example.org", "free", expires_in_days=365)[1].expires_at is not None
    assert store.create("a@example.org", "free", expires_in_days=1)[1].expires_at is not None


def test_list_newest_first_and_per_user(store: KeyStore, clock: FakeClock) -> None:
    ids = []
    for user in ("a@example.org", "b@example.org", "a@example.org"):
        ids.append(store.create(user, "free")[1].id)
        clock.now += 10
    assert [k.id for k in store.list()] == ids[::-1]
    assert [k.id for k in store.list("A@example.org")] == [ids[2], ids[0]]
    assert store.list("nobody@example.org") == []


def test_list_same_second_is_still_newest_first(store: KeyStore) -> None:
    ids = [store.create("a@example.org", "free")[1].id for _ in range(3)]
    assert [k.id for k in store.list()] == ids[::-1]


def test_get_and_ownership(store: KeyStore) -> None:
    _, record = store.create("a@example.org", "pro")
    assert store.get(record.id) == record
    assert store.get(record.id, user="A@Example.org") == record
    assert store.get(record.id, user="b@example.org") is None
    assert store.get(str(uuid.uuid4()), user="b@example.org") is None
    assert store.get("not-a-uuid") is None
    assert store.get(record.id.upper()) == record


def test_revoke_is_idempotent_and_owner_checked(store: KeyStore, clock: FakeClock) -> None:
    _, record = store.create("a@example.org", "pro")
    assert store.revoke(record.id, user="b@example.org") is None
    assert store.get(record.id).revoked_at is None
    first = store.revoke(record.id, user="a@example.org", reason="leaked")
    assert first.revoked_at == int(T0) and first.revoke_reason == "leaked"
    clock.now += 100
    assert store.revoke(record.id, reason="again") == first
    assert store.revoke(str(uuid.uuid4())) is None


# --- authentication -----------------------------------------------------------------------


def test_authenticate_ok_and_unknown(store: KeyStore) -> None:
    key, record = store.create("a@example.org", "pro")
    result = store.authenticate(key)
    assert result.error is None and result.key.id == record.id
    assert store.authenticate(generate_key()).error == "unknown"


def test_last_used_is_recorded(store: KeyStore, clock: FakeClock) -> None:
    key, record = store.create("a@example.org", "pro")
    store.authenticate(key)
    assert store.get(record.id).last_used_at == int(T0)


def test_malformed_never_reaches_the_database(store: KeyStore) -> None:
    statements = _count_statements(store)
    key = generate_key()
    for bad in ("", "Bearer " + key, key[:-1] + ("0" if key[-1] != "0" else "1"), "x" * 10_000):
        assert store.authenticate(bad).error == "malformed"
    assert store.lookups == 0
    assert statements == []


def test_unknown_keys_are_cached_negatively(store: KeyStore, clock: FakeClock) -> None:
    statements = _count_statements(store)
    key = generate_key()
    for _ in range(5):
        assert store.authenticate(key).error == "unknown"
    assert store.lookups == 1
    assert len(statements) == 1
    clock.now += 5.0
    assert store.authenticate(key).error == "unknown"
    assert store.lookups == 2


def test_positive_lookups_are_cached(store: KeyStore, clock: FakeClock) -> None:
    key, _ = store.create("a@example.org", "pro")
    for _ in range(10):
        assert store.authenticate(key).error is None
    assert store.lookups == 1


def test_create_clears_a_negative_entry(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    assert store.authenticate(key).error == "unknown"
    monkeypatch.setattr(keys_module, "generate_key", lambda: key)
    store.create("a@example.org", "free")
    assert store.authenticate(key).error is None


def test_expiry_is_exact_even_when_cached(store: KeyStore, clock: FakeClock) -> None:
    key, record = store.create("a@example.org", "pro", expires_in_days=1)
    clock.now = record.expires_at - 0.001
    assert store.authenticate(key).error is None
    lookups = store.lookups
    clock.now = record.expires_at
    assert store.authenticate(key).error == "expired"
    assert store.lookups == lookups  # refused from the cache, not a fresh read
    clock.now += 1_000
    assert store.authenticate(key).error == "expired"


def test_revocation_is_immediate_on_the_same_instance(store: KeyStore) -> None:
    key, record = store.create("a@example.org", "pro")
    assert store.authenticate(key).error is None
    store.revoke(record.id)
    assert store.authenticate(key).error == "revoked"


def test_revocation_reaches_another_instance_within_ttl(
    store: KeyStore, db_path: Path, clock: FakeClock
) -> None:
    server = KeyStore(db_path, SECRET, clock=clock, cache_ttl=5.0)
    key, record = store.create("a@example.org", "pro")
    assert server.authenticate(key).error is None
    store.revoke(record.id, reason="leaked")
    clock.now += 4.9
    assert server.authenticate(key).error is None  # still cached: the documented window
    clock.now += 0.1
    assert server.authenticate(key).error == "revoked"
    server.close()


def test_revoked_wins_over_expired(store: KeyStore, clock: FakeClock) -> None:
    key, record = store.create("a@example.org", "pro", expires_in_days=1)
    store.revoke(record.id)
    clock.now = record.expires_at + 1
    assert store.authenticate(key).error == "revoked"


def test_cache_is_bounded(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys_module, "CACHE_SIZE", 3)
    presented = [generate_key() for _ in range(5)]
    for key in presented:
        store.authenticate(key)
    assert len(store._cache) == 3
    lookups = store.lookups
    store.authenticate(presented[0])  # evicted as oldest
    assert store.lookups == lookups + 1


def test_zero_ttl_disables_the_cache(db_path: Path, clock: FakeClock) -> None:
    keystore = KeyStore(db_path, SECRET, clock=clock, cache_ttl=0)
    key = generate_key()
    keystore.authenticate(key)
    keystore.authenticate(key)
    assert keystore.lookups == 2
    keystore.close()


def test_errors_never_carry_the_key(store: KeyStore) -> None:
    key, record = store.create("a@example.org", "pro")
    for bad in ({"tier": "nope"}, {"name": "x" * 200}, {"expires_in_days": 0}):
        args = {"tier": "pro"} | bad
        with pytest.raises(KeyStoreError) as info:
            store.create("a@example.org", **args)
        assert KEY_PREFIX not in str(info.value)
    assert key not in repr(store.authenticate(key))
    assert key not in repr(record)


# --- secret -------------------------------------------------------------------------------


def test_secret_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "pepper"
    secret = load_or_create_secret(path)
    assert len(secret) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_or_create_secret(path) == secret
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pepper"]


def test_short_secret_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pepper"
    path.write_bytes(b"tiny")
    with pytest.raises(KeyStoreError, match="fewer than"):
        load_or_create_secret(path)


@given(key=st.binary(min_size=0, max_size=200), message=st.binary(max_size=300))
def test_hmac_with_kept_pads_is_the_standard_hmac(key, message):
    # the stored digests were made with hmac.digest: every key must still find its record
    assert HmacSha256(key).digest(message) == hmac.digest(key, message, "sha256")


def test_a_key_made_before_is_found_by_its_standard_hmac(tmp_path):
    secret = b"k" * 40
    store = KeyStore(tmp_path / "keys.sqlite", secret)
    key, record = store.create("ana@example.org", "pro")
    row = store._conn.execute("SELECT digest FROM api_keys WHERE id = ?", (record.id,)).fetchone()
    assert row[0] == hmac.digest(secret, key.encode(), "sha256")
    store.close()
