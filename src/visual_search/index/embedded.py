"""Embedded vector index for one machine: a SQLite file (the truth) and a usearch HNSW graph (a cache).

SQLite holds every asset's vector and document; a write is acknowledged only once committed with
synchronous=FULL and put in the in-memory rows, so a kill -9 loses nothing acknowledged and a search right
after it finds it. Memory holds a dense float32 copy of the vectors plus the filterable fields
(`_rows.py`), so scoring never touches the disk, and the usearch graph over int8 copies of the vectors
(`_usearch_graph.py`), which answers large unfiltered queries fast.

The graph is built on a second thread (the builder) from a queue of the rows written, a chunk at a time,
while writes and searches go on: adding to an HNSW graph is most of a write's cost, and usearch releases
the GIL meanwhile. A row is "pending" until the graph holds its current vector; searches score the pending
rows exactly and merge them with the graph's candidates (or scan, while more than a quarter is pending).
A replacement or deletion takes the old vector out of the graph at once, or, for a row the builder is
adding at that moment, as soon as it is done. `wait_for_graph` waits for the builder; `close` lets it
finish.

The rows and the graph are snapshotted beside the database (on close, and once the changes since the last
snapshot reach `snapshot_every` and an eighth of the index; `_snapshots.py`). A snapshot is named after
the change up to which the graph holds every row; opening loads and checksum-verifies it, replays the later
changes from SQLite into the rows and the builder's queue, and rebuilds from SQLite if it is missing,
stale in a way a catch-up cannot repair, or corrupt (then every row is pending, so searches are exact
scans until the graph is built). No result depends on the graph being right: exact search is always a
correct fallback, and every score comes from the float32 rows.

Why usearch: a fast SIMD HNSW in self-contained wheels (usearch and its numkong kernels, ~55 MB installed,
no BLAS or torch), save/load of one file, Apache-2.0. Its import needs care: see `_preload.py`.

How a query is answered:
* the filters are evaluated in memory; when at most `exact_threshold` assets (or under 20% of the index)
  match, those are scored exactly (numpy) - exact, and cheap at that size;
* otherwise the graph proposes candidates (oversampled by 1/selectivity when filtered), their scores are
  recomputed exactly from the stored vectors, merged with the pending rows scored exactly, and the page is
  cut from them; if they do not fill the page, more are asked for, and past a quarter of the index an
  exact scan takes over.
Scores always come from `ranking.exact_scores`, so they are identical on every call (cursors compare
exactly) whichever path found the hit.
"""

from __future__ import annotations

import collections
import dataclasses
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

from visual_search.domain.document import AssetDocument
from visual_search.errors import IndexInUse
from visual_search.index._rows import Rows, filter_fields
from visual_search.index._snapshots import Snapshots
from visual_search.index._sqlite_store import LoadedRows, SqliteStore, StoredRow
from visual_search.index._usearch_graph import Graph, GraphParams
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
_SNAPSHOT_FRACTION = 8
# Rows the builder adds to the graph per call: a search or a replace waits for at most one such call
# (~25 ms at a million rows), and the copy of their vectors it takes is 128 KiB at 512-d.
_BUILD_CHUNK = 64


