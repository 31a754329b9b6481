"""Embedded vector index for one machine: a SQLite file (the truth) and a usearch HNSW graph (a cache).

SQLite holds every asset's vector and document; a write is acknowledged only once committed with
synchronous=FULL, so a kill -9 loses nothing acknowledged. Memory holds a dense float32 copy of the
vectors plus the filterable fields, so scoring never touches the disk. The usearch graph answers large
unfiltered queries fast; it is snapshotted beside the database (on close and every `snapshot_every`
changes), loaded on open, caught up from the change sequence, and rebuilt from SQLite if missing or
unreadable. No result depends on it being there: exact search is always a correct fallback.

Why usearch: a fast SIMD HNSW in self-contained wheels (usearch and its numkong kernels, ~55 MB installed,
no BLAS or torch), save/load of one file, Apache-2.0. Its import needs care: see `_preload.py`.

How a query is answered:
* the filters are evaluated in memory; when at most `exact_threshold` assets (or under 20% of the index)
  match, those are scored exactly (numpy) - exact, and cheap at that size;
* otherwise the graph proposes candidates (oversampled by 1/selectivity when filtered), their scores are
  recomputed exactly from the stored vectors, and the page is cut from them; if the candidates do not fill
  the page, more are asked for, and past a quarter of the index an exact scan takes over.
Scores always come from `ranking.exact_scores`, so they are identical on every call (cursors compare
exactly) whichever path found the hit.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from visual_search.errors import IndexInUse
from visual_search.index._rows import Rows, filter_fields
from visual_search.index._sqlite_store import SqliteStore, StoredRow
from visual_search.index._usearch_graph import Graph, GraphParams, Snapshots
from visual_search.index.port import (
    DocIds,
    Filters,
    Hit,
    IndexedAsset,
    SearchAfter,
    check_asset,
    check_page_args,
    check_vector,
)
from visual_search.index.ranking import exact_scores, select_page

__all__ = ["EmbeddedIndex", "GraphParams"]

log = logging.getLogger(__name__)

# Extra ANN candidates: the lowest-scored few may be out of exact order at the ANN's cut-off, so a page is
# only cut from candidates scoring above the SLACK-th lowest.
_SLACK = 32
_ANN_GROWTH = 4
_SMALL_MATCH_FRACTION = 0.2


class EmbeddedIndex:
    """A `VectorIndex` in one SQLite file at `path` (created if absent), holding vectors of size `dim`.

    >>> with EmbeddedIndex.open(Path("var/index.sqlite3"), dim=512) as index:  # doctest: +SKIP
    ...     hits = index.knn_page(query, size=10)
    """

    def __init__(
        self,
        path: Path,
        dim: int,
        *,
        params: GraphParams | None = None,
        exact_threshold: int = 10_000,
        snapshot_every: int = 10_000,
    ) -> None:
        if dim < 1:
            raise ValueError(f"dimension must be positive, got {dim}")
        self.path = Path(path)
        self.dim = dim
        self._params = params or GraphParams()
        self._exact_threshold = exact_threshold
        self._snapshot_every = snapshot_every
        self._lock = threading.RLock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = _lock_exclusively(self.path)
        self._unsaved = 0
        try:
            self._store = SqliteStore(self.path, dim)
            self._rows = Rows.adopt(self._store.load_all(), dim)
            self._snapshots = Snapshots(self.path)
            self._graph = self._open_graph()
        except BaseException:
            self._release()
            raise

    @classmethod
    def open(cls, path: Path, dim: int, **options: Any) -> EmbeddedIndex:
        return cls(path, dim, **options)

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._lock_file is None:
                return
            try:
                if self._unsaved:
                    self._save_snapshot()
            finally:
                self._release()

    def upsert(self, assets: Sequence[IndexedAsset], known: DocIds | None = None) -> DocIds:
        """Keyed by asset id: a replace is found at once, so `known` is not needed and no id returned."""
        latest = {asset.asset_id: asset for asset in assets}  # the last of repeated ids wins
        stored = [_stored_row(asset, check_asset(asset, self.dim)) for asset in latest.values()]
        if not stored:
            return {}
        with self._lock:
            self._require_open()
            keys = np.array(self._store.upsert(stored), dtype=np.int64)
            self._graph.remove(keys)  # the replaced ones
            self._graph.add(keys, np.stack([row.vector for row in stored]))
            for key, row in zip(keys.tolist(), stored, strict=True):
                self._rows.put(key, row.asset_id, row.vector, (row.folder, row.format, row.tags))
            self._note_changes(len(stored))
        return {}

    def delete(self, asset_ids: Sequence[str], known: DocIds | None = None) -> None:
        with self._lock:
            self._require_open()
            keys = self._store.delete(list(dict.fromkeys(asset_ids)))
            self._graph.remove(np.array(keys, dtype=np.int64))
            for key in keys:
                self._rows.remove(key)
            self._note_changes(len(keys))

    def get(self, asset_id: str) -> IndexedAsset | None:
        with self._lock:
            self._require_open()
            found = self._store.get(asset_id)
        if found is None:
            return None
        vector, document = found
        return IndexedAsset(asset_id=asset_id, vector=vector, document=document)

    def count(self) -> int:
        with self._lock:
            self._require_open()
            return self._rows.n

    def open_snapshot(self) -> str | None:
        """None: one machine's index is read under its lock; pages stay consistent by (score, asset_id)."""
        return None

    def close_snapshot(self, snapshot: str) -> None:
        """Nothing to release: see open_snapshot."""

    def knn_page(
        self,
        vector: np.ndarray,
        size: int,
        after: SearchAfter | None = None,
        filters: Filters | None = None,
        min_score: float | None = None,
        max_hits: int = 1000,
        snapshot: str | None = None,  # no snapshots here: see open_snapshot
    ) -> list[Hit]:
        query = check_vector(vector, self.dim)
        check_page_args(size, max_hits)
        select = functools.partial(
            select_page, size=size, after=after, min_score=min_score, max_hits=max_hits
        )
        with self._lock:
            self._require_open()
            slots, scores = self._rank(query, select, filters, size, min_score)
            keys = self._rows.keys[slots].tolist()
            ids = self._rows.ids[slots].tolist()
            documents = self._store.documents(keys)
        return [
            Hit(asset_id=asset_id, score=score, document=documents[key])
            for key, asset_id, score in zip(keys, ids, scores.tolist(), strict=True)
        ]

    def save_snapshot(self) -> None:
        """Write the graph snapshot now (close and the periodic rule do it anyway)."""
        with self._lock:
            self._require_open()
            self._save_snapshot()

    def _rank(
        self,
        query: np.ndarray,
        select: functools.partial[tuple[np.ndarray, bool]],
        filters: Filters | None,
        size: int,
        min_score: float | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Slots and scores of the page's hits, in page order."""
        rows = self._rows
        allowed = rows.mask(filters) if filters is not None else None
        matching = rows.n if allowed is None else int(np.count_nonzero(allowed))
        if matching > self._exact_threshold and matching >= _SMALL_MATCH_FRACTION * rows.n:
            found = self._ann_rank(query, select, allowed, matching, size, min_score)
            if found is not None:
                return found
        if allowed is None:
            candidates, vectors, ids = np.arange(rows.n), rows.vectors[: rows.n], rows.ids[: rows.n]
        else:
            candidates = np.flatnonzero(allowed)
            vectors, ids = rows.vectors[candidates], rows.ids[candidates]
        scores = exact_scores(vectors, query)
        picked, _ = select(scores, ids)
        return candidates[picked], scores[picked]

    def _ann_rank(
        self,
        query: np.ndarray,
        select: functools.partial[tuple[np.ndarray, bool]],
        allowed: np.ndarray | None,
        matching: int,
        size: int,
        min_score: float | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """As `_rank`, from graph candidates; None when an exact scan should answer instead."""
        rows = self._rows
        # The graph's beam is expansion_search wide anyway, so fewer candidates would cost the same.
        count = max(math.ceil((size + _SLACK) * rows.n / matching), self._params.expansion_search)
        # Past a quarter of the index an exact scan costs about as much, and is exact.
        while count <= rows.n // 4:
            slots = rows.slots(self._graph.search(query, count).tolist())
            if len(slots) < count:
                return None
            scores = exact_scores(rows.vectors[slots], query)
            floor = float(np.partition(scores, _SLACK)[_SLACK])
            trusted = scores > floor
            if allowed is not None:
                trusted &= allowed[slots]
            slots, scores = slots[trusted], scores[trusted]
            picked, complete = select(scores, rows.ids[slots])
            if complete or (min_score is not None and floor < min_score):
                return slots[picked], scores[picked]
            count *= _ANN_GROWTH
        return None

    def _open_graph(self) -> Graph:
        latest = self._snapshots.latest()
        if latest is not None and latest[0] <= self._store.last_seq:
            seq, path = latest
            graph = Graph.load(path, self.dim, self._params)
            if graph is not None and self._catch_up(graph, since=seq):
                return graph
        log.info("building the ANN graph of %s from %d assets", self.path, self._rows.n)
        graph = Graph.empty(self.dim, self._params)
        graph.add(self._rows.keys[: self._rows.n], self._rows.vectors[: self._rows.n])
        self._unsaved = self._rows.n
        return graph

    def _catch_up(self, graph: Graph, since: int) -> bool:
        """Apply the changes made after the snapshot; False if the result disagrees with SQLite."""
        live = self._rows.keys[: self._rows.n]
        changed = np.array(self._store.keys_changed_since(since), dtype=np.int64)
        graph.remove(changed)
        graph.add(changed, self._rows.vectors[self._rows.slots(changed.tolist())])
        if not _same_keys(graph, live):
            graph.remove(np.setdiff1d(graph.keys(), live))  # keys are never reused: these were deleted
        self._unsaved = len(changed)
        if _same_keys(graph, live):
            return True
        log.warning("index snapshot of %s disagrees with the database: rebuilding", self.path)
        return False

    def _note_changes(self, count: int) -> None:
        self._unsaved += count
        if self._unsaved >= self._snapshot_every:
            self._save_snapshot()

    def _save_snapshot(self) -> None:
        self._snapshots.write(self._graph, self._store.last_seq)
        self._unsaved = 0

    def _require_open(self) -> None:
        if self._lock_file is None:
            raise RuntimeError(f"index {self.path} is closed")

    def _release(self) -> None:
        store = getattr(self, "_store", None)
        if store is not None:
            store.close()
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file drops the flock
            self._lock_file = None


def _same_keys(graph: Graph, keys: np.ndarray) -> bool:
    return len(graph) == len(keys) and np.array_equal(np.sort(graph.keys()), np.sort(keys))


def _stored_row(asset: IndexedAsset, vector: np.ndarray) -> StoredRow:
    try:
        document = json.dumps(
            dict(asset.document), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"document of asset {asset.asset_id} is not JSON-serialisable: {exc}") from None
    folder, fmt, tags = filter_fields(asset.document)
    return StoredRow(asset.asset_id, vector, document, folder, fmt, tags)


def _lock_exclusively(path: Path) -> IO[str]:
    """One open index per database file: a second writer's in-memory state would silently go stale."""
    handle = path.with_name(path.name + ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise IndexInUse(
            f"the index in {path.parent} is already open, in this or another process (is `visual-search"
            " serve` running on this data folder? add through it: `visual-search add --server URL`)"
        ) from None
    return handle
