"""The exact requests the OpenSearch adapter sends for its main operations — to compare with the
OpenSearch documentation — and how it handles throttling, partial bulk failures, a model mismatch and
AWS authentication. Requests go through opensearch-py into the strict double (tests/doubles), which
checks each against OpenSearch's published API specification first."""

from __future__ import annotations

import numpy as np
import pytest
from opensearchpy import AWSV4SignerAuth

from tests.doubles.opensearch_double import FakeOpenSearch
from tests.fixtures.documents import document
from visual_search.errors import ConfigurationError, DependencyUnavailable
from visual_search.index.opensearch import OpenSearchIndex, connect
from visual_search.index.opensearch_mapping import IndexOptions
from visual_search.index.port import Filters, IndexedAsset, SearchAfter

DIM = 4
A, B = "a" * 32, "b" * 32


def open_index(
    cluster: FakeOpenSearch, model: str = "clip-test", dim: int = DIM, **options
) -> OpenSearchIndex:
    client = connect("https://search.example", auth="none", connection_class=cluster.connection_class())
    return OpenSearchIndex(
        client, "vs", dim, model, mode=cluster.mode, generation=cluster.generation, sleep=lambda _s: None,
        **options,
    )  # fmt: skip


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def asset(asset_id: str, vector: np.ndarray, folder: str = "shoes/red") -> IndexedAsset:
    return IndexedAsset(asset_id, vector, document(asset_id, "p", folder=folder, tags=["sale"]))


def sent(cluster: FakeOpenSearch, method: str, path_part: str) -> list[tuple]:
    return [r for r in cluster.requests if r[0] == method and path_part in r[1]]


def test_functions_racing_to_create_the_index_on_first_start_all_start(monkeypatch):
    cluster = FakeOpenSearch()
    first = open_index(cluster)
    cluster.aliases.clear()  # as if the other function had created the index but not yet the alias
    client = connect("https://search.example", auth="none", connection_class=cluster.connection_class())
    monkeypatch.setattr(type(client.indices), "exists", lambda self, index, **kw: False)  # lost the race
    second = OpenSearchIndex(client, "vs", DIM, "clip-test", mode=cluster.mode, sleep=lambda _s: None)
    assert second.physical_name == first.physical_name
    assert set(cluster.aliases["vs"]) == {first.physical_name}
    assert len(sent(cluster, "PUT", "/vs-clip-test")) == 2  # the second create was refused, and that is fine


def test_first_start_creates_the_models_index_from_the_manifest_and_points_the_alias_at_it():
    cluster = FakeOpenSearch()
    open_index(cluster, options=IndexOptions(fp16=True))
    ((_, path, _, body),) = sent(cluster, "PUT", "/vs-")
    assert path == "/vs-clip-test"
    assert body["settings"]["index"] == {
        "knn": True,
        "number_of_shards": 1,
        "number_of_replicas": 1,
    }
    mappings = body["mappings"]
    assert mappings["_meta"] == {"model_id": "clip-test", "dimension": DIM, "normalised": True}
    assert mappings["dynamic"] == "strict"
    assert mappings["properties"]["vector"] == {
        "type": "knn_vector",
        "dimension": DIM,
        "method": {
            "name": "hnsw",
            "engine": "faiss",
            "space_type": "innerproduct",
            "parameters": {
                "m": 16,
                "ef_construction": 128,
                "ef_search": 1000,
                "encoder": {"name": "sq", "parameters": {"type": "fp16"}},
            },
        },
    }
    assert {k: v["type"] for k, v in mappings["properties"].items() if k != "vector"} == {
        "asset_id": "keyword",
        "folder_path": "keyword",
        "tags": "keyword",
        "format": "keyword",
        "document": "object",
    }
    ((_, _, _, aliases),) = sent(cluster, "POST", "/_aliases")
    assert aliases == {"actions": [{"add": {"index": "vs-clip-test", "alias": "vs"}}]}


