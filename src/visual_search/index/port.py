"""The vector-index port: what search and ingest need from an index, whatever technology holds it.

Every implementation (embedded, OpenSearch) is held to the same conformance suite
(`tests/conformance/test_vector_index.py`). The paging contract of `knn_page` is the part that matters:

* the candidate list is the `max_hits` most similar assets that match the filters (and `min_score`),
  ordered by score descending, then asset_id ascending, so ties break deterministically;
* a page is the next `size` entries of that list strictly after the `after` cursor.

`depth` is how many hits earlier pages of the same walk served; a page never goes past the
`max_hits`-th hit of the walk, so it holds at most `max_hits - depth`. An index that answers with an
approximate search may size that search by `depth + size` instead of `max_hits` (OpenSearch's k grows
with the page: `opensearch_query.page_k`); the list is then "the most similar as found by a search that
wide", and a document a narrower early page missed may rank above the cursor later: a skip, never a
repeat, since every page is cut by the same (score, asset_id) order.

Scores are recomputed from the stored vectors the same way on every call, so a score carried in a cursor
compares exactly, and paging never repeats a hit. An implementation that answers large unfiltered queries
with an approximate (ANN) search keeps order and no-repeat exactly; "never skips" then holds up to the ANN's
recall, as "the max_hits most similar" means "as found by the ANN".

A snapshot (`open_snapshot`, then `snapshot=` on each page, `close_snapshot` when the walk ends) makes
every later page of one search read the index as it was when the snapshot was opened, where the
implementation has such a thing (an OpenSearch domain's point in time, a scarce resource: the search
service opens one only for a search that has a next page); elsewhere `open_snapshot` returns None and the
contract above is what holds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from visual_search.domain.context import document_labels
from visual_search.domain.context import labels as context_labels
from visual_search.domain.document import AssetDocument

ASSET_ID = re.compile(r"[0-9a-f]{32}")
# Vectors come from an encoder that L2-normalises them; the slack absorbs float16/float32 round trips.
UNIT_NORM_TOLERANCE = 1e-3


DocIds = Mapping[str, str]  # asset_id -> the id the index gave its document


@dataclass(frozen=True)
class IndexedAsset:
    """One asset as the index holds it. `vector`: float32, shape (dim,), unit length."""

    asset_id: str
    vector: np.ndarray
    document: AssetDocument


@dataclass(frozen=True)
class Filters:
    """Restrictions on a search; every given restriction must hold. `context`: pairs the asset's context
    must hold (a value None: the key, with any value)."""

    folder: str | None = None
    tags: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    context: tuple[tuple[str, str | None], ...] = ()

    def labels(self) -> tuple[str, ...]:
        """The keywords a matching document's `filter_labels` must all hold."""
        return self.tags + context_labels(self.context)

    def matches(self, document: AssetDocument) -> bool:
        """The reference predicate; implementations that filter elsewhere must agree with it."""
        if self.folder is not None and not folder_matches(document.folder, self.folder):
            return False
        if not set(self.labels()) <= set(filter_labels(document)):
            return False
        return not self.formats or document.format in self.formats


def filter_labels(document: AssetDocument) -> tuple[str, ...]:
    """The keywords a document is filtered by, in one field: its tags, then its context's
    (`domain.context.labels`: never one a tag can be)."""
    return document.tags + document_labels(document.context)


def folder_matches(folder: str, prefix: str) -> bool:
    """Prefix match on whole path segments.

    >>> folder_matches("a/b/c", "a/b"), folder_matches("a/bc", "a/b"), folder_matches("x", "")
    (True, False, True)
    """
    prefix = prefix.strip("/")
    return not prefix or folder == prefix or folder.startswith(prefix + "/")


@dataclass(frozen=True)
class SearchAfter:
    """Cursor: the last hit of the previous page."""

    score: float
    asset_id: str


@dataclass(frozen=True)
class Hit:
    asset_id: str
    score: float  # cosine similarity, raw, in [-1, 1]
    document: AssetDocument


class VectorIndex(Protocol):
    dim: int

    def upsert(self, assets: Sequence[IndexedAsset], known: DocIds | None = None) -> DocIds:
        """Insert or replace by asset_id; atomic per call; durable when it returns.

        `known`: the document ids a previous upsert returned for some of these assets (the ingest ledger
        keeps them), so an implementation that cannot find a fresh write by asset id yet replaces it by
        id. Returns the id of each document written where the index chose it; an implementation keyed
        by asset id returns {} and ignores `known`.
        """
        ...

    def delete(self, asset_ids: Sequence[str], known: DocIds | None = None) -> None:
        """Remove these assets (and the documents in `known`, as for `upsert`); unknown ids are ignored."""

    def get(self, asset_id: str) -> IndexedAsset | None: ...

    def count(self) -> int: ...

    def knn_page(
        self,
        vector: np.ndarray,
        size: int,
        after: SearchAfter | None = None,
        filters: Filters | None = None,
        min_score: float | None = None,
        max_hits: int = 1000,
        snapshot: str | None = None,
        depth: int = 0,
    ) -> list[Hit]:
        """The next `size` hits after `after`; see the module docstring for the exact contract."""

    def open_snapshot(self) -> str | None:
        """An opaque token for `knn_page(snapshot=...)`, or None where there are no snapshots."""

    def close_snapshot(self, snapshot: str) -> None:
        """Release a snapshot (best effort: one that expired already is fine)."""

    def close(self) -> None: ...


def check_vector(vector: np.ndarray, dim: int, what: str = "query vector") -> np.ndarray:
    """The vector as contiguous float32 of shape (dim,); ValueError if it cannot be one."""
    array = np.ascontiguousarray(vector, dtype=np.float32)
    if array.shape != (dim,):
        raise ValueError(f"{what} has shape {array.shape}, expected ({dim},): wrong embedding dimension")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return array


def check_asset(asset: IndexedAsset, dim: int) -> np.ndarray:
    """Validate one asset before it is stored; returns its vector as contiguous float32."""
    if not isinstance(asset.asset_id, str) or not ASSET_ID.fullmatch(asset.asset_id):
        raise ValueError(f"asset_id {asset.asset_id!r} is not 32 lowercase hex characters")
    vector = check_vector(asset.vector, dim, what=f"vector of asset {asset.asset_id}")
    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if not math.isclose(norm, 1.0, abs_tol=UNIT_NORM_TOLERANCE):
        raise ValueError(f"vector of asset {asset.asset_id} has norm {norm:.6f}, expected unit length")
    _check_filter_fields(asset)
    return vector


def _check_filter_fields(asset: IndexedAsset) -> None:
    """Filters read these fields, so their types must be the declared ones (a dataclass does not check
    them at run time)."""
    document = asset.document
    if not isinstance(document, AssetDocument):
        raise ValueError(f"document of asset {asset.asset_id} is not an AssetDocument")
    if not isinstance(document.key, str) or not isinstance(document.format, str | None):
        raise ValueError(f"document of asset {asset.asset_id}: key and format must be strings")
    labels = [*document.tags, *(text for pair in document.context for text in pair)]
    if not all(isinstance(text, str) for text in labels):
        raise ValueError(f"document of asset {asset.asset_id}: tags and context must be strings")


def check_page_args(size: int, max_hits: int) -> None:
    if size < 1:
        raise ValueError(f"page size must be at least 1, got {size}")
    if max_hits < 1:
        raise ValueError(f"max_hits must be at least 1, got {max_hits}")
