"""The ledger on one machine: a SQLite table next to the embedded index.

The conditional write is a single upsert whose update is guarded by `WHERE excluded.order > order` (or
another key: a move), with the key's mark in the same transaction,
so it is atomic inside SQLite whatever the number of connections. Each `record` is its own transaction
(synchronous=FULL: one fsync), except inside `batch`, where one ingest batch's records commit together.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from visual_search.ledger.port import HOLD_TTL_S, HOLD_WAIT_S, KeyMark, LedgerEntry, State, take_turn

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    scope TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    key TEXT NOT NULL,
    order_token TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('indexed', 'removed', 'refused')),
    doc_id TEXT,
    reason TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (scope, asset_id)
) WITHOUT ROWID
"""
HOLDS = """
CREATE TABLE IF NOT EXISTS holds (
    name TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL
) WITHOUT ROWID
"""
# The newest event recorded at each key (`at_key`), kept after its asset moves on.
KEYS = """
CREATE TABLE IF NOT EXISTS keys (
    scope TEXT NOT NULL, key TEXT NOT NULL, asset_id TEXT NOT NULL, order_token TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID
"""
COLUMNS = "asset_id, key, order_token, state, doc_id, reason, updated_at"


class SqliteLedger:
    def __init__(self, path: Path, scope: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.scope = scope
        # Re-entrant: a thread inside `batch` holds it for the whole transaction, and records within.
        self._lock = threading.RLock()
        self._in_batch = False
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(SCHEMA)
        self._db.execute(KEYS)
        self._db.execute(HOLDS)

    def get(self, asset_id: str) -> LedgerEntry | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {COLUMNS} FROM ledger WHERE scope = ? AND asset_id = ?", (self.scope, asset_id)
            ).fetchone()
        return LedgerEntry(*row) if row else None

    def at_key(self, key: str) -> KeyMark | None:
        with self._lock:
            row = self._db.execute(
                "SELECT asset_id, order_token FROM keys WHERE scope = ? AND key = ?", (self.scope, key)
            ).fetchone()
        return KeyMark(*row) if row else None

    def record(self, entry: LedgerEntry) -> bool:
        with self._lock, self.batch():  # the entry and its key's mark together
            cursor = self._db.execute(
                f"""INSERT INTO ledger (scope, {COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (scope, asset_id) DO UPDATE SET
                    key = excluded.key, order_token = excluded.order_token, state = excluded.state,
                    doc_id = excluded.doc_id, reason = excluded.reason, updated_at = excluded.updated_at
                WHERE excluded.order_token > ledger.order_token OR excluded.key <> ledger.key""",
                (
                    self.scope,
                    entry.asset_id,
                    entry.key,
                    entry.order,
                    entry.state,
                    entry.doc_id,
                    entry.reason,
                    entry.updated_at,
                ),
            )
            if cursor.rowcount != 1:
                return False
            self._db.execute(
                """INSERT INTO keys (scope, key, asset_id, order_token) VALUES (?, ?, ?, ?)
                ON CONFLICT (scope, key) DO UPDATE SET
                    asset_id = excluded.asset_id, order_token = excluded.order_token
                WHERE excluded.order_token > keys.order_token""",
                (self.scope, entry.key, entry.asset_id, entry.order),
            )
            return True

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The records made inside commit as one transaction (one fsync), or not at all if the block
        raises. Other threads' ledger calls wait for the commit (they share this connection)."""
        with self._lock:
            if self._in_batch:  # nested: the outer batch commits
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._in_batch = True
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._in_batch = False

    def entries(self, state: State | None = None) -> Iterator[LedgerEntry]:
        query = f"SELECT {COLUMNS} FROM ledger WHERE scope = ?"
        params: tuple[str, ...] = (self.scope,)
        if state is not None:
            query, params = query + " AND state = ?", (*params, state)
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        for row in rows:
            yield LedgerEntry(*row)

    @contextmanager
    def hold(self, name: str, wait_s: float = HOLD_WAIT_S, ttl_s: float = HOLD_TTL_S) -> Iterator[None]:
        """One upsert that takes the name only where it is free or its hold lapsed: atomic in SQLite,
        whichever process (every process on this machine opens this file) asks."""
        holder = uuid.uuid4().hex

        def take() -> bool:
            with self._lock:
                now = time.time()
                return (
                    self._db.execute(
                        """INSERT INTO holds (name, holder, until) VALUES (?, ?, ?)
                        ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                        WHERE holds.until < ?""",
                        (name, holder, now + ttl_s, now),
                    ).rowcount
                    == 1
                )

        take_turn(name, take, wait_s)
        try:
            yield
        finally:
            with self._lock:
                self._db.execute("DELETE FROM holds WHERE name = ? AND holder = ?", (name, holder))

    def close(self) -> None:
        with self._lock:
            self._db.close()
