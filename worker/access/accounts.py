"""Accounts: the tier of each user (the session subject). Keys created through the API get it."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from worker.contract.tiers import TIERS

DEFAULT_TIER = "free"
SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    user TEXT PRIMARY KEY,
    tier TEXT NOT NULL,
    updated_at INTEGER NOT NULL
)
"""


class AccountError(ValueError):
    """An unknown tier or an empty user."""


class Accounts:
    """Tiers in SQLite; ``worker.access.postgres.PostgresAccounts`` keeps them in PostgreSQL."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._conn: Any = self._open(path)

    def _open(self, target: str | os.PathLike[str]) -> Any:
        conn = sqlite3.connect(
            os.fspath(target), timeout=5, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(SCHEMA)
        return conn

    def tier_of(self, user: str) -> str:
        row = self._conn.execute(
            'SELECT tier FROM accounts WHERE "user" = ?', (user.strip().lower(),)
        ).fetchone()
        return str(row[0]) if row else DEFAULT_TIER

    def set_tier(self, user: str, tier: str) -> None:
        user = user.strip().lower()
        if not user:
            raise AccountError("user must not be empty")
        if tier not in TIERS:
            raise AccountError(f"unknown tier {tier!r}; choose one of {', '.join(TIERS)}")
        self._conn.execute(
            'INSERT INTO accounts ("user", tier, updated_at) VALUES (?, ?, ?) ON CONFLICT '
            '("user") DO UPDATE SET tier = excluded.tier, updated_at = excluded.updated_at',
            (user, tier, int(time.time())),
        )

    def close(self) -> None:
        self._conn.close()
