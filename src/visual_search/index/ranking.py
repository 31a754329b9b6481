"""Exact scoring and page selection, shared by every implementation that ranks vectors itself.

Pure numpy. The ordering is the port's: score descending, then asset_id ascending.
"""

from __future__ import annotations

import numpy as np

from visual_search.index.port import SearchAfter

_CHUNK_ROWS = 2048


def exact_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Dot product of each row of `vectors` (float32, (m, dim)) with `query` (float32, (dim,)): (m,) float32.

    A row's score is bit-identical whatever other rows are passed with it. BLAS (`vectors @ query`) does
    not promise that: its kernels sum differently depending on the row's position in the block, and a
    score carried in a search_after cursor must compare exactly on the next call. numpy's row-wise sum
    reduces each contiguous row on its own.
    """
    out = np.empty(len(vectors), dtype=np.float32)
    buffer = np.empty((min(_CHUNK_ROWS, len(vectors)), query.shape[0]), dtype=np.float32)
    for start in range(0, len(vectors), _CHUNK_ROWS):
        chunk = vectors[start : start + _CHUNK_ROWS]
        products = np.multiply(chunk, query, out=buffer[: len(chunk)])
        np.sum(products, axis=1, out=out[start : start + len(chunk)])
    return out


def select_page(
    scores: np.ndarray,
    ids: np.ndarray,
    *,
    size: int,
    after: SearchAfter | None,
    min_score: float | None,
    max_hits: int,
) -> tuple[np.ndarray, bool]:
    """Pick the page among candidates `scores` (float32, (m,)) with asset ids `ids` (str or bytes, (m,)).

    Returns the candidates' positions in page order and whether the page is complete: it holds `size`
    hits or reaches the `max_hits`-th entry of the ranked list. An incomplete page means the candidates
    ran out, so a caller holding only some of the assets should fetch more.

    Comparisons are made in float64 on the float32 scores, i.e. on exactly the values that `Hit.score`
    reports and that a cursor carries back.
    """
    positions = np.arange(len(scores))
    wide = scores.astype(np.float64)
    if min_score is not None:
        positions = positions[wide >= min_score]
    before = 0
    if after is not None:
        score = wide[positions]
        after_id = after.asset_id.encode() if ids.dtype.kind == "S" else after.asset_id
        later = (score < after.score) | ((score == after.score) & (ids[positions] > after_id))
        before = len(positions) - int(np.count_nonzero(later))
        positions = positions[later]
    room = min(size, max_hits - before)
    if room <= 0:
        return positions[:0], True
    page = _top(positions, scores, ids, room)
    return page, len(page) == room


def _top(positions: np.ndarray, scores: np.ndarray, ids: np.ndarray, count: int) -> np.ndarray:
    if len(positions) > count:
        candidate = scores[positions]
        # Keep everything tied with the count-th best score, so the id tie-break sees all of them.
        threshold = np.partition(candidate, len(candidate) - count)[len(candidate) - count]
        positions = positions[candidate >= threshold]
    order = np.lexsort((ids[positions], -scores[positions]))
    return positions[order[:count]]
