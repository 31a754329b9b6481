"""Every VectorIndex implementation is held to these tests: the embedded index, the OpenSearch adapter
over the strict double (a managed domain, and Serverless collections of both generations, Classic and
NextGen, each refusing what AWS says it refuses) and over a real OpenSearch node (tests/opensearch_node.py,
started once per session), so the double is checked against the real thing.

To add one, add a factory to IMPLEMENTATIONS: it gets a fresh empty folder, the dimension and the
pytest request (for session fixtures), and returns an open index (the fixture closes it).

Scores across engines: OpenSearch holds a score as float32 and we convert it back to the cosine, so a
score may differ from the float64 cosine by a float32 rounding of (1 + cosine), about 1.2e-7 near 1;
the stated tolerance (SCORE_TOLERANCE) is 1e-5, far above that and far below any meaningful gap.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.doubles.opensearch_double import FakeOpenSearch
from tests.fixtures.documents import document
from visual_search.index.embedded import EmbeddedIndex
from visual_search.index.opensearch import OpenSearchIndex, connect
from visual_search.index.opensearch_mapping import IndexOptions
from visual_search.index.port import Filters, Hit, IndexedAsset, SearchAfter, VectorIndex

DIM = 8
SCORE_TOLERANCE = 1e-5

Factory = Callable[[Path, int, pytest.FixtureRequest], VectorIndex]


def on_double(mode: str, generation: str = "nextgen") -> Factory:
    """The OpenSearch adapter through opensearch-py, over the strict double (see tests/doubles)."""

    def make(_folder: Path, dim: int, _request: pytest.FixtureRequest) -> VectorIndex:
        cluster = FakeOpenSearch(mode=mode, generation=generation)
        client = connect("https://search.example", auth="none", connection_class=cluster.connection_class())
        return OpenSearchIndex(
            client, "visual-search", dim, "test-model", mode=mode, generation=generation,  # type: ignore[arg-type]
            sleep=lambda _s: None,
        )  # fmt: skip

    return make


class OnNode(OpenSearchIndex):
    """The adapter on the real node, in an index of its own that is deleted when closed."""

    def close(self) -> None:
        self._os.indices.delete(index=self.physical_name, ignore=[404])
        super().close()


def on_node(_folder: Path, dim: int, request: pytest.FixtureRequest) -> VectorIndex:
    from tests.opensearch_node import ENGINE

    client = connect(request.getfixturevalue("opensearch_url"), auth="none")
    # One node: no replica could be assigned. The engine the node can run (see tests/opensearch_node).
    # A short refresh so a write acknowledged with refresh=wait_for does not wait up to 1 s.
    options = IndexOptions(engine=ENGINE, replicas=0, refresh_interval="20ms")  # type: ignore[arg-type]
    return OnNode(client, f"vs-conf-{uuid.uuid4().hex[:12]}", dim, "test-model", options=options)


IMPLEMENTATIONS: dict[str, Factory] = {
    "embedded": lambda folder, dim, _request: EmbeddedIndex(folder / "index.sqlite3", dim),
    "opensearch-managed": on_double("managed"),
    "opensearch-serverless-classic": on_double("serverless", "classic"),
    "opensearch-serverless-nextgen": on_double("serverless", "nextgen"),
    "opensearch-node": on_node,
}

MakeIndex = Callable[[], VectorIndex]
APPROXIMATE = {"opensearch-node"}  # the others answer exactly at these sizes


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeIndex]:
    """Builds fresh, empty indexes of dimension DIM; all are closed at teardown."""
    opened: list[VectorIndex] = []

    def make() -> VectorIndex:
        folder = tmp_path / uuid.uuid4().hex
        folder.mkdir()
        index = IMPLEMENTATIONS[request.param](folder, DIM, request)
        opened.append(index)
        return index

    yield make
    for index in opened:
        index.close()


@pytest.fixture
def index(make_index: MakeIndex) -> VectorIndex:
    return make_index()


def aid(number: int) -> str:
    return f"{number:032x}"


def unit(array: np.ndarray) -> np.ndarray:
    return (array / np.linalg.norm(array, axis=-1, keepdims=True)).astype(np.float32)


def random_unit(rng: np.random.Generator, count: int, dim: int = DIM) -> np.ndarray:
    return unit(rng.standard_normal((count, dim)))


def asset(number: int, vector: np.ndarray, **fields: Any) -> IndexedAsset:
    return IndexedAsset(aid(number), vector, document(aid(number), f"p{number}", **fields))


def axis(position: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[position] = 1.0
    return vector


def ids(hits: list[Hit]) -> list[str]:
    return [hit.asset_id for hit in hits]


def all_pages(
    index: VectorIndex, query: np.ndarray, page_size: int, limit: int = 10_000, **options: object
) -> list[list[Hit]]:
    """Pages as the search service asks for them: after the last hit, with the depth served so far."""
    pages: list[list[Hit]] = []
    after, served = None, 0
    for _ in range(limit):
        page = index.knn_page(query, page_size, after=after, depth=served, **options)  # type: ignore[arg-type]
        if not page:
            return pages
        pages.append(page)
        served += len(page)
        after = SearchAfter(page[-1].score, page[-1].asset_id)
    if limit == 10_000:
        raise AssertionError("paging did not end")
    return pages


# --- writes and reads ---------------------------------------------------------------------------------


def test_upserted_asset_is_returned_by_get_unchanged(index):
    vector = random_unit(np.random.default_rng(1), 1)[0]
    written = document(
        aid(1), "red", folder="shoes", tags=["red", "sale"], context={"alt": "é|="}, width=3, etag="e" * 32
    )

    index.upsert([IndexedAsset(aid(1), vector, written)])
    stored = index.get(aid(1))

    assert stored is not None
    assert stored.asset_id == aid(1)
    assert stored.vector.dtype == np.float32
    np.testing.assert_array_equal(stored.vector, vector)
    assert stored.document == written


def test_get_of_an_unknown_id_is_none(index):
    assert index.get(aid(404)) is None


def test_upsert_replaces_an_asset_with_the_same_id(index):
    index.upsert([asset(1, axis(0), format="jpg"), asset(2, axis(1))])

    index.upsert([asset(1, axis(2), format="png")])

    assert index.count() == 2
    assert index.get(aid(1)).document.format == "png"
    top = index.knn_page(axis(2), 1)
    assert ids(top) == [aid(1)]
    assert top[0].score == pytest.approx(1.0, abs=1e-6)
    assert aid(1) not in ids(index.knn_page(axis(0), 10, min_score=0.5))


def test_deleted_asset_is_gone_from_get_and_search(index):
    index.upsert([asset(1, axis(0)), asset(2, axis(1))])

    index.delete([aid(1)])

    assert index.get(aid(1)) is None
    assert ids(index.knn_page(axis(0), 10)) == [aid(2)]


def test_deleting_an_unknown_id_is_harmless(index):
    index.upsert([asset(1, axis(0))])

    index.delete([aid(404), aid(404)])

    assert index.count() == 1
    assert index.get(aid(1)) is not None


def test_documents_replaced_and_deleted_by_the_ids_upsert_returned_leave_nothing_behind(index):
    # An index that chooses its documents' ids returns them (the ledger keeps them) and is handed them
    # back on the next replace or delete; one keyed by asset id returns none and needs none.
    first = index.upsert([asset(1, axis(0), format="jpg"), asset(2, axis(1))])
    assert set(first) <= {aid(1), aid(2)}
    assert all(isinstance(i, str) and i for i in first.values())

    second = index.upsert([asset(1, axis(2), format="png")], known=first)
    assert set(second) <= {aid(1)}
    assert index.count() == 2
    assert index.get(aid(1)).document.format == "png"

    index.delete([aid(1)], known={**first, **second})
    assert index.get(aid(1)) is None
    assert ids(index.knn_page(axis(2), 10)) == [aid(2)]


def test_known_document_ids_of_documents_that_are_gone_are_harmless(index):
    index.upsert([asset(1, axis(0))])

    index.delete([aid(2)], known={aid(2): "no-such-document"})
    index.upsert([asset(3, axis(1))], known={aid(3): "no-such-document"})

    assert index.count() == 2


def test_count_follows_upserts_and_deletes(index):
    assert index.count() == 0
    index.upsert([asset(n, axis(n)) for n in range(5)])
    assert index.count() == 5
    index.upsert([asset(0, axis(7)), asset(9, axis(7))])
    assert index.count() == 6
    index.delete([aid(0), aid(1)])
    assert index.count() == 4


def test_a_batch_with_one_invalid_asset_stores_nothing(index):
    bad = IndexedAsset(aid(2), np.ones(DIM + 1, dtype=np.float32) / np.sqrt(DIM + 1), document(aid(2)))

    with pytest.raises(ValueError, match="dimension"):
        index.upsert([asset(1, axis(0)), bad])

    assert index.count() == 0
    assert index.get(aid(1)) is None


def test_search_on_an_empty_index_finds_nothing(index):
    assert index.knn_page(axis(0), 10) == []


# --- ordering and paging ------------------------------------------------------------------------------


def test_hits_are_ordered_by_score_then_asset_id(index):
    # Given three assets with the same vector (a tie), inserted out of id order, and two others
    same = unit(np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=np.float32))
    index.upsert([asset(7, same), asset(3, same), asset(5, same), asset(1, axis(0)), asset(2, axis(2))])

    hits = index.knn_page(axis(0), 10)

    assert ids(hits) == [aid(1), aid(3), aid(5), aid(7), aid(2)]
    assert hits[1].score == hits[2].score == hits[3].score
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_scores_are_cosine_similarities(index):
    vectors = random_unit(np.random.default_rng(2), 20)
    index.upsert([asset(n, vector) for n, vector in enumerate(vectors)])
    query = vectors[0]

    hits = index.knn_page(query, 20)

    expected = {aid(n): float(vector.astype(np.float64) @ query) for n, vector in enumerate(vectors)}
    assert {hit.asset_id: hit.score for hit in hits} == pytest.approx(expected, abs=SCORE_TOLERANCE)
    assert isinstance(hits[0].score, float)


def test_hits_carry_their_documents(index):
    index.upsert([asset(1, axis(0), format="gif", tags=["a"])])

    (hit,) = index.knn_page(axis(0), 1)

    assert hit.document.format == "gif"
    assert hit.document.tags == ("a",)


def test_next_page_never_repeats_a_hit_even_inside_a_tie(index):
    # Given ten identical vectors, so every page boundary falls inside a tie
    same = axis(0)
    index.upsert([asset(n, same) for n in range(10)])

    pages = all_pages(index, same, page_size=3)

    assert [len(page) for page in pages] == [3, 3, 3, 1]
    flat = [hit.asset_id for page in pages for hit in page]
    assert flat == sorted(flat)
    assert len(set(flat)) == 10


@st.composite
def corpora(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Vectors with many exact duplicates (ties), and a query."""
    count = draw(st.integers(0, 40))
    distinct = draw(st.integers(1, max(count, 1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = random_unit(rng, distinct)
    vectors = base[rng.integers(0, distinct, count)]
    query = base[0] if draw(st.booleans()) else random_unit(rng, 1)[0]
    return vectors, query


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    corpus=corpora(),
    page_size=st.integers(1, 12),
    max_hits=st.integers(1, 50),
    min_score=st.none() | st.floats(-1.0, 1.0),
)
def test_paging_with_search_after_equals_one_big_call(
    request, make_index, corpus, page_size, max_hits, min_score
):
    # Given an index of random vectors with ties
    vectors, query = corpus
    index = make_index()
    index.upsert([asset(n, vector) for n, vector in enumerate(vectors)])

    # When paging through with search_after, and asking for everything at once
    pages = all_pages(index, query, page_size, min_score=min_score, max_hits=max_hits)
    everything = index.knn_page(query, max_hits, min_score=min_score, max_hits=max_hits)

    # Then the concatenated pages are the single call, with no hit twice, capped at max_hits
    paged = [(hit.asset_id, hit.score) for page in pages for hit in page]
    assert paged == [(hit.asset_id, hit.score) for hit in everything]
    assert len(set(ids(everything))) == len(everything)
    exact = vectors.astype(np.float64) @ query.astype(np.float64)
    floor = -np.inf if min_score is None else min_score
    # float32 scores may sit a rounding error either side of min_score
    surely, maybe = int(np.sum(exact >= floor + 1e-6)), int(np.sum(exact >= floor - 1e-6))
    assert len(everything) <= min(max_hits, maybe)
    if request.node.callspec.params["make_index"] not in APPROXIMATE:
        # Every hit above the floor is found. A real HNSW (the node's Lucene graph) may miss one among
        # many identical vectors, which these corpora are full of: its recall is measured on realistic
        # data by tests/conformance/test_opensearch_node.py and bench/opensearch.py instead.
        assert min(max_hits, surely) <= len(everything)
    assert all(len(page) == page_size for page in pages[:-1])


def test_ten_pages_are_full_ordered_by_score_then_asset_id_and_never_repeat_as_k_grows(request, index):
    # Given 600 assets, a fifth of them sharing a vector with another (ties across page boundaries),
    # and ten pages of 30: deep enough that OpenSearch's k grows from its floor (page_k) page by page
    rng = np.random.default_rng(11)
    base = random_unit(rng, 480)
    vectors = np.concatenate([base, base[:120]])
    index.upsert([asset(n, vector) for n, vector in enumerate(vectors)])
    query = random_unit(rng, 1)[0]

    pages = all_pages(index, query, 30, limit=10, max_hits=1000)

    # Then every page is full, the walk is in (score desc, asset_id asc) order, and no hit comes twice
    assert [len(page) for page in pages] == [30] * 10
    walked = [hit for page in pages for hit in page]
    assert len({hit.asset_id for hit in walked}) == 300
    keys = [(-hit.score, hit.asset_id) for hit in walked]
    assert keys == sorted(keys)
    # And nothing is skipped: the walk serves the first 300 of one search as wide as max_hits (exactly
    # on the exact implementations; the node's graph at this size finds them all too)
    wide = index.knn_page(query, 300, max_hits=1000, depth=700)
    assert ids(walked) == ids(wide)


# --- filters, thresholds, limits ----------------------------------------------------------------------


def test_folder_filter_matches_the_folder_and_its_subfolders_only(index):
    folders = {1: "a/b", 2: "a/b/c", 3: "a/bc", 4: "a", 5: "", 6: "x/a/b"}
    index.upsert([asset(n, axis(0), folder=folder) for n, folder in folders.items()])

    hits = index.knn_page(axis(0), 10, filters=Filters(folder="a/b"))

    assert ids(hits) == [aid(1), aid(2)]


def test_tag_filter_requires_every_tag(index):
    tags = {1: ["red", "sale"], 2: ["red"], 3: ["sale", "red", "new"], 4: []}
    index.upsert([asset(n, axis(0), tags=value) for n, value in tags.items()])

    hits = index.knn_page(axis(0), 10, filters=Filters(tags=("red", "sale")))

    assert ids(hits) == [aid(1), aid(3)]


def test_context_filter_requires_every_pair_and_a_key_alone_takes_any_value(index):
    contexts = {1: {"team": "red", "alt": "x"}, 2: {"team": "blue"}, 3: {"alt": "team=red"}, 4: {}}
    index.upsert([asset(n, axis(0), context=value, tags=["team"]) for n, value in contexts.items()])

    assert ids(index.knn_page(axis(0), 10, filters=Filters(context=(("team", "red"),)))) == [aid(1)]
    assert ids(index.knn_page(axis(0), 10, filters=Filters(context=(("team", None),)))) == [aid(1), aid(2)]
    both = Filters(tags=("team",), context=(("team", None), ("alt", "x")))
    assert ids(index.knn_page(axis(0), 10, filters=both)) == [aid(1)]
    # a tag is never taken for a context key, nor a context key for a tag
    assert ids(index.knn_page(axis(0), 10, filters=Filters(tags=("alt",)))) == []
    assert index.get(aid(1)).document.tags == ("team",)


def test_format_filter_accepts_any_listed_format(index):
    formats = {1: "jpg", 2: "png", 3: "gif", 4: "webp"}
    index.upsert([asset(n, axis(0), format=value) for n, value in formats.items()])

    hits = index.knn_page(axis(0), 10, filters=Filters(formats=("png", "jpg")))

    assert ids(hits) == [aid(1), aid(2)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    documents=st.lists(
        st.fixed_dictionaries(
            {
                "folder": st.sampled_from(["", "a", "a/b", "a/bc", "a/b/c", "b"]),
                "tags": st.lists(st.sampled_from(["red", "blue", "sale"]), unique=True),
                "format": st.sampled_from(["jpg", "png", "gif"]),
                "context": st.dictionaries(st.sampled_from(["team", "red"]), st.sampled_from(["red", ""])),
            }
        ),
        max_size=25,
    ),
    filters=st.builds(
        Filters,
        folder=st.none() | st.sampled_from(["", "a", "a/b", "a/b/", "b", "c"]),
        tags=st.lists(st.sampled_from(["red", "blue", "sale", "none"]), max_size=2).map(tuple),
        formats=st.lists(st.sampled_from(["jpg", "png", "tiff"]), max_size=2).map(tuple),
        context=st.dictionaries(st.sampled_from(["team", "red"]), st.sampled_from(["red", "", None])).map(
            lambda d: tuple(d.items())
        ),
    ),
)
def test_filtered_search_returns_exactly_the_documents_the_reference_predicate_accepts(
    make_index, documents, filters
):
    index = make_index()
    vectors = random_unit(np.random.default_rng(len(documents)), len(documents))
    stored = [document(aid(n), f"p{n}", **fields) for n, fields in enumerate(documents)]
    index.upsert([IndexedAsset(aid(n), vectors[n], doc) for n, doc in enumerate(stored)])

    hits = index.knn_page(axis(0), 100, filters=filters)

    assert sorted(ids(hits)) == [aid(n) for n, doc in enumerate(stored) if filters.matches(doc)]


def test_min_score_drops_weaker_hits(index):
    index.upsert([asset(1, axis(0)), asset(2, unit(axis(0) + axis(1))), asset(3, axis(1))])

    hits = index.knn_page(axis(0), 10, min_score=0.5)

    assert ids(hits) == [aid(1), aid(2)]
    assert all(hit.score >= 0.5 for hit in hits)


def test_max_hits_caps_the_hits_across_pages(index):
    vectors = random_unit(np.random.default_rng(3), 30)
    index.upsert([asset(n, vector) for n, vector in enumerate(vectors)])

    pages = all_pages(index, vectors[0], page_size=4, max_hits=10)

    assert [len(page) for page in pages] == [4, 4, 2]
    best_ten = index.knn_page(vectors[0], 30)[:10]
    assert ids(list(itertools.chain(*pages))) == ids(best_ten)


def test_wrong_dimension_is_refused(index):
    index.upsert([asset(1, axis(0))])

    with pytest.raises(ValueError, match="dimension"):
        index.knn_page(np.ones(DIM + 1, dtype=np.float32), 10)
    with pytest.raises(ValueError, match="dimension"):
        index.upsert([asset(2, unit(np.ones(DIM - 1, dtype=np.float32)))])


@pytest.mark.parametrize(("size", "max_hits"), [(0, 10), (-1, 10), (10, 0)])
def test_page_size_and_max_hits_below_one_are_refused(index, size, max_hits):
    with pytest.raises(ValueError, match="at least 1"):
        index.knn_page(axis(0), size, max_hits=max_hits)


def test_top_10_equals_exact_brute_force(index):
    # Given a few hundred random vectors
    rng = np.random.default_rng(4)
    vectors = random_unit(rng, 400)
    index.upsert([asset(n, vector) for n, vector in enumerate(vectors)])

    for query in random_unit(rng, 5):
        # When searching, Then the ids and scores are those of an exact float64 computation
        exact = vectors.astype(np.float64) @ query.astype(np.float64)
        best = sorted(range(len(vectors)), key=lambda n: (-exact[n], aid(n)))[:10]
        hits = index.knn_page(query, 10)
        assert ids(hits) == [aid(n) for n in best]
        assert [hit.score for hit in hits] == pytest.approx([exact[n] for n in best], abs=SCORE_TOLERANCE)
