"""What only a real OpenSearch node can show (tests/opensearch_node.py, Lucene engine): approximate HNSW
scoring with `min_score`, filtered k-NN, a point in time, bulk partial failures, the alias swap while
reads go on, the `_meta` model check, 1,000 writes through throttling injected in front of the node, and
a backfill's bulk load (refresh and replicas off while it runs, finished before the alias moves; through
throttling too).
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests

from tests.conformance.test_vector_index import SCORE_TOLERANCE
from tests.fixtures import clustered as embeddings
from tests.fixtures.documents import document
from visual_search.errors import ConfigurationError
from visual_search.index.opensearch import OpenSearchIndex, connect
from visual_search.index.opensearch_bulk import BulkTuning
from visual_search.index.opensearch_errors import OpenSearchRefused
from visual_search.index.opensearch_mapping import IndexOptions
from visual_search.index.port import Filters, IndexedAsset, SearchAfter

DIM = 16
FOLDERS = 20


def unit(array: np.ndarray) -> np.ndarray:
    return (array / np.linalg.norm(array, axis=-1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((8, DIM)))
    return unit(centres[rng.integers(0, 8, n)] + 0.4 * rng.standard_normal((n, DIM)))


def assets(vectors: np.ndarray) -> list[IndexedAsset]:
    return [
        IndexedAsset(f"{n:032x}", v, document(f"{n:032x}", f"p{n}", folder=f"f{n % FOLDERS}"))
        for n, v in enumerate(vectors)
    ]


def open_on(url: str, alias: str, model: str = "m1", **kwargs) -> OpenSearchIndex:
    options = IndexOptions(engine="lucene", replicas=0, refresh_interval="20ms")
    return OpenSearchIndex(connect(url, auth="none"), alias, DIM, model, options=options, **kwargs)


@pytest.fixture
def alias(opensearch_url: str) -> Iterator[str]:
    name = f"vs-node-{uuid.uuid4().hex[:10]}"
    yield name
    requests.delete(f"{opensearch_url}/{name}-*", timeout=30)


@pytest.fixture
def loaded(opensearch_url: str, alias: str) -> tuple[OpenSearchIndex, np.ndarray]:
    vectors = clustered(3000)
    index = open_on(opensearch_url, alias)
    every = assets(vectors)
    for start in range(0, len(every), 500):
        index.upsert(every[start : start + 500])
    return index, vectors


def test_approximate_knn_with_min_score_returns_exactly_the_assets_above_it(loaded):
    index, vectors = loaded
    query = vectors[7]
    exact = vectors.astype(np.float64) @ query.astype(np.float64)
    floor = float(np.sort(exact)[-150])  # about 150 assets qualify

    hits = index.knn_page(query, 1000, min_score=floor)

    assert all(hit.score >= floor - SCORE_TOLERANCE for hit in hits)
    surely = {f"{n:032x}" for n in np.flatnonzero(exact >= floor + SCORE_TOLERANCE)}
    assert surely <= {hit.asset_id for hit in hits}
    for hit in hits:
        assert hit.score == pytest.approx(exact[int(hit.asset_id, 16)], abs=SCORE_TOLERANCE)


def test_filtered_knn_finds_the_best_matches_inside_a_selective_filter(loaded):
    index, vectors = loaded
    query = vectors[11]
    in_folder = np.array([n % FOLDERS == 3 for n in range(len(vectors))])
    exact = np.where(in_folder, vectors @ query, -np.inf)
    best = [f"{n:032x}" for n in np.argsort(-exact, kind="stable")[:10]]

    hits = index.knn_page(query, 10, filters=Filters(folder="f3"))

    assert [hit.asset_id for hit in hits] == best
    assert all(hit.document.folder == "f3" for hit in hits)


def test_pages_read_the_point_in_time_and_a_deleted_one_falls_back_to_the_live_index(opensearch_url, alias):
    index = open_on(opensearch_url, alias, point_in_time_s=60)
    vectors = clustered(50, seed=3)
    index.upsert(assets(vectors))
    query = vectors[0]
    first = index.knn_page(query, 10)
    snapshot = index.open_snapshot()
    newcomer = IndexedAsset("f" * 32, query, document("f" * 32, "late"))
    index.upsert([newcomer])  # scores 1.0: among the first in the live index

    after = SearchAfter(first[-1].score, first[-1].asset_id)
    frozen = index.knn_page(query, 100, after=after, snapshot=snapshot)
    index.close_snapshot(snapshot)
    live = index.knn_page(query, 100, after=after, snapshot=snapshot)  # closed: the live index

    assert len(first) + len(frozen) == 50
    assert "f" * 32 not in {hit.asset_id for hit in first + frozen}
    assert [hit.asset_id for hit in live] == [hit.asset_id for hit in frozen]  # newcomer sorts above `after`
    assert "f" * 32 in {hit.asset_id for hit in index.knn_page(query, 2)}  # ties with asset 0 at 1.0


def test_a_bulk_with_one_refused_document_lands_the_others_and_names_the_refusal(opensearch_url, alias):
    index = open_on(opensearch_url, alias)
    vectors = clustered(5, seed=4)
    batch = assets(vectors)
    # A keyword term over Lucene's 32,766-byte limit: only the node can refuse it (the adapter checks types)
    bad = IndexedAsset(batch[2].asset_id, vectors[2], document(batch[2].asset_id, "x", folder="a" * 40_000))
    batch[2] = bad

    with pytest.raises(OpenSearchRefused, match=r"\(400\).*immense term"):
        index.upsert(batch)

    assert index.count() == 4
    assert index.get(bad.asset_id) is None


def test_reads_during_the_alias_swap_never_fail_nor_come_back_empty(opensearch_url, alias):
    index = open_on(opensearch_url, alias)
    vectors = clustered(200, seed=5)
    index.upsert(assets(vectors))
    building = open_on(opensearch_url, alias, model="m2", reindex=True)
    building.upsert(assets(vectors))
    results: list[int] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                results.append(len(index.knn_page(vectors[0], 5)))
            except Exception as exc:  # any failure is what this test looks for
                errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        while len(results) < 20:
            stop.wait(0.01)
        building.activate(building.physical_name)
        seen = len(results)
        while len(results) < seen + 20:
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join()

    assert errors == []
    assert set(results) == {5}
    assert list(index._os.indices.get_alias(name=alias)) == [building.physical_name]


def test_an_index_of_another_model_is_refused_at_start(opensearch_url, alias):
    open_on(opensearch_url, alias, model="m1")

    with pytest.raises(ConfigurationError, match="re-index"):
        open_on(opensearch_url, alias, model="m2")


class Throttling(ThreadingHTTPServer):
    """A loopback proxy in front of the node answering a seeded share of requests 429 (as a domain
    under load does), forwarding the rest."""

    daemon_threads = True

    def __init__(self, upstream: str, rate: float):
        self.upstream, self.rate, self.injected = upstream, rate, 0
        self.rng, self.lock = random.Random(0), threading.Lock()
        super().__init__(("127.0.0.1", 0), ThrottlingHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ThrottlingHandler(BaseHTTPRequestHandler):
    server: Throttling

    def log_message(self, *_args) -> None:
        """Quiet."""

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            throttle = self.server.rng.random() < self.server.rate
            self.server.injected += throttle
        if throttle:
            payload = b'{"error":{"type":"too_many_requests","reason":"injected"},"status":429}'
            status, headers = 429, {"Content-Type": "application/json"}
        else:
            response = requests.request(
                self.command,
                self.server.upstream + self.path,
                data=body or None,
                headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                timeout=60,
            )
            payload, status = response.content, response.status_code
            headers = {"Content-Type": response.headers.get("Content-Type", "application/json")}
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server's names)


def test_a_thousand_writes_through_throttling_all_land_once(opensearch_url, alias):
    index = open_on(opensearch_url, alias)  # made without faults
    proxy = Throttling(opensearch_url, rate=0.2)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        options = IndexOptions(engine="lucene", replicas=0, refresh_interval="20ms")
        through = OpenSearchIndex(
            connect(proxy.url, auth="none"), alias, DIM, "m1", options=options, attempts=8, budget_s=60
        )
        every = assets(clustered(1000, seed=6))
        for start in range(0, 1000, 10):
            through.upsert(every[start : start + 10])
    finally:
        proxy.shutdown()
        thread.join()

    assert proxy.injected > 0
    assert index.count() == 1000
    assert len(set(index.iter_assets())) == 1000


def node_settings(url: str, index: str) -> dict[str, str]:
    found = requests.get(f"{url}/{index}/_settings", params={"flat_settings": "true"}, timeout=30).json()
    return found[index]["settings"]


def test_a_bulk_load_lands_every_document_and_readers_move_only_once_it_is_finished(opensearch_url, alias):
    # Given an index readers use, and a new one for another model beside it
    served = open_on(opensearch_url, alias, model="m1")
    served.upsert(assets(clustered(50, seed=8)))
    building = open_on(opensearch_url, alias, model="m2", reindex=True)
    vectors = clustered(3000, seed=9)
    seen: dict[str, object] = {}

    def probed() -> Iterator[IndexedAsset]:
        for n, asset in enumerate(assets(vectors)):
            if n == 2000:  # mid-load: the new index, and what readers see
                seen["settings"] = node_settings(opensearch_url, building.physical_name)
                seen["alias"] = list(requests.get(f"{opensearch_url}/_alias/{alias}", timeout=30).json())
                seen["served"] = served.count()
            yield asset

    # When 3,000 documents are bulk loaded in parallel requests of ~100 kB, then the index activated
    written = building.bulk_load(probed(), BulkTuning(chunk_bytes=100_000, threads=2))
    before = list(requests.get(f"{opensearch_url}/_alias/{alias}", timeout=30).json())
    building.activate(building.physical_name)

    # Then the load ran without refresh or replica while readers kept the old index
    settings = seen["settings"]
    assert isinstance(settings, dict)
    assert (settings["index.refresh_interval"], settings["index.number_of_replicas"]) == ("-1", "0")
    assert seen["alias"] == before == [served.physical_name]
    assert seen["served"] == 50
    # and readers now have every document once, in one segment, with the configured refresh back
    assert written == 3000
    assert served.count() == 3000
    assert len(set(served.iter_assets())) == 3000
    after = node_settings(opensearch_url, building.physical_name)
    assert after["index.refresh_interval"] == "20ms"
    segments = requests.get(
        f"{opensearch_url}/_cat/segments/{building.physical_name}?format=json", timeout=30
    )
    assert len(segments.json()) == 1
    assert served.knn_page(vectors[7], 1)[0].asset_id == f"{7:032x}"


def test_a_bulk_load_through_throttling_lands_every_document_once(opensearch_url, alias):
    open_on(opensearch_url, alias)  # the served index, made without faults
    proxy = Throttling(opensearch_url, rate=0.2)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        options = IndexOptions(engine="lucene", replicas=0, refresh_interval="20ms")
        client = connect(proxy.url, auth="none")
        building = OpenSearchIndex(
            client, alias, DIM, "m2", options=options, reindex=True, attempts=8, budget_s=60
        )
        written = building.bulk_load(
            assets(clustered(2000, seed=10)), BulkTuning(chunk_bytes=30_000, threads=3)
        )
        building.finish_load()
    finally:
        proxy.shutdown()
        thread.join()

    direct = open_on(opensearch_url, alias, model="m2", reindex=True)
    assert proxy.injected > 0
    assert written == 2000
    assert direct.count() == 2000
    assert len(set(direct.iter_assets())) == 2000


def test_page_one_with_the_default_beam_finds_95_percent_of_the_exact_top_10_in_100k_clustered_vectors(
    opensearch_url, alias
):
    # Given 100,000 clustered 512-d vectors (bench/opensearch.py's data), backfilled as a backfill does
    vectors, queries = embeddings.clustered(100_000, 100, 512)
    options = IndexOptions(engine="lucene", replicas=0)  # the defaults: ef_search, k_floor, k_factor
    building = OpenSearchIndex(
        connect(opensearch_url, auth="none", timeout=600.0), alias, 512, "m1", options=options, reindex=True
    )
    every = (
        IndexedAsset(f"{n:032x}", vectors[n], document(f"{n:032x}", f"p{n}")) for n in range(len(vectors))
    )
    assert building.bulk_load(every) == len(vectors)
    building.activate(building.physical_name)
    index = OpenSearchIndex(connect(opensearch_url, auth="none"), alias, 512, "m1", options=options)

    # When each query asks for its first page of 10, as the search service does
    found = 0
    for query in queries:
        exact = set(np.argpartition(-(vectors @ query), 10)[:10].tolist())
        found += len(exact & {int(hit.asset_id, 16) for hit in index.knn_page(query, 10)})

    # Then recall@10 against exact search is at least 0.95
    assert found / (10 * len(queries)) >= 0.95