def test_a_managed_upsert_is_one_bulk_keyed_by_asset_id_and_waits_for_refresh():
    cluster = FakeOpenSearch()
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0))])
    ((_, path, params, lines),) = sent(cluster, "POST", "/_bulk")
    assert (path, params) == ("/_bulk", {"refresh": "wait_for"})
    assert lines == [
        {"index": {"_index": "vs", "_id": A}},
        {
            "asset_id": A,
            "vector": [1.0, 0.0, 0.0, 0.0],
            "folder_path": ["shoes", "shoes/red"],
            "tags": ["sale"],
            "format": "jpg",
            "document": {  # AssetDocument.to_fields(): the stored form every version wrote
                "asset_id": A,
                "key": "shoes/red/p.jpg",
                "public_id": "shoes/red/p",
                "folder": "shoes/red",
                "format": "jpg",
                "bytes": 1000,
                "tags": ["sale"],
                "created_at": "2026-11-24T10:00:00Z",
            },
        },
    ]


def test_a_classic_serverless_upsert_finds_the_old_documents_deletes_them_and_indexes_without_an_id():
    cluster = FakeOpenSearch(mode="serverless", generation="classic")
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0))])
    index.upsert([asset(A, unit(0, 1, 0, 0))])
    bulks = sent(cluster, "POST", "/_bulk")
    assert all(params == {} for _, _, params, _ in bulks)  # no refresh on Serverless
    delete, index_again = bulks[1][3], bulks[2][3]
    assert list(delete[0]) == ["delete"]
    assert index_again[0] == {"index": {"_index": "vs"}}
    assert index.count() == 1
    assert index.get(A).vector.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_a_classic_serverless_upsert_returns_each_assets_generated_id_even_when_an_item_was_retried():
    cluster = FakeOpenSearch(mode="serverless", generation="classic")
    index = open_index(cluster)
    cluster.bulk_item_faults = [429]  # the first item (A) is throttled once, so B's answer comes first

    written = index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(0, 1, 0, 0))])

    docs = cluster.indices["vs-clip-test"].docs
    assert {asset_id: docs[doc_id]["asset_id"] for asset_id, doc_id in written.items()} == {A: A, B: B}


def test_a_managed_upsert_returns_no_ids_since_documents_are_keyed_by_asset_id():
    assert open_index(FakeOpenSearch()).upsert([asset(A, unit(1, 0, 0, 0))]) == {}


def test_a_classic_replace_and_delete_remove_the_known_document_by_id_before_it_is_searchable():
    cluster = FakeOpenSearch(mode="serverless", generation="classic", refresh_lag=True)
    index = open_index(cluster)
    first = index.upsert([asset(A, unit(1, 0, 0, 0))])
    second = index.upsert([asset(A, unit(0, 1, 0, 0))], known=first)  # the term query finds nothing yet

    replace_bulk = sent(cluster, "POST", "/_bulk")[1][3]
    assert replace_bulk == [{"delete": {"_index": "vs", "_id": first[A]}}]
    assert list(cluster.indices["vs-clip-test"].docs) == [second[A]]

    index.delete([A], known=second)
    assert cluster.indices["vs-clip-test"].docs == {}


def test_a_classic_upsert_that_fails_withdraws_the_documents_it_had_written():
    # Its retry may come before the collection's refresh, when a term query cannot find them.
    cluster = FakeOpenSearch(mode="serverless", generation="classic", refresh_lag=True)
    index = open_index(cluster)
    cluster.bulk_item_faults = [0] + [503] * 5  # A lands; B is throttled on every one of the 5 attempts

    with pytest.raises(DependencyUnavailable):
        index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(0, 1, 0, 0))])

    assert cluster.indices["vs-clip-test"].docs == {}


