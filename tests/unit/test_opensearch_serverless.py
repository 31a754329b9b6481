"""OpenSearch Serverless as AWS documents it (checked 2026-12-03; sources in docs/scaling.md): the two
collection generations get the mapping each accepts, NextGen keys documents by asset id where Classic
refuses custom ids, and a search with a next page reads one point in time, the pagination AWS recommends
on Serverless. Requests go through opensearch-py into the strict double, which refuses what each
generation refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.doubles.opensearch_double import FakeOpenSearch
from tests.fixtures.documents import document
from visual_search.errors import ConfigurationError
from visual_search.index.opensearch import OpenSearchIndex, connect
from visual_search.index.opensearch_mapping import IndexOptions
from visual_search.index.port import IndexedAsset, SearchAfter

DIM = 4
A, B, C = "a" * 32, "b" * 32, "c" * 32


def open_index(cluster: FakeOpenSearch, generation: str | None = None, **options) -> OpenSearchIndex:
    client = connect("https://search.example", auth="none", connection_class=cluster.connection_class())
    return OpenSearchIndex(
        client,
        "vs",
        DIM,
        "clip-test",
        mode=cluster.mode,
        generation=generation or cluster.generation,
        sleep=lambda _s: None,
        **options,
    )


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def asset(asset_id: str, vector: np.ndarray) -> IndexedAsset:
    return IndexedAsset(asset_id, vector, document(asset_id, asset_id[:4]))


def sent(cluster: FakeOpenSearch, method: str, path_part: str) -> list[tuple]:
    return [r for r in cluster.requests if r[0] == method and path_part in r[1]]


def create_index(cluster: FakeOpenSearch, vector_field: dict) -> tuple[int, dict]:
    body = {
        "settings": {"index": {"knn": True}},
        "mappings": {"properties": {"v": {"type": "knn_vector", "dimension": DIM, **vector_field}}},
    }
    return cluster.handle("PUT", "/raw", {}, json.dumps(body))


# --- the mapping each generation accepts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "parameter"),
    [
        ({"method": {"name": "hnsw", "engine": "faiss", "space_type": "l2"}}, "engine"),
        ({"mode": "on_disk"}, "mode"),
    ],
)
def test_a_nextgen_collection_refuses_engine_and_mode_in_a_mapping(field, parameter):
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")

    status, body = create_index(cluster, field)

    assert status == 400
    assert body["error"]["type"] == "illegal_argument_exception"
    assert body["error"]["reason"] == f"Field parameter '{parameter}' is not supported"
    assert "raw" not in cluster.indices


def test_a_nextgen_collection_accepts_an_hnsw_method_without_an_engine():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")
    field = {"space_type": "l2", "method": {"name": "hnsw", "parameters": {"m": 16, "ef_construction": 64}}}

    assert create_index(cluster, field)[0] == 200


def test_a_classic_collection_refuses_the_lucene_engine_it_does_not_support():
    cluster = FakeOpenSearch(mode="serverless", generation="classic")

    status, _ = create_index(cluster, {"method": {"name": "hnsw", "engine": "lucene"}})

    assert status == 400
    assert create_index(cluster, {"method": {"name": "hnsw", "engine": "faiss"}})[0] == 200


def test_nextgen_gets_an_index_without_engine_or_mode_that_keeps_the_hnsw_parameters():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")

    open_index(cluster, options=IndexOptions(compression_level="1x"))

    ((_, _, _, body),) = sent(cluster, "PUT", "/vs-")
    assert body["mappings"]["properties"]["vector"] == {
        "type": "knn_vector",
        "dimension": DIM,
        "space_type": "innerproduct",
        "compression_level": "1x",
        "method": {"name": "hnsw", "parameters": {"m": 16, "ef_construction": 128}},
    }
    assert body["settings"]["index"] == {"knn": True}  # no shards, replicas or refresh


def test_classic_gets_faiss_named_in_its_mapping_as_before():
    cluster = FakeOpenSearch(mode="serverless", generation="classic")

    open_index(cluster)

    ((_, _, _, body),) = sent(cluster, "PUT", "/vs-")
    assert body["mappings"]["properties"]["vector"]["method"]["engine"] == "faiss"


def test_a_compression_level_aws_does_not_list_is_refused_by_a_nextgen_collection():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")

    assert create_index(cluster, {"compression_level": "4x"})[0] == 400
    assert create_index(cluster, {"compression_level": "8x"})[0] == 200


def test_a_mapping_the_collection_refuses_is_a_start_up_error_that_names_the_generation_setting():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")

    with pytest.raises(ConfigurationError, match="VS_OPENSEARCH_GENERATION"):
        open_index(cluster, generation="classic")  # the Classic mapping names the engine


# --- document ids ---------------------------------------------------------------------------------------


def test_a_classic_collection_refuses_a_custom_id_and_a_nextgen_one_accepts_it():
    source = {"asset_id": "x", "vector": [1, 0, 0, 0], "folder_path": [], "tags": [], "document": {}}
    line = '{"index": {"_index": "vs", "_id": "x"}}\n' + json.dumps(source | {"format": None}) + "\n"
    for generation, status in (("classic", 400), ("nextgen", 201)):
        cluster = FakeOpenSearch(mode="serverless", generation=generation)
        open_index(cluster)
        _, body = cluster.handle("POST", "/_bulk", {}, line)
        assert body["items"][0]["index"]["status"] == status, generation


def test_on_nextgen_documents_are_keyed_by_asset_id_so_a_replace_is_one_write_and_no_id_to_keep():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen", refresh_lag=True)
    index = open_index(cluster)

    written = index.upsert([asset(A, unit(1, 0, 0, 0))])
    replaced = index.upsert([asset(A, unit(0, 1, 0, 0))])  # before the first write is searchable
    cluster.refresh()

    assert written == replaced == {}
    bulks = [body for _, _, _, body in sent(cluster, "POST", "/_bulk")]
    assert [b[0] for b in bulks] == [{"index": {"_index": "vs", "_id": A}}] * 2  # no delete first
    assert all(params == {} for _, _, params, _ in sent(cluster, "POST", "/_bulk"))  # no refresh
    assert list(cluster.indices["vs-clip-test"].docs) == [A]
    assert index.get(A).vector.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_on_nextgen_a_delete_inside_the_refresh_window_is_by_asset_id_and_leaves_no_ghost():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen", refresh_lag=True)
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0))])

    index.delete([A])
    cluster.refresh()

    assert index.count() == 0
    assert sent(cluster, "POST", "/_bulk")[-1][3] == [{"delete": {"_index": "vs", "_id": A}}]


def test_a_nextgen_search_leaves_vectors_out_of_source_unless_asked_and_get_asks():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0))])

    _, default = cluster.handle("POST", "/vs/_search", {}, "{}")

    assert "vector" not in default["hits"]["hits"][0]["_source"]
    assert index.get(A).vector.tolist() == [1.0, 0.0, 0.0, 0.0]


# --- point in time --------------------------------------------------------------------------------------


@pytest.mark.parametrize("generation", ["classic", "nextgen"])
def test_on_serverless_a_search_reads_every_page_in_one_point_in_time_by_default(generation):
    cluster = FakeOpenSearch(mode="serverless", generation=generation)
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(1, 1, 0, 0))])

    snapshot = index.open_snapshot()
    first = index.knn_page(unit(1, 0, 0, 0), 1, snapshot=snapshot)
    index.upsert([asset(C, unit(1, 2, 0, 0))])  # written after the search started
    after = SearchAfter(first[0].score, first[0].asset_id)
    rest = index.knn_page(unit(1, 0, 0, 0), 5, after, snapshot=snapshot)
    index.close_snapshot(snapshot)

    assert snapshot is not None
    ((_, path, params, _),) = sent(cluster, "POST", "/_search/point_in_time")
    assert (path, params) == ("/vs/_search/point_in_time", {"keep_alive": "60s"})
    assert [h.asset_id for h in first + rest] == [A, B]  # the later write is not in this search's pages
    (_, path, _, body) = sent(cluster, "POST", "/_search")[-1]
    assert (path, body["pit"]["id"], "search_after" in body) == ("/_search", snapshot, True)
    assert cluster.pits == {}  # closed when the walk ended


def test_point_in_time_on_serverless_can_be_turned_off():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")
    index = open_index(cluster, point_in_time_s=0)

    assert index.open_snapshot() is None
    assert sent(cluster, "POST", "point_in_time") == []


def test_a_domain_still_opens_no_point_in_time_unless_configured():
    cluster = FakeOpenSearch(mode="managed")
    index = open_index(cluster)

    assert index.open_snapshot() is None


def test_a_collection_that_refuses_a_point_in_time_leaves_the_search_paging_without_one():
    cluster = FakeOpenSearch(mode="serverless", generation="nextgen")
    index = open_index(cluster)
    cluster.refuse_point_in_time = True  # as a collection would if AWS withdrew it

    assert index.open_snapshot() is None
