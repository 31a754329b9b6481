"""Duplicates in three tiers, because one similarity cut-off lumps together what users tell apart:

* exact: the same bytes (equal content hash);
* near-identical: re-encodes and resizes (similarity >= near_threshold);
* similar: visually alike (similarity >= similar_threshold, tunable per call).

The collection report runs one k-NN query per asset: on OpenSearch about 14 ms each (bench/opensearch.py),
so 10,000 assets take minutes, past any request deadline. `report_page` walks as many assets as a time
budget allows and returns the links found; a caller pages on with the position it reached and merges
the links (`groups`) - the API's cursor over assets.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from visual_search.domain.document import AssetDocument
from visual_search.index.port import Hit, VectorIndex
from visual_search.search.lookup import find_asset

Tier = Literal["exact", "near", "similar"]
MAX_PER_ASSET = 100


@dataclass(frozen=True)
class Duplicate:
    asset_id: str
    score: float
    tier: Tier
    document: AssetDocument


@dataclass(frozen=True)
class DuplicateGroup:
    tier: Tier
    asset_ids: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """Two assets found to be duplicates, `first` < `second`."""

    tier: Tier
    first: str
    second: str
    score: float


class DuplicateFinder:
    def __init__(self, index: VectorIndex, near_threshold: float, similar_threshold: float):
        self._index = index
        self.near_threshold = near_threshold
        self.similar_threshold = similar_threshold

    def of_asset(self, asset_id: str, threshold: float | None = None) -> list[Duplicate]:
        """The other assets that duplicate `asset_id`, most similar first."""
        stored = find_asset(self._index, asset_id)
        floor = self.similar_threshold if threshold is None else threshold
        hits = self._index.knn_page(
            stored.vector, MAX_PER_ASSET + 1, min_score=floor, max_hits=MAX_PER_ASSET + 1
        )
        etag = stored.document.etag
        return [self._classify(h, etag) for h in hits if h.asset_id != asset_id][:MAX_PER_ASSET]

    def _classify(self, hit: Hit, etag: str | None) -> Duplicate:
        if etag and hit.document.etag == etag:
            tier: Tier = "exact"
        elif hit.score >= self.near_threshold:
            tier = "near"
        else:
            tier = "similar"
        return Duplicate(hit.asset_id, hit.score, tier, hit.document)

    def links_of(self, asset_id: str, threshold: float | None = None) -> list[Link]:
        """The links from `asset_id` to the duplicates that sort after it (so each pair is found once)."""
        return [
            Link(dup.tier, asset_id, dup.asset_id, dup.score)
            for dup in self.of_asset(asset_id, threshold)
            if asset_id < dup.asset_id
        ]

    def report(
        self, asset_ids: Iterable[str], threshold: float | None = None
    ) -> Iterator[str | DuplicateGroup]:
        """Walk the collection. Yields each asset id as it is done (for progress), then the groups:
        connected components per tier, a tier including the stricter ones' links."""
        links: list[Link] = []
        for asset_id in asset_ids:
            links += self.links_of(asset_id, threshold)
            yield asset_id
        yield from groups(links)

    def report_page(
        self,
        asset_ids: Sequence[str],
        threshold: float | None,
        budget_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> tuple[list[Link], int]:
        """The links of the first assets of `asset_ids`, walked until `budget_s` has passed (at least
        one asset), and how many were walked."""
        deadline = clock() + budget_s
        links: list[Link] = []
        done = 0
        for asset_id in asset_ids:
            links += self.links_of(asset_id, threshold)
            done += 1
            if clock() >= deadline:
                break
        return links, done


def groups(links: Iterable[Link]) -> list[DuplicateGroup]:
    """Connected components per tier, a tier including the stricter tiers' links."""
    by_tier: dict[Tier, list[tuple[str, str]]] = {"exact": [], "near": [], "similar": []}
    for link in links:
        by_tier[link.tier].append((link.first, link.second))
    strictness: list[Tier] = ["exact", "near", "similar"]
    found = []
    for i, tier in enumerate(strictness):
        pairs = [p for stricter in strictness[: i + 1] for p in by_tier[stricter]]
        found += [DuplicateGroup(tier, group) for group in _components(pairs)]
    return found


def _components(pairs: list[tuple[str, str]]) -> list[tuple[str, ...]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return sorted(tuple(sorted(g)) for g in groups.values() if len(g) > 1)