def test_a_document_a_failed_classic_upsert_could_not_withdraw_goes_with_the_assets_next_write():
    cluster = FakeOpenSearch(mode="serverless", generation="classic", refresh_lag=True)
    index = open_index(cluster)
    # A lands, B is throttled on all 5 attempts, then withdrawing A is throttled on all 5 attempts too.
    cluster.bulk_item_faults = [0] + [503] * 10
    with pytest.raises(DependencyUnavailable):
        index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(0, 1, 0, 0))])
    assert len(cluster.indices["vs-clip-test"].docs) == 1

    written = index.upsert([asset(A, unit(0, 0, 1, 0)), asset(B, unit(0, 1, 0, 0))])  # the retry, at once

    assert set(cluster.indices["vs-clip-test"].docs) == set(written.values())


def test_search_is_a_filtered_knn_query_sorted_by_score_then_asset_id_with_search_after():
    cluster = FakeOpenSearch()
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(1, 1, 0, 0))])
    filters = Filters(folder="shoes/", tags=("sale",), formats=("jpg", "png"))
    hits = index.knn_page(unit(1, 0, 0, 0), 1, SearchAfter(0.5, A), filters, min_score=0.25, max_hits=500)
    ((_, path, _, body),) = [r for r in sent(cluster, "POST", "/vs/_search") if "knn" in str(r[3])]
    assert path == "/vs/_search"
    assert body == {
        "size": 1,
        "query": {
            "knn": {
                "vector": {
                    "vector": [1.0, 0.0, 0.0, 0.0],
                    "k": 500,  # filtered: max_hits on every page (see opensearch_query)
                    "method_parameters": {"ef_search": 1000},
                    "filter": {
                        "bool": {
                            "filter": [
                                {"term": {"folder_path": "shoes"}},
                                {"term": {"tags": "sale"}},
                                {"terms": {"format": ["jpg", "png"]}},
                            ]
                        }
                    },
                }
            }
        },
        "sort": [{"_score": "desc"}, "asset_id"],
        "_source": {"excludes": ["vector"]},
        "min_score": 1.25,  # innerproduct score of cosine 0.25: 1 + 0.25
        "search_after": [1.5, A],
    }
    assert [h.asset_id for h in hits] == []  # B scores 1.707 > 1.5: before the cursor


def knn_requests(cluster: FakeOpenSearch) -> list[dict]:
    return [r[3]["query"]["knn"]["vector"] for r in sent(cluster, "POST", "_search") if "knn" in str(r[3])]


def test_k_grows_with_the_page_while_every_page_searches_with_the_same_beam():
    cluster = FakeOpenSearch()
    options = IndexOptions(ef_search=64, k_floor=30, k_factor=1.5)
    index = open_index(cluster, options=options)
    rng = np.random.default_rng(0)
    index.upsert([asset(f"{n:032x}", unit(*rng.standard_normal(DIM))) for n in range(200)])
    query, after, served = unit(1, 2, 3, 4), None, 0
    for _ in range(6):
        page = index.knn_page(query, 25, after, max_hits=200, depth=served)
        served += len(page)
        after = SearchAfter(page[-1].score, page[-1].asset_id)

    sent_k = [(knn["k"], knn["method_parameters"]) for knn in knn_requests(cluster)]
    # ceil((depth + 25) * 1.5), at least 30, at most max_hits
    assert [k for k, _ in sent_k] == [38, 75, 113, 150, 188, 200]
    assert {p["ef_search"] for _, p in sent_k} == {64}


def test_a_first_page_asks_for_what_its_size_needs_not_max_hits():
    cluster = FakeOpenSearch()
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0))])
    index.knn_page(unit(1, 0, 0, 0), 10, max_hits=1000)
    index.knn_page(unit(1, 0, 0, 0), 600, max_hits=1000)
    assert [knn["k"] for knn in knn_requests(cluster)] == [200, 1000]


