"""API keys in SQLite, stored only as keyed hashes.

Key format: ``sk_live_`` + 32 random base62 characters + 6 base62 characters holding the CRC32
of everything before them, so a key can be told from a look-alike offline, before any lookup.

The store keeps ``HMAC-SHA256(secret, key)`` (raw digest, unique index) and a
``pepper_version``; never the key itself. The secret lives apart from the database, so a dump
of the database alone cannot be used to test candidate keys.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import re
import secrets
import sqlite3
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.contract.tiers import TIERS

KEY_PREFIX = "sk_live_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(KEY_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
PREVIEW_CHARS = 4
SECRET_BYTES = 32
SCHEMA_VERSION = 1
PEPPER_VERSION = 1
MAX_NAME_LENGTH = 100
MAX_USER_LENGTH = 254
MAX_EXPIRY_DAYS = 365
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))  # RFC 2104's ipad, as a translation table
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))  # and its opad
CACHE_SIZE = 10_000
TOUCH_INTERVAL = 60
BUSY_TIMEOUT_MS = 5_000
# the rate limiter counts an account's requests under uuid5(ACCOUNT_NAMESPACE, account id)
ACCOUNT_NAMESPACE = uuid.UUID("6f1b7c1e-3d0a-5b8e-9a41-2c6d8e0f4b17")

_FORMAT = re.compile(re.escape(KEY_PREFIX) + f"[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}")
_FIELDS = (
    "id", "user", "name", "tier", "scopes", "preview", "created_at", "expires_at",
    "revoked_at", "revoke_reason", "last_used_at",
)  # fmt: skip
_COLUMNS = ", ".join(f'"{name}"' for name in _FIELDS)  # quoted: "user" is reserved in SQL
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, digest BLOB NOT NULL UNIQUE, pepper_version INTEGER NOT NULL,
    user TEXT NOT NULL, name TEXT, tier TEXT NOT NULL, scopes TEXT NOT NULL,
    preview TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER,
    revoked_at INTEGER, revoke_reason TEXT, last_used_at INTEGER
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user, created_at);
"""


class KeyStoreError(ValueError):
    """Invalid input to the key store, or a store it cannot use. Never carries a key."""


class KeyLimitReached(KeyStoreError):
    """The account already holds as many live keys as its tier allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"this account already holds {limit} live API keys, the most its tier "
            "allows; revoke one first"
        )
        self.limit = limit


def account_limit_id(user: str) -> str:
    """The id the rate limiter counts an account under: a UUID, so no account name (an e-mail
    address) reaches the limiter's store or its key names."""
    return str(uuid.uuid5(ACCOUNT_NAMESPACE, user.strip().lower()))


def key_ops_limit_id(user: str) -> str:
    """The id the rate limiter counts an account's key creations and revocations under."""
    return str(uuid.uuid5(ACCOUNT_NAMESPACE, "key-ops:" + user.strip().lower()))


