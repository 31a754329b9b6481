"""The bulk load of a new OpenSearch index (a backfill beside the served index) on the strict double:
refresh and replicas off while it runs and restored before the alias moves, a force merge to one segment
in between, requests cut by bytes, failed items retried until every document lands, refusals raised,
and Serverless spared every call it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.doubles.opensearch_double import FakeOpenSearch
from tests.fixtures.documents import document
from visual_search.errors import ConfigurationError, DependencyUnavailable
from visual_search.index.opensearch import OpenSearchIndex, connect
from visual_search.index.opensearch_bulk import BulkTuning, encode
from visual_search.index.opensearch_errors import OpenSearchRefused
from visual_search.index.opensearch_mapping import IndexOptions, to_source
from visual_search.index.port import IndexedAsset

DIM = 8
CONFIGURED = IndexOptions(replicas=2, refresh_interval="5s")
SMALL = BulkTuning(chunk_bytes=2_000, threads=3)  # a few documents a request, several in flight


def open_index(cluster: FakeOpenSearch, model: str = "m1", **kwargs) -> OpenSearchIndex:
    client = connect("https://search.example", auth="none", connection_class=cluster.connection_class())
    kwargs.setdefault("generation", cluster.generation)
    return OpenSearchIndex(
        client, "vs", DIM, model, mode=cluster.mode, options=CONFIGURED, sleep=lambda _s: None, **kwargs
    )


def assets(n: int, seed: int = 0) -> list[IndexedAsset]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        IndexedAsset(f"{i:032x}", v, document(f"{i:032x}", f"p{i}", folder=f"f{i % 3}", tags=["t"]))
        for i, v in enumerate(vectors)
    ]


def served_and_new(cluster: FakeOpenSearch, **kwargs) -> tuple[OpenSearchIndex, OpenSearchIndex]:
    """An index readers use (model m1) and an adapter re-indexing for model m2 beside it."""
    served = open_index(cluster, **kwargs)
    served.upsert(assets(3, seed=9))
    return served, open_index(cluster, model="m2", reindex=True, **kwargs)


def steps(cluster: FakeOpenSearch) -> list[str]:
    """The requests in order, each named by what it does (consecutive bulks counted as one step)."""
    names: list[str] = []
    for method, path, params, body in cluster.requests:
        if path.endswith("/_settings") and method == "PUT":
            name = f"settings {json.dumps(body['index'], sort_keys=True)}"
        elif path == "/_bulk":
            name = f"bulk{' wait_for' if params.get('refresh') else ''}"
        elif path.endswith(("/_refresh", "/_aliases")):
            name = path.rsplit("/", 1)[1]
        elif path.endswith("/_forcemerge"):
            name = f"forcemerge {params.get('max_num_segments')}"
        else:
            continue
        if not names or names[-1] != name:
            names.append(name)
    return names


def test_a_load_runs_without_refresh_or_replicas_and_gets_both_back_merged_before_the_alias_moves():
    # Given a served index and a new one for another model
    cluster = FakeOpenSearch()
    served, building = served_and_new(cluster)
    cluster.requests.clear()
    # When 40 assets are bulk loaded, then the new index activated
    written = building.bulk_load(assets(40), SMALL)
    during = dict(cluster.indices[building.physical_name].settings)
    searchable_during = building.count()
    building.activate(building.physical_name)
    # Then refresh was off and replicas 0 while loading, no bulk waited for a refresh, and the index was
    # refreshed, merged to one segment and given its configured settings back before the alias moved
    assert written == 40
    assert during["refresh_interval"] == "-1"
    assert during["number_of_replicas"] == 0
    assert searchable_during == 0  # nothing refreshed it yet, as on a node
    assert steps(cluster) == [
        'settings {"number_of_replicas": 0, "refresh_interval": "-1"}',
        "bulk",
        "_refresh",
        "forcemerge 1",
        'settings {"number_of_replicas": 2, "refresh_interval": "5s"}',
        "_aliases",
    ]
    new = cluster.indices[building.physical_name]
    assert (new.settings["refresh_interval"], new.settings["number_of_replicas"]) == ("5s", 2)
    assert new.merges == [1]
    assert cluster.aliases["vs"] == {building.physical_name}
    assert served.count() == 40  # readers now see the new index, all of it


def test_requests_are_cut_by_bytes_not_by_a_count_of_documents():
    cluster = FakeOpenSearch()
    _, building = served_and_new(cluster)
    cluster.bulk_bytes.clear()
    building.bulk_load(assets(60), BulkTuning(chunk_bytes=3_000, threads=2))
    # Every request stays within the bound, and together they carry every document once
    assert len(cluster.bulk_bytes) > 5
    assert max(cluster.bulk_bytes) <= 3_000
    assert len(cluster.indices[building.physical_name].docs) == 60


def test_items_answered_429_or_5xx_are_sent_again_until_every_document_lands():
    cluster = FakeOpenSearch()
    _, building = served_and_new(cluster)
    cluster.bulk_item_faults = [429, 0, 503, 500, 0, 0, 502, 429]
    written = building.bulk_load(assets(30), SMALL)
    building.finish_load()
    assert written == 30
    assert sum(cluster.injected.values()) == 5
    docs = cluster.indices[building.physical_name].docs
    assert sorted(docs) == [a.asset_id for a in assets(30)]


def test_a_throttled_request_is_sent_again_whole():
    cluster = FakeOpenSearch()
    _, building = served_and_new(cluster)
    cluster.throttle_requests = 2  # the next two requests (bulks: the settings went first) answer 429
    cluster.requests.clear()
    assert building.bulk_load(assets(12), BulkTuning(chunk_bytes=100_000, threads=1)) == 12
    assert cluster.injected["throttled"] == 2
    assert len(cluster.indices[building.physical_name].docs) == 12


def test_throttling_that_never_ends_raises_instead_of_losing_documents():
    cluster = FakeOpenSearch()
    _, building = served_and_new(cluster)
    cluster.bulk_item_fault_rate = 1.0
    with pytest.raises(DependencyUnavailable, match="kept refusing 10 write"):
        building.bulk_load(assets(10), SMALL)


def test_a_document_refused_for_good_raises_and_names_the_refusal():
    cluster = FakeOpenSearch()
    _, building = served_and_new(cluster)
    cluster.bulk_item_faults = [0, 0, 400]
    with pytest.raises(OpenSearchRefused, match=r"\(400\).*injected 400"):
        building.bulk_load(assets(10), SMALL)


def test_writes_during_a_load_do_not_wait_for_a_refresh_that_is_off_and_wait_again_after():
    # Given a load begun (a backfill embeds and upserts batch by batch while it runs)
    cluster = FakeOpenSearch()
    _, building = served_and_new(cluster)
    cluster.requests.clear()
    assert building.begin_load()
    # When it upserts and deletes (the double refuses a wait_for into an index whose refresh is off)
    building.upsert(assets(5))
    building.delete([assets(5)[0].asset_id])
    building.activate(building.physical_name)
    building.upsert(assets(6)[5:])
    # Then only the write after the load waited for its refresh
    assert [s for s in steps(cluster) if s.startswith("bulk")] == ["bulk", "bulk wait_for"]
    assert building.count() == 5


def test_activating_an_index_an_interrupted_load_left_finishes_the_load_first():
    cluster = FakeOpenSearch()
    _, crashed = served_and_new(cluster)
    crashed.bulk_load(assets(7), SMALL)  # the process dies here: never finished
    later = open_index(cluster, model="m2", reindex=True)
    later.activate(later.physical_name)
    new = cluster.indices[later.physical_name]
    assert (new.settings["refresh_interval"], new.merges) == ("5s", [1])
    assert later.count() == 7


def test_a_load_is_refused_into_the_index_readers_use():
    cluster = FakeOpenSearch()
    served = open_index(cluster)
    with pytest.raises(ConfigurationError, match="reindex=True"):
        served.bulk_load(assets(2))
    again = open_index(cluster, reindex=True)  # the same model: its index is the served one
    assert again.begin_load() is False
    with pytest.raises(ConfigurationError, match="already serves"):
        again.bulk_load(assets(2))
    assert "refresh_interval" not in cluster.indices[served.physical_name].settings or (
        cluster.indices[served.physical_name].settings["refresh_interval"] != "-1"
    )


@pytest.mark.parametrize("generation", ["nextgen", "classic"])
def test_on_serverless_a_load_sends_no_settings_nor_merge_and_keys_documents_as_upsert_does(generation):
    # Given a Serverless collection (the double refuses refresh, replicas, _refresh, _forcemerge, and on
    # a Classic collection a custom _id)
    cluster = FakeOpenSearch(mode="serverless", generation=generation)
    _, building = served_and_new(cluster, generation=generation)
    cluster.requests.clear()
    cluster.bulk_item_faults = [503, 0, 429]
    written = building.bulk_load(assets(25), SMALL)
    building.activate(building.physical_name)
    assert written == 25
    assert steps(cluster) == ["bulk", "_aliases"]
    docs = cluster.indices[building.physical_name].docs
    assert sorted(d["asset_id"] for d in docs.values()) == [a.asset_id for a in assets(25)]
    # NextGen keys documents by asset id, as upsert does there (a later replace or delete finds them)
    keyed = all(doc_id == doc["asset_id"] for doc_id, doc in docs.items())
    assert keyed is (generation == "nextgen")


def test_the_loads_encoding_reads_back_as_the_upserts_with_every_float32_exact():
    rng = np.random.default_rng(3)
    vector = rng.standard_normal(DIM).astype(np.float32)
    vector[1], vector[2] = np.float32(1e-45), np.float32(-0.0)  # a subnormal, a negative zero
    vector /= np.linalg.norm(vector)
    written = document("a" * 32, "é✓", folder="a/b", tags=["x"], context={"alt": "ü|="}, width=3)
    asset = IndexedAsset("a" * 32, vector, written)
    loaded = json.loads(encode(asset, vector))
    upserted = json.loads(json.dumps(to_source(asset, vector)))
    assert np.array_equal(np.asarray(loaded.pop("vector"), dtype=np.float32), vector)
    assert np.array_equal(np.asarray(upserted.pop("vector"), dtype=np.float32), vector)
    assert loaded == upserted


def test_an_invalid_asset_in_the_stream_stops_the_load_with_its_reason():
    cluster = FakeOpenSearch()
    _, building = served_and_new(cluster)
    stream = assets(30)
    stream[17] = IndexedAsset(stream[17].asset_id, stream[17].vector * 2, stream[17].document)
    with pytest.raises(ValueError, match="expected unit length"):
        building.bulk_load(iter(stream), SMALL)