def test_a_filtered_walk_asks_for_max_hits_on_every_page_so_no_page_changes_how_a_segment_is_scored():
    cluster = FakeOpenSearch()
    index = open_index(cluster, options=IndexOptions(k_floor=10, k_factor=1.0))
    index.upsert([asset(f"{n:032x}", unit(1, n, 0, 0)) for n in range(40)])
    after, served = None, 0
    for _ in range(3):
        page = index.knn_page(
            unit(1, 0, 0, 0), 10, after, Filters(folder="shoes"), max_hits=300, depth=served
        )
        served += len(page)
        after = SearchAfter(page[-1].score, page[-1].asset_id)
    assert [knn["k"] for knn in knn_requests(cluster)] == [300, 300, 300]


@pytest.mark.parametrize("option", ["k_factor", "k_floor", "ef_search"])
def test_a_k_factor_floor_or_beam_below_one_is_refused(option):
    with pytest.raises(ValueError, match="at least 1"):
        IndexOptions(**{option: 0.5 if option == "k_factor" else 0})


def test_a_model_change_swaps_the_alias_in_one_atomic_call():
    cluster = FakeOpenSearch()
    old = open_index(cluster)
    old.create_physical("vs-clip-next")
    cluster.requests.clear()
    old.activate("vs-clip-next")
    ((_, _, _, body),) = sent(cluster, "POST", "/_aliases")
    assert body == {
        "actions": [
            {"remove": {"index": "vs-clip-test", "alias": "vs"}},
            {"add": {"index": "vs-clip-next", "alias": "vs"}},
        ]
    }
    assert cluster.aliases["vs"] == {"vs-clip-next"}


def test_a_throttled_bulk_item_is_retried_alone_and_lands():
    cluster = FakeOpenSearch()
    index = open_index(cluster)
    cluster.bulk_item_faults = [0, 429]  # 0: no fault; the second item is throttled once
    index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(0, 1, 0, 0))])
    first, retry = (lines for _, _, _, lines in sent(cluster, "POST", "/_bulk"))
    assert len(first) == 4
    assert retry[0] == {"index": {"_index": "vs", "_id": B}}
    assert len(retry) == 2
    assert index.count() == 2


def test_throttling_that_lasts_is_dependency_unavailable_not_a_crash():
    cluster = FakeOpenSearch()
    index = open_index(cluster)
    cluster.throttle_requests = 100
    with pytest.raises(DependencyUnavailable):
        index.knn_page(unit(1, 0, 0, 0), 5)
    cluster.throttle_requests = 0
    cluster.bulk_item_faults = [503] * 10
    with pytest.raises(DependencyUnavailable, match="throttled"):
        index.upsert([asset(A, unit(1, 0, 0, 0))])


def test_an_index_of_another_model_or_dimension_is_a_clear_start_up_error():
    cluster = FakeOpenSearch()
    open_index(cluster, model="clip-test")
    with pytest.raises(ConfigurationError, match="re-index"):
        open_index(cluster, model="clip-other")
    other = FakeOpenSearch()
    open_index(other, model="clip-test", dim=DIM)
    with pytest.raises(ConfigurationError, match="dimension"):
        open_index(other, model="clip-test", dim=DIM + 1)


@pytest.mark.parametrize(("mode", "service"), [("managed", "es"), ("serverless", "aoss")])
def test_sigv4_signs_for_es_on_a_domain_and_aoss_on_serverless(monkeypatch, mode, service):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = connect("https://x.eu-west-1.es.amazonaws.com", auth="sigv4", mode=mode, region="eu-west-1")
    auth = client.transport.kwargs["http_auth"]
    assert isinstance(auth, AWSV4SignerAuth)
    assert (auth.service, auth.signer.region) == (service, "eu-west-1")
    assert client.transport.kwargs["verify_certs"] is True


def test_basic_auth_needs_both_parts():
    with pytest.raises(ConfigurationError, match="username and a password"):
        connect("https://cluster.internal:9200", auth="basic", username="admin")


