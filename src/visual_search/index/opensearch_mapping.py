"""What the OpenSearch index looks like: settings and mappings from the model manifest, documents in and
out, and OpenSearch's k-NN scores converted to the raw cosine every VectorIndex returns.

A document is stored as `{"asset_id", "vector", "folder_path": [ancestors], "tags", "format",
"document": {...}}`: the filter fields are keywords at the top level (`tags` holds the context's
keywords too: `port.filter_labels`), the asset's document is kept whole and unindexed under `document`
in its stored form (`AssetDocument.to_fields`, read back by `from_fields`), and `folder_path` lists the
folder and every ancestor ("a", "a/b", "a/b/c") so a folder filter is one term query that matches whole
segments, as `Filters.matches` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from visual_search.domain.document import AssetDocument
from visual_search.index.port import Filters, Hit, IndexedAsset, filter_labels

VECTOR = "vector"
SpaceType = Literal["innerproduct", "cosinesimil"]
# Where the index lives: a domain (or any cluster with the k-NN plugin), or an OpenSearch Serverless
# vector collection of either generation; each accepts a different mapping (see `vector_mapping`).
Deployment = Literal["managed", "classic", "nextgen"]


@dataclass(frozen=True)
class IndexOptions:
    """k-NN method settings. innerproduct on unit vectors is the cosine, without cosinesimil's
    normalisation at query time; fp16 halves graph memory (see docs/scaling.md).

    `ef_search` is the HNSW beam every query sends; `k_floor` and `k_factor` size each page's k (see
    `opensearch_query.page_k`). Defaults measured by bench/opensearch.py (docs/opensearch.md)."""

    engine: Literal["faiss", "lucene"] = "faiss"
    space_type: SpaceType = "innerproduct"
    m: int = 16
    ef_construction: int = 128
    ef_search: int = 1000
    k_floor: int = 200
    k_factor: float = 2.0
    fp16: bool = False
    shards: int = 1
    replicas: int = 1
    # How often new writes become searchable; a managed write waits for it (`refresh=wait_for`), so a
    # shorter one makes writes slower to acknowledge but not cheaper. None keeps OpenSearch's 1 s.
    refresh_interval: str | None = None
    # How far vectors are compressed in memory (`compression_level`: AWS lists 1x, 2x, 8x, 16x and 32x for
    # NextGen collections, whose default is 32x). None sends nothing: the engine's default. Recall at each
    # level is not measured here (docs/scaling.md).
    compression_level: str | None = None

    def __post_init__(self) -> None:
        # Below 1, a page deeper than k would come back short and end the walk early.
        if self.k_factor < 1 or self.k_floor < 1 or self.ef_search < 1:
            raise ValueError("k_factor, k_floor and ef_search must be at least 1")


def index_body(dim: int, model_id: str, options: IndexOptions, deployment: Deployment) -> dict[str, Any]:
    index_settings: dict[str, Any] = {"knn": True}
    if deployment == "managed":  # a Serverless collection manages shards, replicas and refresh itself
        index_settings |= {"number_of_shards": options.shards, "number_of_replicas": options.replicas}
        if options.refresh_interval:
            index_settings["refresh_interval"] = options.refresh_interval
    return {
        "settings": {"index": index_settings},
        "mappings": {
            "_meta": {"model_id": model_id, "dimension": dim, "normalised": True},
            "dynamic": "strict",
            "properties": {
                VECTOR: vector_mapping(dim, options, deployment),
                "asset_id": {"type": "keyword"},
                "folder_path": {"type": "keyword"},
                "tags": {"type": "keyword"},
                "format": {"type": "keyword"},
                "document": {"type": "object", "enabled": False},
            },
        },
    }


def vector_mapping(dim: int, options: IndexOptions, deployment: Deployment) -> dict[str, Any]:
    """The `knn_vector` field. A domain and a Classic collection are told the engine (Classic supports
    only HNSW on faiss); a NextGen collection chooses engine and mode itself and refuses either in a
    mapping (400 "Field parameter 'engine' is not supported"), so it gets the space type on the field, as
    AWS's NextGen examples put it, and an HNSW method that names only `m` and `ef_construction`."""
    parameters: dict[str, Any] = {"m": options.m, "ef_construction": options.ef_construction}
    field: dict[str, Any] = {"type": "knn_vector", "dimension": dim}
    if deployment == "nextgen":
        if options.fp16:  # a faiss encoder; NextGen documents compression_level as its only knob
            raise ValueError("fp16 names a faiss encoder: on NextGen, set compression_level instead")
        field["space_type"] = options.space_type
        method: dict[str, Any] = {"name": "hnsw", "parameters": parameters}
    else:
        if options.engine == "faiss":
            # The beam of a query that names none (every query of ours does: opensearch_query). faiss
            # reads it from the mapping; the index setting `knn.algo_param.ef_search` is nmslib's only
            # (k-NN 2.19). NextGen is not sent it: only m and ef_construction are reported accepted
            # there (AWS documents none), and every query carries its own beam.
            parameters["ef_search"] = options.ef_search
            if options.fp16:
                parameters["encoder"] = {"name": "sq", "parameters": {"type": "fp16"}}
        method = {"name": "hnsw", "engine": options.engine, "space_type": options.space_type,
                  "parameters": parameters}  # fmt: skip
    if options.compression_level:
        field["compression_level"] = options.compression_level
    return field | {"method": method}


