"""The usearch HNSW graph and its snapshot files: a cache of the SQLite table, never the truth.

A snapshot is named `<db file name>.<seq>.usearch`, `seq` being the change sequence it includes, and is
written to a temporary name, fsynced and renamed, so a crash leaves either the old or the new one whole.
Nothing else records which snapshot is current, so there is nothing to get out of step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visual_search.index._preload import preload_libstdcxx

preload_libstdcxx()
from usearch.index import Index  # noqa: E402  (must follow the preload)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphParams:
    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 128
    threads: int = 1
    # The graph only proposes candidates; their scores are recomputed from the float32 rows. Half
    # precision halves the graph's memory and its snapshot (read on every open) at no cost in results.
    dtype: str = "f16"


class Graph:
    """HNSW over inner product (the vectors are unit length, so it is cosine), keyed by SQLite key."""

    def __init__(self, index: Index, params: GraphParams) -> None:
        self._index = index
        self._params = params
        index.expansion_search = params.expansion_search

    @classmethod
    def empty(cls, dim: int, params: GraphParams) -> Graph:
        return cls(_new_index(dim, params), params)

    @classmethod
    def load(cls, path: Path, dim: int, params: GraphParams) -> Graph | None:
        """The graph in `path`, or None if the file is unreadable or was built for another dimension."""
        index = _new_index(dim, params)
        try:
            index.load(str(path))
        except (RuntimeError, OSError, ValueError) as exc:
            log.warning("ignoring unreadable index snapshot %s: %s", path, exc)
            return None
        if index.ndim != dim:
            log.warning("ignoring index snapshot %s: dimension %d, expected %d", path, index.ndim, dim)
            return None
        return cls(index, params)

    def __len__(self) -> int:
        return len(self._index)

    def keys(self) -> np.ndarray:
        return np.asarray(self._index.keys, dtype=np.int64)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        if len(keys):
            self._index.add(keys.astype(np.uint64), vectors, threads=self._params.threads)

    def remove(self, keys: np.ndarray) -> None:
        """Absent keys are ignored."""
        if len(keys):
            self._index.remove(np.asarray(keys, dtype=np.uint64))

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Keys of about the `count` nearest, best first: int64, (<= count,)."""
        found = self._index.search(query, count, threads=self._params.threads)
        return np.asarray(found.keys, dtype=np.int64)

    def save(self, path: Path) -> None:
        self._index.save(str(path))


def _new_index(dim: int, params: GraphParams) -> Index:
    return Index(
        ndim=dim,
        metric="ip",
        dtype=params.dtype,
        connectivity=params.connectivity,
        expansion_add=params.expansion_add,
        expansion_search=params.expansion_search,
    )


class Snapshots:
    """The snapshot files beside one database file."""

    def __init__(self, db_path: Path) -> None:
        self._dir = db_path.parent
        self._pattern = re.compile(re.escape(db_path.name) + r"\.(\d+)\.usearch(\.partial)?")
        self._prefix = db_path.name

    def latest(self) -> tuple[int, Path] | None:
        found = self._all()
        return max(found) if found else None

    def write(self, graph: Graph, seq: int) -> None:
        final = self._dir / f"{self._prefix}.{seq}.usearch"
        partial = final.with_name(final.name + ".partial")
        graph.save(partial)
        _fsync(partial)
        os.replace(partial, final)
        _fsync(self._dir)
        # Older snapshots, and partial ones a crash left behind.
        for path in self._dir.iterdir():
            if self._pattern.fullmatch(path.name) and path != final:
                path.unlink(missing_ok=True)

    def _all(self) -> list[tuple[int, Path]]:
        found = []
        for path in self._dir.iterdir():
            match = self._pattern.fullmatch(path.name)
            if match and not match.group(2):
                found.append((int(match.group(1)), path))
        return found


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(fd)
    finally:
        os.close(fd)