def test_the_double_rejects_what_serverless_and_the_specification_reject():
    cluster = FakeOpenSearch(mode="serverless", generation="classic")
    open_index(cluster)
    status, body = cluster.handle(
        "POST", "/_bulk", {}, '{"index": {"_index": "vs", "_id": "x"}}\n{"asset_id": "x"}\n'
    )
    assert status == 200
    assert body["items"][0]["index"]["status"] == 400
    assert (
        cluster.handle(
            "POST", "/_bulk", {"refresh": "wait_for"}, '{"delete": {"_index": "vs", "_id": "x"}}\n'
        )[0]
        == 400
    )
    assert cluster.handle("POST", "/vs/_search", {"refreshh": "1"}, "{}")[0] == 400
    assert cluster.handle("POST", "/vs/_serch", {}, "{}")[0] == 400
    bad_knn = '{"query": {"knn": {"vector": {"vector": [1, 0, 0, 0], "k": 20000}}}}'
    assert cluster.handle("POST", "/vs/_search", {}, bad_knn)[0] == 400


@pytest.mark.parametrize(("mode", "generation"), [("managed", "nextgen"), ("serverless", "classic"),
                                                  ("serverless", "nextgen")])  # fmt: skip
def test_the_smoke_test_for_real_clusters_passes_against_the_double(mode, generation):
    from tests.smoke.opensearch import DIM, run

    cluster = FakeOpenSearch(mode=mode, generation=generation)
    run(open_index(cluster, model="smoke-model", dim=DIM), mode)


def test_a_reindex_writes_beside_the_served_index_until_activated():
    cluster = FakeOpenSearch()
    served = open_index(cluster, model="clip-old")
    served.upsert([asset(A, unit(1, 0, 0, 0))])
    client = connect("https://search.example", auth="none", connection_class=cluster.connection_class())
    building = OpenSearchIndex(client, "vs", DIM, "clip-new", reindex=True, sleep=lambda _s: None)
    building.upsert([asset(A, unit(0, 1, 0, 0)), asset(B, unit(0, 0, 1, 0))])
    assert served.count() == 1  # readers still see the old model's index
    assert cluster.aliases["vs"] == {"vs-clip-old"}
    building.activate(building.physical_name)
    assert served.count() == 2
    assert cluster.aliases["vs"] == {"vs-clip-new"}


def test_a_search_on_a_domain_reads_every_page_in_one_point_in_time():
    cluster = FakeOpenSearch()
    index = open_index(cluster, point_in_time_s=60)
    index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(1, 1, 0, 0))])
    snapshot = index.open_snapshot()
    ((_, path, params, _),) = sent(cluster, "POST", "/_search/point_in_time")
    assert (path, params) == ("/vs/_search/point_in_time", {"keep_alive": "60s"})
    first = index.knn_page(unit(1, 0, 0, 0), 1, snapshot=snapshot)
    later = "c" * 32
    index.upsert([asset(later, unit(1, 2, 0, 0))])  # written after the search started, scores below A
    rest = index.knn_page(
        unit(1, 0, 0, 0), 5, SearchAfter(first[0].score, first[0].asset_id), snapshot=snapshot
    )
    assert [h.asset_id for h in first + rest] == [A, B]  # the later write is not in this search's pages
    (_, path, _, body) = sent(cluster, "POST", "/_search")[-1]
    assert path == "/_search"  # a point in time names no index
    assert body["pit"] == {"id": snapshot, "keep_alive": "60s"}
    assert [h.asset_id for h in index.knn_page(unit(1, 0, 0, 0), 5)] == [A, B, later]  # a new search sees it


def test_an_expired_point_in_time_falls_back_to_the_live_index_without_an_error():
    cluster = FakeOpenSearch()
    index = open_index(cluster, point_in_time_s=60)
    index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(1, 1, 0, 0))])
    snapshot = index.open_snapshot()
    (first,) = index.knn_page(unit(1, 0, 0, 0), 1, snapshot=snapshot)
    cluster.pits.clear()  # kept alive too short: the cluster has dropped it
    hits = index.knn_page(unit(1, 0, 0, 0), 5, SearchAfter(first.score, first.asset_id), snapshot=snapshot)
    assert [first.asset_id] + [h.asset_id for h in hits] == [A, B]