def to_source(asset: IndexedAsset, vector: np.ndarray) -> dict[str, Any]:
    # float32 -> Python float: its repr (float64's shortest) reads back to the same float32.
    return {**source_fields(asset), VECTOR: [float(x) for x in vector]}


def source_fields(asset: IndexedAsset) -> dict[str, Any]:
    """The document's fields other than the vector (a bulk load encodes the vector itself)."""
    document = asset.document
    return {
        "asset_id": asset.asset_id,
        "folder_path": folder_ancestors(document.folder),
        "tags": list(filter_labels(document)),
        "format": document.format,
        "document": document.to_fields(),
    }


def from_source(source: Mapping[str, Any]) -> IndexedAsset:
    vector = np.asarray(source[VECTOR], dtype=np.float32)
    return IndexedAsset(source["asset_id"], vector, AssetDocument.from_fields(source["document"]))


def from_hit(hit: Mapping[str, Any], space_type: SpaceType) -> Hit:
    """A search hit (its `_source` without the vector) as the port's Hit, its score the raw cosine."""
    source = hit["_source"]
    score = to_cosine(float(hit["_score"]), space_type)
    return Hit(source["asset_id"], score, AssetDocument.from_fields(source["document"]))


def folder_ancestors(folder: str) -> list[str]:
    """ "a/b/c" -> ["a", "a/b", "a/b/c"]; "" -> []."""
    parts = [p for p in folder.strip("/").split("/") if p]
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]


def filter_clauses(filters: Filters | None) -> list[dict[str, Any]]:
    """The k-NN `filter` (efficient filtering: applied while searching the graph, not after)."""
    if filters is None:
        return []
    clauses: list[dict[str, Any]] = []
    folder = (filters.folder or "").strip("/")
    if folder:
        clauses.append({"term": {"folder_path": folder}})
    clauses.extend({"term": {"tags": label}} for label in filters.labels())
    if filters.formats:
        clauses.append({"terms": {"format": list(filters.formats)}})
    return clauses


def to_cosine(score: float, space_type: SpaceType) -> float:
    """OpenSearch's k-NN score -> the raw cosine of unit vectors (the inverse of `to_score`)."""
    if space_type == "cosinesimil":
        return 2.0 * score - 1.0
    return score - 1.0 if score >= 1.0 else 1.0 - 1.0 / score


def to_score(cosine: float, space_type: SpaceType) -> float:
    """The score OpenSearch gives a hit of this cosine, as the float32 it holds (so a search_after value
    compares equal to the score it came from)."""
    if space_type == "cosinesimil":
        value = (1.0 + cosine) / 2.0
    else:  # innerproduct: 1 + ip for ip >= 0, 1 / (1 - ip) below
        value = 1.0 + cosine if cosine >= 0 else 1.0 / (1.0 - cosine)
    return float(np.float32(value)) if math.isfinite(value) else value