class EmbeddedIndex:
    """A `VectorIndex` in one SQLite file at `path` (created if absent), holding vectors of size `dim`.

    >>> import tempfile
    >>> query = np.ones(4, dtype=np.float32) / 2
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with EmbeddedIndex.open(Path(folder) / "index.sqlite3", dim=4) as index:
    ...         index.knn_page(query, size=10)
    []
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
        # Signalled whenever the builder's state changes (work queued, a chunk done, closing).
        self._changed = threading.Condition(self._lock)
        # (seq, keys) of the changes whose rows the builder has yet to add to the graph, oldest first.
        self._queue: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._in_flight: set[int] = set()  # keys the builder is adding, outside the lock
        self._touched: set[int] = set()  # of those, the ones replaced or deleted meanwhile
        self._held = 0  # while positive (a snapshot is being written), the builder takes no new chunk
        self._closing = False
        self._builder_error: BaseException | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file: IO[str] | None = _lock_exclusively(self.path)
        self._unsaved = 0
        try:
            self._store = SqliteStore(self.path, dim)
            self._snapshots = Snapshots(self.path)
            with self._lock:
                self._open_state()
        except BaseException:
            self._release()
            raise
        self._builder = threading.Thread(target=self._build_graph, name="index-graph", daemon=True)
        self._builder.start()

    @classmethod
    def open(cls, path: Path, dim: int, **options: Any) -> EmbeddedIndex:
        return cls(path, dim, **options)

    def __enter__(self) -> EmbeddedIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Let the builder finish the graph, snapshot, and let go of the file and the memory."""
        with self._changed:
            if self._lock_file is None:
                return
            self._closing = True
            self._changed.notify_all()
        self._builder.join()
        with self._lock:
            if self._lock_file is None:  # closed meanwhile by another thread
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
            changed = LoadedRows(
                keys=keys,
                asset_ids=[row.asset_id for row in stored],
                vectors=np.stack([row.vector for row in stored]),
                folders=[row.folder for row in stored],
                formats=[row.format for row in stored],
                tags=[row.tags for row in stored],
            )
            self._put(changed, seq=self._store.last_seq)
            self._note_changes(len(stored))
        return {}

    def delete(self, asset_ids: Sequence[str], known: DocIds | None = None) -> None:
        with self._lock:
            self._require_open()
            keys = self._store.delete(list(dict.fromkeys(asset_ids)))
            self._remove(np.array(keys, dtype=np.int64))
            self._note_changes(len(keys))

    def get(self, asset_id: str) -> IndexedAsset | None:
        with self._lock:
            self._require_open()
            found = self._store.get(asset_id)
        if found is None:
            return None
        vector, fields = found
        return IndexedAsset(asset_id=asset_id, vector=vector, document=AssetDocument.from_fields(fields))

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
        depth: int = 0,  # unused: a page widens its graph search until it is complete (_ann_rank)
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
            ids = [asset_id.decode() for asset_id in self._rows.ids[slots].tolist()]
            documents = self._store.documents(keys)
        return [
            Hit(asset_id=asset_id, score=score, document=AssetDocument.from_fields(documents[key]))
            for key, asset_id, score in zip(keys, ids, scores.tolist(), strict=True)
        ]

    def save_snapshot(self) -> None:
        """Write the snapshot now (close and the periodic rule do it anyway): for the tests, which take
        one at a chosen moment to reopen the index from a snapshot older than its database."""
        with self._lock:
            self._require_open()
            self._save_snapshot()

    def set_expansion_search(self, expansion: int) -> None:
        """Trade recall for speed from now on: the graph's search beam, and the fewest candidates rescored."""
        with self._lock:
            self._require_open()
            self._params = dataclasses.replace(self._params, expansion_search=expansion)
            self._graph.set_expansion_search(expansion)

    def wait_for_graph(self, timeout: float | None = None) -> bool:
        """Block until the graph holds every row (True) or `timeout` seconds passed (False).

        For the tests: searches are exact over the rows the graph lacks, so they are right either way,
        only slower while it catches up."""
        with self._changed:
            self._require_open()
            self._changed.wait_for(
                lambda: not self._rows.pending_count or self._builder_error is not None, timeout
            )
            if self._builder_error is not None:
                raise RuntimeError(f"the graph of {self.path} stopped being built") from self._builder_error
            return not self._rows.pending_count

    def memory_usage(self) -> dict[str, int]:
        """Bytes held in memory by the float32 rows and by the graph (for benchmarks and operators)."""
        with self._lock:
            self._require_open()
            return {"rows": self._rows.nbytes, "graph": self._graph.memory_usage}

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
        # Rows the graph lacks yet (just written, the builder behind) are scored exactly, every one of
        # them; when they are many, a scan of everything costs about as much.
        pending = rows.pending_slots()
        if len(pending) > rows.n // 4:
            return None
        if allowed is not None:
            pending = pending[allowed[pending]]
        pending_scores = exact_scores(rows.vectors[pending], query)
        # The graph's beam is expansion_search wide anyway, so fewer candidates would cost the same.
        count = max(math.ceil((size + _SLACK) * rows.n / matching), self._params.expansion_search)
        # Past a quarter of the index an exact scan costs about as much, and is exact.
        while count <= rows.n // 4:
            found = self._graph.search(query, count)
            if len(found) < count:
                return None
            # A key deleted while the builder was adding it can linger in the graph for a moment, and a
            # pending row's vector there may be its old one: it is among `pending` anyway.
            slots = rows.slots_or_absent(found)
            slots = slots[slots >= 0]
            slots = slots[~rows.is_pending(slots)]
            if len(slots) <= _SLACK:
                return None
            scores = exact_scores(rows.vectors[slots], query)
            floor = float(np.partition(scores, _SLACK)[_SLACK])
            trusted = scores > floor
            if allowed is not None:
                trusted &= allowed[slots]
            slots = np.concatenate([slots[trusted], pending])
            scores = np.concatenate([scores[trusted], pending_scores])
            picked, complete = select(scores, rows.ids[slots])
            if complete or (min_score is not None and floor < min_score):
                return slots[picked], scores[picked]
            count *= _ANN_GROWTH
        return None

    def _open_state(self) -> None:
        """The mirror and the graph: from the newest valid snapshot caught up, else rebuilt from SQLite."""
        store = self._store
        snapshot = self._snapshots.read(
            self.dim,
            store.db_id,
            store.last_seq,
            load_graph=lambda saved: Graph.load(saved, self.dim, self._params),
        )
        if snapshot is not None:
            self._rows, self._graph, since = snapshot.rows, snapshot.graph, snapshot.seq
            del snapshot  # so that a rebuild frees it before allocating its own copy
            if self._catch_up(since):
                return
            self._rows = self._graph = None  # type: ignore[assignment]
            self._queue.clear()
        rows = Rows.adopt(store.load_all(), self.dim)
        log.info("building the ANN graph of %s from %d assets (searches scan until built)", self.path, rows.n)
        self._rows, self._graph = rows, Graph.empty(self.dim, self._params)
        self._queue.append((1, rows.keys[: rows.n].copy()))  # a copy: a deletion moves rows' keys
        self._unsaved = rows.n

    def _catch_up(self, since: int) -> bool:
        """Apply the changes made after the snapshot; False if the result disagrees with SQLite."""
        rows = self._rows
        changed = self._store.load_changed_since(since)
        self._put(changed, seq=since + 1)  # their own seq is not loaded; an earlier one is as safe
        deleted = self._store.deleted_since(since)
        present = deleted[rows.slots_or_absent(deleted) >= 0]
        self._remove(present)
        self._unsaved = len(changed.keys) + len(present)
        # Keys are never reused, so the same count and the same sum of keys catch a deletion the log
        # lacks (made by a version without it) as well as any other drift.
        count, key_sum = self._store.count_and_key_sum()
        in_graph = rows.n - rows.pending_count
        if rows.n == count and len(self._graph) == in_graph and int(rows.keys[: rows.n].sum()) == key_sum:
            return True
        log.warning("index snapshot of %s disagrees with the database: rebuilding", self.path)
        return False

    def _put(self, changed: LoadedRows, seq: int) -> None:
        """Rows inserted or replaced in SQLite by change `seq`, into the mirror and the builder's queue."""
        self._unlink_from_graph(changed.keys)
        self._rows.put_many(changed)
        self._queue.append((seq, changed.keys))
        self._changed.notify_all()

    def _remove(self, keys: np.ndarray) -> None:
        """Rows deleted from SQLite, out of the mirror and the graph."""
        self._unlink_from_graph(keys)
        for key in keys.tolist():
            self._rows.remove(key)

    def _unlink_from_graph(self, keys: np.ndarray) -> None:
        """Before these rows are replaced or deleted: the graph must not keep their present vectors."""
        slots = self._rows.slots_or_absent(keys)
        in_graph = slots >= 0
        in_graph[in_graph] = ~self._rows.is_pending(slots[in_graph])
        self._graph.remove(keys[in_graph])
        if self._in_flight:  # being added by the builder: it takes them out again when done
            self._touched.update(key for key in keys.tolist() if key in self._in_flight)

    # --- the builder thread: adds what the queue holds to the graph ----------------------------------

    def _build_graph(self) -> None:
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: (self._queue and not self._held) or self._closing)
                    if not self._queue:  # closing, and the graph holds everything
                        return
                    keys, slots = self._next_chunk()
                    vectors = self._rows.vectors[slots]  # this chunk's copy: rows move and grow meanwhile
                    self._in_flight = set(keys.tolist())
                self._graph.add(keys, vectors)  # the long part: writes and searches go on meanwhile
                with self._changed:
                    self._finish_chunk(keys)
        except BaseException as exc:  # searches stay right (they scan what the graph lacks): log, stop
            log.exception("building the ANN graph of %s failed; searches scan the rows it lacks", self.path)
            with self._changed:
                self._builder_error = exc
                self._in_flight = set()
                self._changed.notify_all()

    def _next_chunk(self) -> tuple[np.ndarray, np.ndarray]:
        """Up to _BUILD_CHUNK keys off the queue that are still pending, and their slots."""
        taken: list[np.ndarray] = []
        room = _BUILD_CHUNK
        while self._queue and room:
            seq, keys = self._queue[0]
            taken.append(keys[:room])
            if len(keys) > room:
                self._queue[0] = (seq, keys[room:])
            else:
                self._queue.popleft()
            room -= len(taken[-1])
        keys = np.unique(np.concatenate(taken))  # a key queued twice (replaced again) is added once
        slots = self._rows.slots_or_absent(keys)
        wanted = slots >= 0
        wanted[wanted] = self._rows.is_pending(slots[wanted])
        return keys[wanted], slots[wanted]

    def _finish_chunk(self, keys: np.ndarray) -> None:
        slots = self._rows.slots_or_absent(keys)
        # Deleted or replaced while being added: out again (a replacement is queued with its new vector).
        stale = (slots < 0) | np.isin(keys, np.fromiter(self._touched, dtype=np.int64))
        self._graph.remove(keys[stale])
        self._rows.mark_in_graph(slots[~stale])
        self._in_flight, self._touched = set(), set()
        self._changed.notify_all()

    def _note_changes(self, count: int) -> None:
        self._unsaved += count
        # A snapshot rewrites every row (2.9 GB at a million), so it is taken in proportion to the index:
        # bulk loading pays ~10% for it, and a crash costs a replay of at most an eighth of the rows.
        if self._unsaved >= max(self._snapshot_every, self._rows.n // _SNAPSHOT_FRACTION):
            self._save_snapshot()

    def _save_snapshot(self) -> None:
        # No chunk half-applied: its keys would be in the graph file but not yet marked in the rows.
        self._held += 1
        try:
            self._changed.wait_for(lambda: not self._in_flight)
            seq = self._graph_seq()
            self._snapshots.write(self._graph, self._rows, self._store.db_id, seq)
        finally:
            self._held -= 1
            self._changed.notify_all()
        self._store.forget_deletions(up_to_seq=seq)  # only the snapshot just written is kept
        self._unsaved = 0

    def _graph_seq(self) -> int:
        """The change up to which the graph holds every row: opening a snapshot replays the later ones.

        The rows in the snapshot may be newer; replaying a change onto them again is harmless."""
        if self._builder_error is not None:
            return 0  # the graph's state is unknown: the next open replays everything
        return self._queue[0][0] - 1 if self._queue else self._store.last_seq

    def _require_open(self) -> None:
        if self._lock_file is None:
            raise RuntimeError(f"index {self.path} is closed")

    def _release(self) -> None:
        self._rows = self._graph = None  # type: ignore[assignment]  # a closed index holds no memory
        store = getattr(self, "_store", None)
        if store is not None:
            store.close()
        if self._lock_file is not None:
            self._lock_file.close()  # closing the file drops the flock
            self._lock_file = None


def _stored_row(asset: IndexedAsset, vector: np.ndarray) -> StoredRow:
    try:
        document = json.dumps(
            asset.document.to_fields(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
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
