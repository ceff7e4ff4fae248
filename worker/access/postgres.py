"""Keys, accounts and the usage log in PostgreSQL, for replicas that share one database.

Selected by a ``postgresql://`` URL (``socdef serve --db``, ``SOCDEF_DB``); SQLite files in the
data folder stay the default. The stores are the SQLite ones (``KeyStore``, ``Accounts``,
``UsageLog``) over :class:`Connection`, which speaks their SQL to PostgreSQL: ``?`` placeholders
become ``%s``, ``BEGIN``/``COMMIT`` are sent as written, and a connection the server dropped is
opened again before the next statement. Only what differs is here: the schema, the lock that
makes the live-key cap exact across replicas, and the order of a key listing.

Keys stay keyed hashes (``HMAC-SHA256(secret, key)``) compared in constant time; the secret is
never in the database. What the database does hold is a fingerprint of each shared secret
(``HMAC(secret, "socdef fingerprint:<name>")``, useless for testing candidate keys), so a replica
started with another key secret or session secret refuses to start instead of answering 401 to
every key the others made.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import psycopg
from psycopg import pq

from worker.access.accounts import Accounts
from worker.access.keys import KeyStore, KeyStoreError

SCHEMA_LOCK = 0x50C0DEF  # the advisory lock under which replicas create the schema
SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    seq BIGSERIAL, id TEXT PRIMARY KEY, digest BYTEA NOT NULL UNIQUE,
    pepper_version INTEGER NOT NULL, "user" TEXT NOT NULL, name TEXT, tier TEXT NOT NULL,
    scopes TEXT NOT NULL, preview TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT,
    revoked_at BIGINT, revoke_reason TEXT, last_used_at BIGINT
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys ("user", created_at);
CREATE TABLE IF NOT EXISTS accounts (
    "user" TEXT PRIMARY KEY, tier TEXT NOT NULL, updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
    key_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, endpoint TEXT NOT NULL,
    status INTEGER NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,
    iocs INTEGER NOT NULL DEFAULT 0, n INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS usage_key_ts ON usage (key_id, ts);
CREATE TABLE IF NOT EXISTS usage_journal (name TEXT PRIMARY KEY, "offset" BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS secret_fingerprints (name TEXT PRIMARY KEY, digest BYTEA NOT NULL);
"""


class DatabaseUnavailable(KeyStoreError):
    """PostgreSQL cannot be reached or refused the connection. Never carries a password."""


def describe(url: str) -> str:
    """``host:port/dbname`` of a URL, for messages: never its user or password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparseable PostgreSQL URL"
    host, port = info.get("host") or "localhost", info.get("port") or 5432
    return f"postgresql://{host}:{port}/{info.get('dbname') or ''}"


class Connection:
    """One PostgreSQL connection with the slice of ``sqlite3.Connection`` the stores use.

    Autocommit, so a statement outside ``BEGIN``…``COMMIT`` is its own transaction. Safe to share
    between threads (psycopg serialises them). A statement that finds the connection broken
    (the server restarted) fails; the next one connects again.
    """

    def __init__(self, url: str, *, connect_timeout: float = 5.0) -> None:
        self._url = url
        self._timeout = connect_timeout
        self._lock = threading.Lock()
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self._url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        except psycopg.Error as exc:
            raise self._unavailable(exc) from None

    def _live(self) -> psycopg.Connection[Any]:
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            return self._conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self._live().execute(sql.replace("?", "%s"), tuple(params))
        except psycopg.OperationalError as exc:  # the server went away mid-statement
            raise self._unavailable(exc) from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._live().cursor() as cursor:
                cursor.executemany(sql.replace("?", "%s"), list(rows))
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: psycopg.Error) -> DatabaseUnavailable:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        return DatabaseUnavailable(f"cannot use {describe(self._url)}: {reason}")

    def executescript(self, script: str) -> None:
        self._live().execute(script)  # several statements: allowed without parameters

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != pq.TransactionStatus.IDLE

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """As ``with sqlite3.Connection``: commit an open transaction, or roll it back."""
        if self._conn.closed or self._conn.broken or not self.in_transaction:
            return  # a dropped connection took its transaction with it
        self._conn.execute("COMMIT" if kind is None else "ROLLBACK")

    def close(self) -> None:
        self._conn.close()


def open_database(url: str) -> Connection:
    """A connection to ``url`` with the schema in place (created by the first replica)."""
    conn = Connection(url)
    with conn:
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
        conn.executescript(SCHEMA)
    return conn


def check_fingerprint(conn: Connection, name: str, secret: bytes, hint: str) -> None:
    """Record the fingerprint of the shared secret ``name``, or refuse one that differs."""
    digest = hmac.digest(secret, b"socdef fingerprint:" + name.encode(), hashlib.sha256)
    conn.execute(
        "INSERT INTO secret_fingerprints (name, digest) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (name, digest),
    )
    row = conn.execute("SELECT digest FROM secret_fingerprints WHERE name = ?", (name,)).fetchone()
    if row is None or not hmac.compare_digest(bytes(row[0]), digest):
        raise KeyStoreError(
            f"this {name} secret is not the one the database {describe(conn._url)} was first "
            f"used with; {hint}"
        )


class PostgresKeyStore(KeyStore):
    """API keys in PostgreSQL; see ``KeyStore`` for the cache and its bound on revocation."""

    _ORDER = "created_at DESC, seq DESC"
    _BUSY = (DatabaseUnavailable,)

    def _open(self, target: Any) -> Connection:
        conn = open_database(str(target))
        check_fingerprint(
            conn,
            "key",
            self._secret,
            "give every replica the same key secret file (--key-secret-file, "
            "SOCDEF_KEY_SECRET_FILE)",
        )
        return conn

    @property
    def connection(self) -> Connection:
        return self._conn  # type: ignore[no-any-return]

    def _begin_write(self, owner: str) -> None:
        """A transaction holding ``owner``'s advisory lock: the live-key count and the insert of
        two replicas creating keys for one account at once run one after the other."""
        self._conn.execute("BEGIN")
        self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (owner,))


class PostgresAccounts(Accounts):
    def _open(self, target: Any) -> Connection:
        return open_database(str(target))