class HmacSha256:
    """HMAC-SHA256 under one key (RFC 2104), with the key's inner and outer SHA-256 states
    made once: each digest is ``hmac.digest(key, message, "sha256")``, in about a third of the
    time (OpenSSL sets the key up again on every one-shot call). Safe to share between threads:
    a digest works on copies of the two states."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > hashlib.sha256().block_size:
            key = hashlib.sha256(key).digest()
        key = key.ljust(hashlib.sha256().block_size, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user: str
    name: str | None
    tier: str
    scopes: tuple[str, ...]
    preview: str
    created_at: int
    expires_at: int | None
    revoked_at: int | None = None
    revoke_reason: str | None = None
    last_used_at: int | None = None
    # the rate-limit windows this key spends: its account's, shared by all the account's keys
    limit_id: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit_id", account_limit_id(self.user))


@dataclass(frozen=True, slots=True)
class AuthResult:
    key: ApiKey | None
    error: str | None


# --- format -------------------------------------------------------------------------------


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LENGTH)


def _assemble(random_part: str) -> str:
    body = KEY_PREFIX + random_part
    return body + _checksum(body)


def generate_key() -> str:
    """A new key: prefix, 32 random base62 characters, 6-character CRC32 checksum."""
    return _assemble("".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH)))


def checksum_ok(key: str) -> bool:
    """True if ``key`` has the exact format and a matching checksum. No store lookup."""
    if not isinstance(key, str) or _FORMAT.fullmatch(key) is None:
        return False
    return _checksum(key[:-CHECKSUM_LENGTH]) == key[-CHECKSUM_LENGTH:]


def _preview(key: str) -> str:
    return key[: len(KEY_PREFIX) + PREVIEW_CHARS] + "…"


# --- validation ---------------------------------------------------------------------------


def _clean_user(user: str) -> str:
    """An account id: an e-mail address, or a session's subject (a Supabase user id)."""
    value = user.strip().lower() if isinstance(user, str) else ""
    printable = value.isprintable() and not any(char.isspace() for char in value)
    if not value or len(value) > MAX_USER_LENGTH or not printable:
        raise KeyStoreError("user must be an e-mail address or account id without spaces")
    return value


def _check_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise KeyStoreError(f"name must be printable text of at most {MAX_NAME_LENGTH} characters")
    return name


def _check_days(days: int | None) -> int | None:
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_EXPIRY_DAYS:
        raise KeyStoreError(f"expires_in_days must be an integer from 1 to {MAX_EXPIRY_DAYS}")
    return days


def _check_scopes(tier: str, scopes: Sequence[str] | None) -> tuple[str, ...]:
    if tier not in TIERS:
        raise KeyStoreError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
    allowed = TIERS[tier].scopes
    if scopes is None:
        return allowed
    if isinstance(scopes, str):
        raise KeyStoreError("scopes must be a sequence of scope names, not one string")
    extra = sorted(set(scopes) - set(allowed))
    if extra:
        raise KeyStoreError(f"scopes not available on tier {tier!r}: {', '.join(extra)}")
    if not scopes:
        raise KeyStoreError("a key needs at least one scope")
    return tuple(scope for scope in allowed if scope in scopes)


def _normal_id(key_id: str) -> str | None:
    try:
        return str(uuid.UUID(key_id))
    except (TypeError, ValueError, AttributeError):
        return None


# --- storage ------------------------------------------------------------------------------


def _row_to_key(row: tuple[Any, ...]) -> ApiKey:
    values = dict(zip(_FIELDS, row, strict=True))
    return ApiKey(**values | {"scopes": tuple(values["scopes"].split())})


def _key_to_row(record: ApiKey) -> tuple[Any, ...]:
    values = [getattr(record, field) for field in _FIELDS]
    values[_FIELDS.index("scopes")] = " ".join(record.scopes)
    return tuple(values)


