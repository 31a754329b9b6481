"""The usearch HNSW graph: a cache of the SQLite table that proposes candidates, never the truth.

The graph only proposes candidates: their scores are recomputed from the float32 rows in memory. So it can
hold a coarse copy of the vectors. int8 (the default) is a quarter of float32, which is what keeps the
whole index within 1.5x the raw vectors, and numkong's int8 dot product is the fastest kernel on CPUs with
VNNI. usearch's own float-to-int8 cast multiplies by 127, which for a unit vector of 512 components
(each about 0.044) leaves ~5 bits; here the vectors are scaled so that 4 standard deviations of a unit
vector's component fill the int8 range, and the rare larger component is clipped (it still counts, at
the clip value). Inner product is invariant to the common scale, so the ranking is the float one's up to
rounding.

The graph is added to on the index's builder thread while searches run on others. usearch's Python calls
each work in per-thread scratch space numbered from 0, so two calls at once from different Python threads
would share it: every call here holds the graph's own lock. Its calls release the GIL, so a long add
leaves the interpreter free for SQLite and numpy work on the other threads.
"""

from __future__ import annotations

import logging
import math
import mmap
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visual_search.index._preload import preload_libstdcxx

preload_libstdcxx()
from usearch.index import Index  # noqa: E402  (must follow the preload)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class GraphParams:
    # Chosen with bench/index.py at a million clustered 512-d vectors: connectivity 16 or 24 left recall@10
    # at 0.95-0.99 whatever the search beam (the graph did not reach parts of dense clusters); 32 reaches
    # 0.99 at a beam of 256 and keeps the whole index within 1.5x the raw vectors.
    connectivity: int = 32
    expansion_add: int = 128
    expansion_search: int = 256
    threads: int = 1
    dtype: str = "i8"  # see the module docstring; "f16", "bf16" and "f32" take more memory


_ADD_CHUNK = 65_536  # bounds the temporary int8 copy when a whole table is added at once


class Graph:
    """HNSW over inner product (the vectors are unit length, so it is cosine), keyed by SQLite key."""

    def __init__(self, index: Index, params: GraphParams) -> None:
        self._lock = threading.Lock()
        self._index = index
        self._params = params
        index.expansion_search = params.expansion_search
        self._scale = 127 * math.sqrt(index.ndim) / 4 if params.dtype == "i8" else None

    @classmethod
    def empty(cls, dim: int, params: GraphParams) -> Graph:
        return cls(_new_index(dim, params), params)

    @classmethod
    def load(cls, source: Path | mmap.mmap, dim: int, params: GraphParams) -> Graph | None:
        """The graph saved in a file, or in its bytes (copied: `source` can go afterwards); None if they
        are unreadable or were built for another dimension."""
        index = _new_index(dim, params)
        try:
            index.load(source if isinstance(source, mmap.mmap) else str(source))
        except (RuntimeError, OSError, ValueError) as exc:
            log.warning("ignoring unreadable index snapshot: %s", exc)
            return None
        if index.ndim != dim or index.dtype.name != _new_index(dim, params).dtype.name:
            log.warning("ignoring index snapshot: not a %d-d %s graph", dim, params.dtype)
            return None
        return cls(index, params)

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def keys(self) -> np.ndarray:
        with self._lock:
            return np.asarray(self._index.keys, dtype=np.int64)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        for start in range(0, len(keys), _ADD_CHUNK):
            chunk = slice(start, start + _ADD_CHUNK)
            encoded = self._encode(vectors[chunk])
            with self._lock:
                self._index.add(keys[chunk].astype(np.uint64), encoded, threads=self._params.threads)

    def remove(self, keys: np.ndarray) -> None:
        """Absent keys are ignored."""
        if len(keys):
            with self._lock:
                self._index.remove(np.asarray(keys, dtype=np.uint64))

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Keys of about the `count` nearest, best first: int64, (<= count,)."""
        encoded = self._encode(query)
        with self._lock:
            found = self._index.search(encoded, count, threads=self._params.threads)
        return np.asarray(found.keys, dtype=np.int64)

    def set_expansion_search(self, expansion: int) -> None:
        with self._lock:
            self._index.expansion_search = expansion

    @property
    def memory_usage(self) -> int:
        """Bytes usearch holds for the graph and its vectors."""
        with self._lock:
            return int(self._index.memory_usage)

    def save(self, path: Path) -> None:
        with self._lock:
            self._index.save(str(path))

    def _encode(self, vectors: np.ndarray) -> np.ndarray:
        if self._scale is None:
            return vectors
        scaled = np.rint(vectors * np.float32(self._scale))
        return np.clip(scaled, -127, 127, out=scaled).astype(np.int8)


def _new_index(dim: int, params: GraphParams) -> Index:
    return Index(
        ndim=dim,
        metric="ip",
        dtype=params.dtype,
        connectivity=params.connectivity,
        expansion_add=params.expansion_add,
        expansion_search=params.expansion_search,
    )
