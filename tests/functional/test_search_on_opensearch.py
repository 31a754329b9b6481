"""The whole search service on the OpenSearch adapter (over the strict double: a domain and both
Serverless generations): the same composition root, API routes and paging as on one machine, only
VS_INDEX_BACKEND changes; on Serverless, writes that are searchable only after the collection's own
refresh, and a point in time for every search with a next page unless configured otherwise."""

from __future__ import annotations

import pytest

from tests.doubles.opensearch_double import FakeOpenSearch, plug_in
from tests.fixtures import images
from tests.fixtures.documents import document
from tests.functional.conftest import make_settings, seed_images
from visual_search.bootstrap import build_services
from visual_search.domain.identity import derived_asset_id
from visual_search.index.port import IndexedAsset
from visual_search.search.service import SearchQuery


def on_double(monkeypatch, tmp_path, model_dir, cluster: FakeOpenSearch, **settings):
    """The whole service built on the OpenSearch adapter, its requests answered by `cluster`."""
    plug_in(monkeypatch, cluster)
    return build_services(
        make_settings(
            tmp_path,
            model_dir,
            index_backend="opensearch",
            opensearch_endpoint="https://search.example",
            opensearch_mode=cluster.mode,
            opensearch_generation=cluster.generation,
            **settings,
        )
    )


@pytest.fixture(params=[("managed", "nextgen"), ("serverless", "classic"), ("serverless", "nextgen")])
def services(request, tmp_path, tiny_model_dir, monkeypatch):
    mode, generation = request.param
    built = on_double(monkeypatch, tmp_path, tiny_model_dir, FakeOpenSearch(mode=mode, generation=generation))
    seed_images(built, 12)
    yield built
    built.close()


