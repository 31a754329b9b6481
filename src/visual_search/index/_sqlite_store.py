"""The embedded index's source of truth: one SQLite file in WAL mode with synchronous=FULL, so a write
that returned survives a kill -9 or a power cut.

Every write transaction takes the next value of a monotonic change sequence and stamps it on the rows it
inserts or replaces, so a cache built at sequence S can catch up by reading the rows with seq > S, and
records the keys it deletes, with the same sequence, in `deleted`. Keys are AUTOINCREMENT, never reused.
A random `db_id`, drawn when the file is created, tells a cache of this database from one of another
database that happens to sit at the same path (a restored backup, a copied file).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
# folder, format and tags repeat the document's, so opening reads them without parsing every document.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS assets (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id TEXT NOT NULL UNIQUE,
    seq INTEGER NOT NULL,
    vector BLOB NOT NULL,
    document TEXT NOT NULL,
    folder TEXT NOT NULL,
    format TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_by_seq ON assets (seq);
CREATE TABLE IF NOT EXISTS deleted (key INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
"""
# A 512-d float32 vector is 2 KiB: with the default 4 KiB pages each row would take a page of its own.
_PAGE_SIZE = 16384
# Within one transaction holding the write lock, keys can be handed out here: a batch is then a couple of
# executemany calls rather than one statement and one fetch per row.
_INSERT = """
INSERT INTO assets (key, asset_id, seq, vector, document, folder, format, tags)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
_REPLACE = """
UPDATE assets SET seq = ?, vector = ?, document = ?, folder = ?, format = ?, tags = ? WHERE key = ?
"""
_CHUNK = 500  # under SQLite's limit on bound parameters


@dataclass(frozen=True)
class StoredRow:
    asset_id: str
    vector: np.ndarray  # float32, (dim,)
    document_json: str
    folder: str
    format: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class LoadedRows:
    """Everything the in-memory mirror needs, column-wise (from `load_all`: ordered by key)."""

    keys: np.ndarray  # int64, (n,)
    asset_ids: list[str]
    vectors: np.ndarray  # float32, (n, dim), writable
    folders: list[str]
    formats: list[str]
    tags: list[tuple[str, ...]]


class SqliteStore:
    def __init__(self, path: Path, dim: int) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute(f"PRAGMA page_size={_PAGE_SIZE}")  # takes effect in a new file only
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.dim = dim
        stored_dim = self._meta("dim")
        if stored_dim is None:
            with self._transaction():
                self._set_meta("dim", dim)
                self._set_meta("schema_version", SCHEMA_VERSION)
                self._set_meta("last_seq", 0)
        elif stored_dim != dim:
            self._db.close()
            raise ValueError(f"index {path} holds vectors of dimension {stored_dim}, not {dim}")
        if self._meta("db_id") is None:  # also for files made before db_id existed
            with self._transaction():
                self._set_meta("db_id", secrets.randbits(62))
        self.db_id = int(self._meta("db_id") or 0)

    def close(self) -> None:
        self._db.close()

    @property
    def last_seq(self) -> int:
        return int(self._meta("last_seq") or 0)

    def upsert(self, rows: Sequence[StoredRow]) -> list[int]:
        """Insert or replace by asset_id in one transaction; returns each row's key.

        The asset_ids must be distinct (the caller keeps the last of repeated ones)."""
        with self._transaction():
            seq = self._next_seq()
            existing = self._keys_of([row.asset_id for row in rows])
            (last_key,) = self._db.execute(
                "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'assets'), 0)"
            ).fetchone()
            keys, inserts, replaces = [], [], []
            for row in rows:
                key = existing.get(row.asset_id)
                if key is None:
                    last_key += 1
                    key = last_key
                    inserts.append((key, row.asset_id, seq, *_columns(row)))
                else:
                    replaces.append((seq, *_columns(row), key))
                keys.append(key)
            self._db.executemany(_INSERT, inserts)
            self._db.executemany(_REPLACE, replaces)
            return keys

    def delete(self, asset_ids: Sequence[str]) -> list[int]:
        """Delete in one transaction; returns the keys that existed."""
        sql = "DELETE FROM assets WHERE asset_id = ? RETURNING key"
        with self._transaction():
            keys = [row[0] for asset_id in asset_ids for row in self._db.execute(sql, (asset_id,))]
            if keys:
                seq = self._next_seq()
                self._db.executemany("INSERT INTO deleted (key, seq) VALUES (?, ?)", [(k, seq) for k in keys])
            return keys

    def deleted_since(self, seq: int) -> np.ndarray:
        """Keys deleted after change `seq` (as far back as `forget_deletions` left them): int64."""
        rows = self._db.execute("SELECT key FROM deleted WHERE seq > ?", (seq,))
        return np.array([row[0] for row in rows], dtype=np.int64)

    def forget_deletions(self, up_to_seq: int) -> None:
        """Once nothing will catch up from a change at or before `up_to_seq`, its deletions can go."""
        with self._transaction():
            self._db.execute("DELETE FROM deleted WHERE seq <= ?", (up_to_seq,))

    def count_and_key_sum(self) -> tuple[int, int]:
        """How many rows, and the sum of their keys: a cheap check that a cache holds the same keys."""
        # The seq index holds every key and is a fraction of the table's size.
        sql = "SELECT count(*), coalesce(sum(key), 0) FROM assets INDEXED BY assets_by_seq WHERE seq >= 0"
        count, key_sum = self._db.execute(sql).fetchone()
        return int(count), int(key_sum)

    def get(self, asset_id: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        sql = "SELECT vector, document FROM assets WHERE asset_id = ?"
        row = self._db.execute(sql, (asset_id,)).fetchone()
        if row is None:
            return None
        return np.frombuffer(row[0], dtype=np.float32).copy(), json.loads(row[1])

    def documents(self, keys: Sequence[int]) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(keys), _CHUNK):  # SQLite's limit on bound parameters
            chunk = list(keys[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, document FROM assets WHERE key IN ({marks})", chunk)
            found.update((key, json.loads(document)) for key, document in rows)
        return found

    def load_all(self) -> LoadedRows:
        return self._load("SELECT key, asset_id, vector, folder, format, tags FROM assets ORDER BY key")

    def load_changed_since(self, seq: int) -> LoadedRows:
        """The rows inserted or replaced after change `seq`."""
        # Through the seq index: ordered by key, SQLite would walk the whole table (1 s at a million rows).
        sql = (
            "SELECT key, asset_id, vector, folder, format, tags FROM assets INDEXED BY assets_by_seq"
            " WHERE seq > ?"
        )
        return self._load(sql, (seq,))

    def _keys_of(self, asset_ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(asset_ids), _CHUNK):
            chunk = list(asset_ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            found.update(
                self._db.execute(f"SELECT asset_id, key FROM assets WHERE asset_id IN ({marks})", chunk)
            )
        return found

    def _load(self, sql: str, parameters: tuple[Any, ...] = ()) -> LoadedRows:
        cursor = self._db.execute(sql, parameters)
        keys, asset_ids, blobs, folders, formats, tags = list(zip(*cursor, strict=True)) or [()] * 6
        # bytearray: a single copy, and the array over it is writable, so the mirror can adopt it.
        vectors = np.frombuffer(bytearray().join(blobs), dtype=np.float32).reshape(len(keys), self.dim)
        return LoadedRows(
            keys=np.array(keys, dtype=np.int64),
            asset_ids=list(asset_ids),
            vectors=vectors,
            folders=list(folders),
            formats=list(formats),
            tags=[tuple(json.loads(value)) if value != "[]" else () for value in tags],
        )

    def _next_seq(self) -> int:
        seq = self.last_seq + 1
        self._set_meta("last_seq", seq)
        return seq

    def _meta(self, name: str) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])

    def _set_meta(self, name: str, value: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception, so each call is atomic."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _columns(row: StoredRow) -> tuple[bytes, str, str, str, str]:
    tags = json.dumps(list(row.tags), ensure_ascii=False)
    return row.vector.tobytes(), row.document_json, row.folder, row.format, tags