@pytest.mark.parametrize("mode", ["serverless", "managed"])
def test_no_point_in_time_when_turned_off(mode):
    cluster = FakeOpenSearch(mode=mode)
    index = open_index(cluster, point_in_time_s=0)
    assert index.open_snapshot() is None
    assert sent(cluster, "POST", "point_in_time") == []


def test_a_cluster_that_keeps_timing_out_is_given_up_within_the_time_budget():
    from opensearchpy.exceptions import ConnectionTimeout

    cluster = FakeOpenSearch()
    index = open_index(cluster)
    now = [0.0]

    def timing_out(*_args, **_kwargs):
        now[0] += 8.0  # each request waits out an 8 s timeout
        raise ConnectionTimeout("TIMEOUT", "read timed out", None)

    index._clock, index._sleep = (lambda: now[0]), (lambda seconds: now.__setitem__(0, now[0] + seconds))
    index._os.search = timing_out
    with pytest.raises(DependencyUnavailable, match="cannot reach OpenSearch"):
        index.knn_page(unit(1, 0, 0, 0), 5)
    assert now[0] <= 20.0 + 8.0  # the budget, plus the one request already under way
    assert now[0] < 28.0  # the search function's timeout (5 attempts would have taken 40 s)


def test_the_client_does_not_retry_on_its_own_so_the_budget_holds():
    client = connect("https://search.example", auth="none")
    assert client.transport.max_retries == 0


def test_a_search_answered_by_only_some_shards_is_a_dependency_failure_not_a_short_page():
    cluster = FakeOpenSearch()
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0))])
    cluster.partial_searches = 1

    with pytest.raises(DependencyUnavailable, match="1 shard"):
        index.knn_page(unit(1, 0, 0, 0), 5)


def test_every_page_of_one_search_prefers_the_same_shard_copies_and_other_searches_others():
    cluster = FakeOpenSearch()
    index = open_index(cluster)
    index.upsert([asset(A, unit(1, 0, 0, 0)), asset(B, unit(1, 1, 0, 0))])

    (first,) = index.knn_page(unit(1, 0, 0, 0), 1)
    index.knn_page(unit(1, 0, 0, 0), 1, SearchAfter(first.score, first.asset_id))
    index.knn_page(unit(0, 1, 0, 0), 1)

    preferences = [params.get("preference") for _, _, params, body in sent(cluster, "POST", "/vs/_search")
                   if "knn" in str(body)]  # fmt: skip
    assert preferences[0] is not None
    assert preferences[0] == preferences[1]
    assert preferences[2] not in (None, preferences[0])


def test_set_up_on_first_use_sends_nothing_until_the_first_operation_makes_the_index():
    cluster = FakeOpenSearch()

    index = open_index(cluster, set_up_on_first_use=True)
    assert cluster.requests == []

    assert index.count() == 0
    assert set(cluster.aliases["vs"]) == {index.physical_name}


def test_set_up_on_first_use_with_the_cluster_down_fails_that_operation_and_a_later_one_connects():
    cluster, now = FakeOpenSearch(reachable=False), [0.0]
    index = open_index(cluster, set_up_on_first_use=True, clock=lambda: now[0])
    with pytest.raises(DependencyUnavailable, match="cannot reach OpenSearch"):
        index.knn_page(unit(1, 0, 0, 0), 5)

    cluster.reachable = True
    now[0] += 1.0  # the first back-off has passed (its timing: tests/unit/test_first_use.py)
    index.upsert([asset(A, unit(1, 0, 0, 0))])
    assert [hit.asset_id for hit in index.knn_page(unit(1, 0, 0, 0), 5)] == [A]


def test_set_up_on_first_use_refuses_an_index_of_another_model_on_first_use():
    cluster = FakeOpenSearch()
    open_index(cluster, model="clip-test")
    later = open_index(cluster, model="clip-other", set_up_on_first_use=True)

    with pytest.raises(ConfigurationError, match="re-index"):
        later.count()
