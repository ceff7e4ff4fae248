"""Where keys, accounts and the usage log live: SQLite files in the data folder (the default),
or one PostgreSQL database that every replica shares (a ``postgresql://`` URL).

Both backends are the same classes (``KeyStore``, ``Accounts``, ``UsageLog``) over another
connection; ``worker.access.postgres`` is imported, and psycopg with it, only for a URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.access.accounts import Accounts
from worker.access.keys import KeyStore, KeyStoreError
from worker.limits.usage import PostgresUsageLog, UsageLog

SQLITE_KEYS = "keys.sqlite"  # keys and accounts
SQLITE_USAGE = "usage.sqlite"
SESSION_HINT = "give every replica the same session secret (--jwt-secret, SOCDEF_JWT_SECRET)"


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def check_db(db: str) -> None:
    """Refuse a database setting that is neither empty (SQLite) nor a PostgreSQL URL."""
    if db and not is_postgres(db):
        raise KeyStoreError(
            "the database must be a postgresql:// URL, or empty for SQLite in the data folder"
        )


def open_keys(db: str, data_dir: Path, secret: bytes, **options: Any) -> KeyStore:
    check_db(db)
    if not db:
        return KeyStore(data_dir / SQLITE_KEYS, secret, **options)
    from worker.access.postgres import PostgresKeyStore

    return PostgresKeyStore(db, secret, **options)


def open_accounts(db: str, data_dir: Path) -> Accounts:
    check_db(db)
    if not db:
        return Accounts(data_dir / SQLITE_KEYS)
    from worker.access.postgres import PostgresAccounts

    return PostgresAccounts(db)


def open_usage(db: str, data_dir: Path, **options: Any) -> UsageLog:
    """The usage log; with PostgreSQL each process's journal stays in ``data_dir``."""
    check_db(db)
    if not db:
        return UsageLog(data_dir / SQLITE_USAGE, **options)
    return PostgresUsageLog(db, data_dir / "usage-journal", **options)


def check_session_secret(keys: KeyStore, secret: bytes) -> None:
    """Replicas on one PostgreSQL database must verify sessions with one secret: a replica
    whose session secret differs from the one the database first saw refuses to start."""
    from worker.access.postgres import PostgresKeyStore, check_fingerprint

    if isinstance(keys, PostgresKeyStore):
        check_fingerprint(keys.connection, "session", secret, SESSION_HINT)