def test_indexing_and_paging_through_text_search_work_on_opensearch(services):
    assert services.index.count() == 12
    seen, cursor = [], None
    for _ in range(5):
        page = services.search.search(SearchQuery(text="a shoe", max_results=5, next_cursor=cursor))
        seen += [hit.asset_id for hit in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 12


def test_search_by_asset_id_and_delete_work_on_opensearch(services):
    first = services.search.search(SearchQuery(text="shirt", max_results=1)).hits[0]
    similar = services.search.search(SearchQuery(asset_id=first.asset_id, max_results=20))
    assert first.asset_id not in [h.asset_id for h in similar.hits]
    assert services.uploads.delete(first.document.public_id) == "deleted"
    assert services.index.get(first.asset_id) is None


def test_with_point_in_time_a_search_pages_through_the_index_as_it_was_when_it_started(with_point_in_time):
    _, services = with_point_in_time
    page = services.search.search(SearchQuery(text="a shoe", max_results=4))
    newcomer = IndexedAsset(
        "f" * 32, services.index.get(page.hits[-1].asset_id).vector, document("f" * 32, "late")
    )
    services.index.upsert([newcomer])  # as relevant as what is being paged through, written meanwhile
    seen = [h.asset_id for h in page.hits]
    while page.next_cursor:
        page = services.search.search(SearchQuery(text="a shoe", max_results=4, next_cursor=page.next_cursor))
        seen += [h.asset_id for h in page.hits]
    assert len(seen) == len(set(seen)) == 12
    assert newcomer.asset_id not in seen
    fresh = services.search.search(SearchQuery(text="a shoe", max_results=20))
    assert newcomer.asset_id in [h.asset_id for h in fresh.hits]


@pytest.fixture(params=["managed", "serverless"])
def with_point_in_time(request, tmp_path, tiny_model_dir, monkeypatch):
    """On a domain, as configured; on Serverless, by default (AWS recommends it there)."""
    cluster = FakeOpenSearch(mode=request.param)
    configured = {"opensearch_point_in_time_s": 120} if request.param == "managed" else {}
    services = on_double(monkeypatch, tmp_path, tiny_model_dir, cluster, **configured)
    seed_images(services, 12)
    yield cluster, services
    services.close()


def opened_pits(cluster: FakeOpenSearch) -> int:
    return sum(
        1 for method, url, _, _ in cluster.requests if method == "POST" and url.endswith("point_in_time")
    )


def test_a_search_that_fits_on_one_page_opens_no_point_in_time(with_point_in_time):
    cluster, services = with_point_in_time

    page = services.search.search(SearchQuery(text="a shoe", max_results=20))

    assert page.next_cursor is None
    assert opened_pits(cluster) == 0


def test_the_point_in_time_of_a_paged_search_is_closed_when_its_last_page_is_served(with_point_in_time):
    cluster, services = with_point_in_time

    page = services.search.search(SearchQuery(text="a shoe", max_results=5))
    assert opened_pits(cluster) == 1
    assert len(cluster.pits) == 1
    while page.next_cursor:
        page = services.search.search(SearchQuery(text="a shoe", max_results=5, next_cursor=page.next_cursor))

    assert opened_pits(cluster) == 1
    assert cluster.pits == {}


@pytest.fixture(params=["classic", "nextgen"])
def lagging_serverless(request, tmp_path, tiny_model_dir, monkeypatch):
    """A Serverless collection whose writes become searchable only at its next refresh (60 s on Classic,
    10 s on NextGen)."""
    cluster = FakeOpenSearch(mode="serverless", generation=request.param, refresh_lag=True)
    services = on_double(monkeypatch, tmp_path, tiny_model_dir, cluster)
    yield cluster, services
    services.close()


def test_on_serverless_an_overwrite_inside_the_refresh_window_leaves_one_document(lagging_serverless):
    cluster, services = lagging_serverless
    key = "shoes/red.jpg"
    services.writer.put(key, images.jpeg(200, 160, seed=1))

    services.writer.put(key, images.jpeg(240, 160, seed=2))  # before the first version is searchable
    cluster.refresh()

    assert services.index.count() == 1
    assert services.index.get(derived_asset_id(services.store.name, key)).document.width == 240


def test_on_serverless_a_delete_inside_the_refresh_window_leaves_no_ghost(lagging_serverless):
    cluster, services = lagging_serverless
    key = "shoes/red.jpg"
    asset_id = derived_asset_id(services.store.name, key)
    services.writer.put(key, images.jpeg(200, 160, seed=1))

    services.writer.delete(key)  # before the document is searchable
    cluster.refresh()

    assert services.ledger.get(asset_id).state == "removed"
    assert services.index.get(asset_id) is None
    assert services.index.count() == 0


def test_on_serverless_the_ledger_holds_the_document_id_a_classic_collection_generated(lagging_serverless):
    cluster, services = lagging_serverless
    key = "shoes/red.jpg"
    asset_id = derived_asset_id(services.store.name, key)

    services.writer.put(key, images.jpeg(200, 160, seed=1))
    cluster.refresh()

    (doc_id,) = cluster.indices[services.index.physical_name].docs
    if cluster.generation == "classic":
        assert doc_id != asset_id  # generated by the collection, not ours
        assert services.ledger.get(asset_id).doc_id == doc_id
    else:  # NextGen takes our id: nothing to remember
        assert doc_id == asset_id
        assert not services.ledger.get(asset_id).doc_id


def test_on_serverless_a_refused_overwrite_keeps_the_previous_document_id_so_a_delete_leaves_no_ghost(
    lagging_serverless,
):
    cluster, services = lagging_serverless
    key = "shoes/red.jpg"
    asset_id = derived_asset_id(services.store.name, key)
    services.writer.put(key, images.jpeg(200, 160, seed=1))
    services.writer.put(key, images.text_file())  # refused: the first version stays in the index

    services.writer.delete(key)  # all before the first version is searchable
    cluster.refresh()

    assert services.index.get(asset_id) is None
    assert services.index.count() == 0


def test_a_paged_search_asks_each_page_for_the_k_its_depth_needs_with_the_configured_beam(
    tmp_path, tiny_model_dir, monkeypatch
):
    # Given the service on a domain whose k-NN settings are configured
    cluster = FakeOpenSearch(mode="managed")
    services = on_double(
        monkeypatch, tmp_path, tiny_model_dir, cluster,
        opensearch_ef_search=77, opensearch_k_floor=4, opensearch_k_factor=1.5,
    )  # fmt: skip
    seed_images(services, 12)

    # When a text search is paged through, 3 hits at a time
    page = services.search.search(SearchQuery(text="a shoe", max_results=3))
    while page.next_cursor:
        page = services.search.search(SearchQuery(text="a shoe", max_results=3, next_cursor=page.next_cursor))
    services.close()

    # Then page n asked for k = max(4, ceil(3 (n + 1) * 1.5)), every page with the beam of 77
    searches = [body["query"] for _, _, _, body in cluster.requests if "query" in (body or {})]
    knn = [query["knn"]["vector"] for query in searches if "knn" in query]
    assert [q["k"] for q in knn] == [5, 9, 14, 18, 23]
    assert {q["method_parameters"]["ef_search"] for q in knn} == {77}
