"""The k-NN search request the OpenSearch adapter sends for one page, and how wide it searches.

Two numbers decide what a k-NN query costs and finds, and they are not the same thing (k-NN 2.19):
- `ef_search`, the HNSW beam: how many candidates the graph walk keeps. It is what buys recall. Every
  query sends it (`method_parameters.ef_search`), from one setting per index, so every page of a search
  walks with the same beam whatever its k. On faiss, k does not widen the beam at all; on Lucene the
  beam is max(k, ef_search), and Lucene returns that many hits (not k).
- `k`, how many hits each shard returns. A page must come from the first k, so k bounds how deep a walk
  can page; it also costs (scoring and sorting k hits per segment, and on Lucene a beam of k).

So k grows with the page instead of being `max_hits` on every page (issue #22 measured 108 ms at
p50 for k = 1,000 against 11 ms for k = 10 on 100k vectors): the page after `depth` served hits asks for
`min(max(k_floor, ceil((depth + size) * k_factor)), max_hits)`.

Pages never repeat a hit: each is cut by `search_after` on (score, asset_id), a strict total order, so
what was served sorts before the cursor on every later page - as long as a document's score is the same
on every page. It is for an unfiltered query: each segment is scored by its graph walk whatever k is.
A filtered query on faiss is not: a segment is scored by faiss's walk, or by an exact scan in Java when
the filter matches at most k documents or the walk finds fewer than k (k-NN 2.19 `KNNWeight`, see
docs/scaling.md), and the two disagree in the last bits (by ~1e-4 with fp16 vectors) - so with a k that
grows, a document served on one page could score just below the cursor on a later one and come again.
Filtered queries therefore keep k = `max_hits` on every page, as every query did before.

What a narrower early page can do is *skip*: a document its search missed may be found by a wider later
search and rank above the cursor, where no page serves it. `bench/opensearch.py` counts skips over 10
pages against a k = max_hits walk; the defaults skip none there (see `IndexOptions`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from visual_search.index.opensearch_mapping import VECTOR, IndexOptions, to_score
from visual_search.index.port import SearchAfter

MAX_K = 10_000  # the k-NN plugin's limit on k


def page_k(depth: int, size: int, max_hits: int, options: IndexOptions, filtered: bool = False) -> int:
    """k for the page after `depth` hits of a walk that may serve at most `max_hits`.

    >>> options = IndexOptions(k_floor=100, k_factor=2.0)
    >>> [page_k(depth, 50, 1000, options) for depth in (0, 50, 200, 450, 950)]
    [100, 200, 500, 1000, 1000]
    >>> page_k(0, 50, 1000, options, filtered=True)
    1000
    """
    if filtered:
        return min(max_hits, MAX_K)
    wanted = max(options.k_floor, math.ceil((depth + size) * options.k_factor))
    return min(wanted, max_hits, MAX_K)


def knn_body(
    query: np.ndarray,
    size: int,
    k: int,
    clauses: list[dict[str, Any]],
    options: IndexOptions,
    after: SearchAfter | None = None,
    min_score: float | None = None,
) -> dict[str, Any]:
    """The `_search` body: a k-NN query with its filters inside (efficient filtering: applied while the
    graph is searched, not after), sorted by score then asset_id, from after `after`."""
    knn: dict[str, Any] = {
        "vector": [float(x) for x in query],
        "k": k,
        "method_parameters": {"ef_search": options.ef_search},
    }
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    body: dict[str, Any] = {
        # Lucene answers max(k, ef_search) hits, so `size` alone keeps a page to what it asked for.
        "size": min(size, k),
        "query": {"knn": {VECTOR: knn}},
        # The forms the API specification's `oneOf` accepts unambiguously ("asset_id": ascending).
        "sort": [{"_score": "desc"}, "asset_id"],
        "_source": {"excludes": [VECTOR]},
    }
    if min_score is not None:
        body["min_score"] = to_score(min_score, options.space_type)
    if after is not None:
        body["search_after"] = [to_score(after.score, options.space_type), after.asset_id]
    return body
