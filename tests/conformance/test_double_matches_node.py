"""The strict double answers as a real OpenSearch node does, for the requests where they were found to
differ: the same raw request goes to both, and status and error types must agree.

Each case is a disagreement found by running the double beside the node (see docs/opensearch.md):
the double accepted `k` with `min_score` inside `knn` (a node refuses it), refused `boost` and
`_name` (a node accepts them), reported an expired point in time at the top level (a node wraps it in
`search_phase_execution_exception`) and answered errors as text, so opensearch-py never parsed them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy.exceptions import TransportError

from tests.doubles.opensearch_double import FakeOpenSearch
from visual_search.index.opensearch import connect
from visual_search.index.opensearch_errors import error_types

MAPPING = {
    "settings": {"index": {"knn": True, "number_of_replicas": 0}},
    "mappings": {
        "properties": {
            "vector": {
                "type": "knn_vector",
                "dimension": 2,
                "method": {"name": "hnsw", "space_type": "innerproduct", "engine": "lucene"},
            },
            "asset_id": {"type": "keyword"},
        }
    },
}


@pytest.fixture(params=["double", "node"])
def client(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "double":
        cluster = FakeOpenSearch()
        client = connect("https://search.example", auth="none", connection_class=cluster.connection_class())
    else:
        client = connect(request.getfixturevalue("opensearch_url"), auth="none")
    name = f"vs-probe-{uuid.uuid4().hex[:8]}"
    client.indices.create(index=name, body=MAPPING)
    client.bulk(
        body=[{"index": {"_index": name, "_id": "a"}}, {"vector": [1, 0], "asset_id": "a"}], refresh="true"
    )
    client.probe = name
    yield client
    if request.param == "node":
        client.indices.delete(index=name, ignore=[404])


def answer(call) -> tuple[int, frozenset[str]]:
    try:
        call()
    except TransportError as exc:
        return exc.status_code, error_types(exc.info)
    return 200, frozenset()


def knn(client: Any, **options: Any) -> tuple[int, frozenset[str]]:
    body = {"query": {"knn": {"vector": {"vector": [1.0, 0.0], **options}}}}
    return answer(lambda: client.search(index=client.probe, body=body))


def test_k_together_with_min_score_inside_knn_is_refused(client):
    assert knn(client, k=2, min_score=0.5) == (400, frozenset({"illegal_argument_exception"}))


def test_boost_and_name_inside_knn_are_accepted(client):
    assert knn(client, k=2, boost=2.0, _name="q") == (200, frozenset())


def test_a_closed_point_in_time_is_a_404_whose_root_cause_is_the_missing_context(client):
    pit = client.create_pit(index=client.probe, params={"keep_alive": "10s"})["pit_id"]
    client.delete_pit(body={"pit_id": [pit]})

    status, types = answer(lambda: client.search(body={"pit": {"id": pit}, "query": {"match_all": {}}}))

    assert status == 404
    assert {"search_phase_execution_exception", "search_context_missing_exception"} <= types


def test_a_search_reports_its_shards(client):
    response = client.search(index=client.probe, body={"query": {"match_all": {}}})

    assert response["_shards"]["failed"] == 0
    assert response["timed_out"] is False


def test_creating_an_index_that_exists_is_a_400_resource_already_exists(client):
    status, types = answer(lambda: client.indices.create(index=client.probe, body=MAPPING))

    assert status == 400
    assert "resource_already_exists_exception" in types


def test_searching_a_missing_index_is_a_404_index_not_found(client):
    status, types = answer(lambda: client.search(index="vs-probe-missing", body={"query": {"match_all": {}}}))

    assert status == 404
    assert "index_not_found_exception" in types


def test_a_positive_integer_ef_search_in_method_parameters_is_accepted(client):
    assert knn(client, k=2, method_parameters={"ef_search": 16}) == (200, frozenset())


@pytest.mark.parametrize(
    ("parameters", "kind"),
    [
        ({"ef_search": 0}, "illegal_argument_exception"),
        ({"ef_search": "many"}, "x_content_parse_exception"),
        ({"ef_search": 5.5}, "x_content_parse_exception"),
        ({"beam": 3}, "x_content_parse_exception"),
    ],
)
def test_a_bad_method_parameter_is_refused_with_the_nodes_error(client, parameters, kind):
    status, types = knn(client, k=2, method_parameters=parameters)

    assert (status, kind in types) == (400, True)