def _create_private(path: str) -> None:
    """Create the database file owner-only before SQLite does (its side files follow)."""
    if path == ":memory:" or path.startswith("file:"):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _connect(path: str) -> sqlite3.Connection:
    _create_private(path)
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Switching a new file to WAL and creating the schema can answer SQLITE_BUSY at once,
    # without the busy handler, while another process does the same; retry until the timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn)
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                conn.close()
                raise
            time.sleep(0.01 + random.random() * 0.04)
        except sqlite3.DatabaseError as exc:  # not a database (garbage, truncated): name it
            conn.close()
            raise sqlite3.DatabaseError(f"{path}: {exc}") from exc


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise KeyStoreError(f"key database schema {version} is newer than this code supports")
    try:
        conn.executescript(
            f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        )
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class KeyStore:
    """API keys in one SQLite file; safe for several processes (WAL, busy timeout).

    ``authenticate`` caches positive and negative lookups in memory for ``cache_ttl`` seconds
    (at most ``CACHE_SIZE`` entries, oldest evicted first). Expiry is checked against
    ``clock()`` on every call, cached or not. A revocation made through this instance takes
    effect at once (the cache is dropped); a revocation made by another process is seen
    within ``cache_ttl`` seconds. ``last_used_at`` is approximate: it is written only when a
    lookup reaches the database, and at most once per ``TOUCH_INTERVAL`` seconds per key.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        secret: bytes,
        *,
        clock: Callable[[], float] = time.time,
        cache_ttl: float = 5.0,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < SECRET_BYTES:
            raise KeyStoreError(f"secret must be at least {SECRET_BYTES} bytes")
        self._secret = secret
        self._hmac = HmacSha256(secret)
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._cache: OrderedDict[bytes, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._conn: Any = self._open(path)
        self.lookups = 0

    # -- the database: SQLite here, PostgreSQL in ``worker.access.postgres`` --

    _ORDER = "created_at DESC, rowid DESC"  # newest first; ties in the order of creation
    _BUSY: tuple[type[Exception], ...] = (sqlite3.OperationalError,)

    def _open(self, target: str | os.PathLike[str]) -> Any:
        return _connect(os.fspath(target))

    def _begin_write(self, owner: str) -> None:
        """Start a write transaction that no other writer of ``owner``'s keys can interleave."""
        self._conn.execute("BEGIN IMMEDIATE")

    # -- management --

    def create(
        self,
        user: str,
        tier: str,
        *,
        name: str | None = None,
        expires_in_days: int | None = None,
        scopes: Sequence[str] | None = None,
        max_live: int | None = None,
    ) -> tuple[str, ApiKey]:
        """Create a key; returns (full key, record). The full key is never stored.

        With ``max_live``, raise ``KeyLimitReached`` instead when ``user`` already holds that
        many live keys (not revoked, not expired); the count and the insert are one write
        transaction, so processes creating keys at once cannot pass the cap together.
        """
        owner = _clean_user(user)
        granted = _check_scopes(tier, scopes)
        name = _check_name(name)
        days = _check_days(expires_in_days)
        now = int(self._clock())
        expires_at = None if days is None else now + days * 86_400
        key = generate_key()
        record = ApiKey(
            str(uuid.uuid4()), owner, name, tier, granted, _preview(key), now, expires_at
        )
        digest = self._digest(key)
        marks = ", ".join("?" * (len(_FIELDS) + 2))
        with self._lock:
            self._begin_write(owner)
            try:
                if max_live is not None and self._live(owner, now) >= max_live:
                    raise KeyLimitReached(max_live)
                self._conn.execute(
                    f"INSERT INTO api_keys (digest, pepper_version, {_COLUMNS}) VALUES ({marks})",
                    (digest, PEPPER_VERSION, *_key_to_row(record)),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._cache.pop(digest, None)
        return key, record

    def _live(self, owner: str, now: int) -> int:
        live: int = self._conn.execute(
            'SELECT count(*) FROM api_keys WHERE "user" = ? AND revoked_at IS NULL '
            "AND (expires_at IS NULL OR expires_at > ?)",
            (owner, now),
        ).fetchone()[0]
        return live

    def list(self, user: str | None = None) -> list[ApiKey]:
        """All keys, or one user's keys; newest first."""
        sql = f"SELECT {_COLUMNS} FROM api_keys"
        params: tuple[str, ...] = ()
        if user is not None:
            sql, params = sql + ' WHERE "user" = ?', (user.strip().lower(),)
        with self._lock:
            rows = self._conn.execute(f"{sql} ORDER BY {self._ORDER}", params)
            return [_row_to_key(row) for row in rows.fetchall()]

    def get(self, key_id: str, *, user: str | None = None) -> ApiKey | None:
        """One key by id; with ``user`` given, someone else's key is None, like an unknown id."""
        normal = _normal_id(key_id)
        if normal is None:
            return None
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (normal,)
            ).fetchone()
        if row is None or (user is not None and row[1] != user.strip().lower()):
            return None
        return _row_to_key(row)

    def revoke(self, key_id: str, *, user: str | None = None, reason: str = "") -> ApiKey | None:
        """Revoke a key (idempotent: a second call keeps the first time and reason)."""
        if self.get(key_id, user=user) is None:
            return None
        normal = _normal_id(key_id)
        with self._lock:
            self._conn.execute(
                "UPDATE api_keys SET revoked_at = ?, revoke_reason = ? "
                "WHERE id = ? AND revoked_at IS NULL",
                (int(self._clock()), reason or None, normal),
            )
            self._cache.clear()
        return self.get(key_id, user=user)

    # -- authentication --

    def authenticate(self, presented: str) -> AuthResult:
        """Check a presented key: "malformed", "unknown", "revoked", "expired" or ok."""
        if not checksum_ok(presented):
            return AuthResult(None, "malformed")
        now = self._clock()
        record = self._lookup(self._digest(presented), now)
        if record is None:
            return AuthResult(None, "unknown")
        if record.revoked_at is not None:
            return AuthResult(None, "revoked")
        if record.expires_at is not None and now >= record.expires_at:
            return AuthResult(None, "expired")
        return AuthResult(record, None)

    def cached(self, presented: bytes) -> ApiKey | None:
        """The key record for ``presented`` when a fresh cache entry says it is valid, else None.

        No database access and no checksum work: only keys that passed ``authenticate`` are in
        the cache, so a miss (or a revoked, expired or stale entry) means "ask ``authenticate``".
        Used by the worker's hot path; the same ``cache_ttl`` rules apply.
        """
        entry = self._cache.get(self._hmac.digest(presented))
        if entry is None:
            return None
        seen, record = entry
        if record is None:
            return None
        now = self._clock()
        if (
            now - seen >= self._cache_ttl
            or record.revoked_at is not None
            or (record.expires_at is not None and now >= record.expires_at)
        ):
            return None
        return record

    def _digest(self, key: str) -> bytes:
        return self._hmac.digest(key.encode("ascii"))

    def _lookup(self, digest: bytes, now: float) -> ApiKey | None:
        with self._lock:
            cached = self._cache.get(digest)
            if cached is not None and now - cached[0] < self._cache_ttl:
                return cached[1]
            record = self._fetch(digest, now)
            self._remember(digest, now, record)
            return record

    def _fetch(self, digest: bytes, now: float) -> ApiKey | None:
        self.lookups += 1
        row = self._conn.execute(
            f"SELECT digest, {_COLUMNS} FROM api_keys WHERE digest = ? AND pepper_version = ?",
            (digest, PEPPER_VERSION),
        ).fetchone()
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        record = _row_to_key(row[1:])
        self._touch(record, int(now))
        return record

    def _touch(self, record: ApiKey, now: int) -> None:
        if record.last_used_at is not None and now - record.last_used_at < TOUCH_INTERVAL:
            return
        try:
            self._conn.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, record.id)
            )
        except self._BUSY:
            pass  # bookkeeping only: a busy database must not fail authentication

    def _remember(self, digest: bytes, now: float, record: ApiKey | None) -> None:
        if self._cache_ttl <= 0:
            return
        self._cache[digest] = (now, record)
        self._cache.move_to_end(digest)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._conn.close()


def load_or_create_secret(path: str | os.PathLike[str]) -> bytes:
    """Read the pepper at ``path``, or create it (32 random bytes, mode 0600, atomically)."""
    target = os.fspath(path)
    try:
        return _read_secret(target)
    except FileNotFoundError:
        pass
    tmp = f"{target}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(SECRET_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)  # fails if another process won the race; then use theirs
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return _read_secret(target)


def _read_secret(path: str) -> bytes:
    with open(path, "rb") as handle:
        secret = handle.read()
    if len(secret) < SECRET_BYTES:
        raise KeyStoreError(f"secret file {path} holds fewer than {SECRET_BYTES} bytes")
    return secret
