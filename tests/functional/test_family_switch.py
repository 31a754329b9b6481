"""Switching a live deployment to a model of another family and embedding dimension: from the shipped
tiny CLIP (32-d) to a tiny SigLIP 2 (48-d). The new model's index is back-filled from the same store
while the old one serves; readers then move - on one machine by a restart on the new model, on
OpenSearch by the alias swap of `visual-search backfill --activate` (on the double, and on the local
node where one is running: none is started here). The procedure is in docs/models.md."""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

import visual_search.ingest.backfill as backfill_module
from tests.doubles.opensearch_double import FakeOpenSearch, plug_in
from tests.fixtures import images
from tests.functional.conftest import Api, make_settings, seed_images
from visual_search.bootstrap import Services, build_services
from visual_search.cli import main
from visual_search.index import opensearch_mapping
from visual_search.index.opensearch import OpenSearchIndex, connect
from visual_search.index.port import IndexedAsset
from visual_search.search.service import SearchQuery
from visual_search.server import LocalServer

IMAGES = 6
TEXT = "a red shirt"
Answer = list[tuple[str, float]]


def ranked(services: Services) -> Answer:
    """Every asset for TEXT, best first, with its score."""
    page = services.search.search(SearchQuery(text=TEXT, max_results=IMAGES))
    return [(hit.asset_id, hit.score) for hit in page.hits]


def first_page_cursor(services: Services) -> str:
    cursor = services.search.search(SearchQuery(text=TEXT, max_results=2)).next_cursor
    assert cursor is not None
    return cursor


def over_http(services: Services, **params: Any) -> tuple[int, Any, Any]:
    """One search through the local server over `services` (the API's statuses and bodies)."""
    server = LocalServer(services, "127.0.0.1", 0).start()
    try:
        return Api(server.url).search(**params)
    finally:
        server.stop()


def backfill_while(monkeypatch, env: dict[str, str], args: list[str], watch: Callable[[], None]) -> int:
    """`visual-search backfill` run with `env`, calling `watch` after each object it lists, as readers
    search meanwhile."""
    real = backfill_module.backfill

    def watched(*positional: Any, progress: Callable[[int], None] | None = None, **named: Any):
        def step(n: int) -> None:
            if progress:
                progress(n)
            watch()

        return real(*positional, progress=step, **named)

    with monkeypatch.context() as scoped:
        for name, value in env.items():
            scoped.setenv(name, value)
        scoped.setattr(backfill_module, "backfill", watched)
        return main(["backfill", "--quiet", *args])


def documents(services: Services, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each asset's document without what differs by model (its id) or by writer (the upload's clock or
    the file's, to the second)."""
    found = {}
    for asset_id in ids:
        stored = services.index.get(asset_id)
        assert stored is not None
        fields = stored.document.to_fields().items()
        found[asset_id] = {k: v for k, v in fields if k not in ("model_id", "created_at")}
    return found


def assert_the_new_model_finds_the_same_assets(
    switched: Services, answer: Answer, old_documents: dict[str, dict[str, Any]], dim: int
) -> None:
    ids = [asset_id for asset_id, _ in answer]
    found = [asset_id for asset_id, _ in ranked(switched)]
    assert sorted(found) == sorted(ids)
    assert documents(switched, ids) == old_documents  # names, tags, sizes: the same assets
    assert {switched.index.get(i).vector.shape for i in ids} == {(dim,)}  # type: ignore[union-attr]
    similar = switched.search.search(SearchQuery(asset_id=ids[0], max_results=IMAGES))
    assert sorted(hit.asset_id for hit in similar.hits) == sorted(ids[1:])


def assert_a_cursor_of_the_old_model_is_a_400(switched: Services, cursor: str) -> None:
    status, body, _ = over_http(switched, text=TEXT, max_results=2, next_cursor=cursor)
    assert status == 400
    # The caller sent the same parameters as before: the model changed, and the message says so.
    assert "different query or model" in body["error"]["message"]
    assert "start the search again" in body["error"]["message"]


# -- one machine: the embedded index, one file per model; readers move by a restart


@dataclass
class Restarted:
    data: Path
    old_folder: Path  # the old model's index
    old_files: dict[str, str]  # its files' sha256, before the backfill
    answer: Answer  # the old model's answer to TEXT, before the backfill
    documents: dict[str, dict[str, Any]]  # its assets' documents
    cursor: str  # a next_cursor the old model's service handed out
    during: list[Answer]  # its answers while the backfill ran
    backfill_rc: int


def fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def restarted(tmp_path, tiny_model_dir, tiny_siglip2_48_model_dir, monkeypatch) -> Restarted:
    # Given images indexed under the tiny CLIP (32-d), and its service serving them
    seeding = build_services(make_settings(tmp_path, tiny_model_dir))
    seed_images(seeding, IMAGES)
    seeding.close()
    (old_folder,) = (tmp_path / "index").iterdir()
    old_files = fingerprint(old_folder)
    served = build_services(make_settings(tmp_path, tiny_model_dir))
    try:
        answer, cursor, during = ranked(served), first_page_cursor(served), []
        before = documents(served, [asset_id for asset_id, _ in answer])
        # When SigLIP 2's index is back-filled from the same store while that service answers
        env = {"VS_MODEL_DIR": str(tiny_siglip2_48_model_dir), "VS_DATA_DIR": str(tmp_path)}
        rc = backfill_while(monkeypatch, env, [], lambda: during.append(ranked(served)))
    finally:
        served.close()  # the restart
    return Restarted(tmp_path, old_folder, old_files, answer, before, cursor, during, rc)


def test_on_one_machine_the_old_model_answers_as_before_while_the_new_models_index_is_back_filled(restarted):
    assert restarted.backfill_rc == 0
    assert len(restarted.during) == IMAGES
    assert all(answer == restarted.answer for answer in restarted.during)


def test_on_one_machine_the_service_restarted_on_the_new_model_finds_the_same_assets_with_its_dimension(
    restarted, tiny_siglip2_48_model_dir
):
    switched = build_services(make_settings(restarted.data, tiny_siglip2_48_model_dir))
    try:
        assert_the_new_model_finds_the_same_assets(switched, restarted.answer, restarted.documents, dim=48)
        assert_a_cursor_of_the_old_model_is_a_400(switched, restarted.cursor)
    finally:
        switched.close()


def test_on_one_machine_the_old_models_index_is_left_as_it_was_and_a_restart_on_it_rolls_back(
    restarted, tiny_model_dir, tiny_siglip2_48_model_dir
):
    build_services(make_settings(restarted.data, tiny_siglip2_48_model_dir)).close()  # the new model ran

    assert fingerprint(restarted.old_folder) == restarted.old_files
    rolled_back = build_services(make_settings(restarted.data, tiny_model_dir))
    try:
        assert ranked(rolled_back) == restarted.answer
    finally:
        rolled_back.close()


# -- OpenSearch: an index per model behind the alias readers use; `backfill --activate` moves it


@dataclass
class Cluster:
    """Where the indices live: the settings that reach them, and a look at what the alias names."""

    endpoint: str
    alias: str
    double: FakeOpenSearch | None = None
    node_url: str | None = None
    patience: dict[str, float] = field(default_factory=dict)  # timeouts, where the cluster is shared

    def settings(self) -> dict[str, Any]:
        return {
            "index_backend": "opensearch",
            "opensearch_endpoint": self.endpoint,
            "opensearch_auth": "none",
            "opensearch_index": self.alias,
            **self.patience,
        }

    def env(self, model_dir: Path, data: Path) -> dict[str, str]:
        """What `visual-search backfill` reads to build `model_dir`'s index beside the served one."""
        named = {f"VS_{k.upper()}": str(v) for k, v in self.settings().items()}
        named |= {"VS_MODEL_DIR": str(model_dir), "VS_DATA_DIR": str(data)}
        return named | {"VS_OPENSEARCH_REINDEX": "true"}

    def behind_alias(self) -> set[str]:
        if self.double is not None:
            return set(self.double.aliases.get(self.alias, set()))
        return set(requests.get(f"{self.node_url}/_alias/{self.alias}", timeout=30).json())

    def count(self, index: str) -> int:
        if self.double is not None:
            return len(self.double.indices[index].docs)
        return int(requests.get(f"{self.node_url}/{index}/_count", timeout=30).json()["count"])


@pytest.fixture(params=["double", "node"])
def cluster(request, monkeypatch) -> Iterator[Cluster]:
    if request.param == "double":
        double = FakeOpenSearch(mode="managed")
        plug_in(monkeypatch, double)
        yield Cluster("https://search.example", "visual-search", double=double)
    else:
        yield from _on_the_running_node(monkeypatch)


def _on_the_running_node(monkeypatch) -> Iterator[Cluster]:
    """The local node others share, if one is running (`make opensearch-start`); never started here.
    It runs Lucene only - a faiss index would kill it -, so the services' indices are made on Lucene,
    and a guard in front of it refuses any faiss one."""
    from tests import opensearch_node
    from tests.emulator.index_proxy import IndexProxy

    url = None if os.environ.get("VS_OPENSEARCH") == "off" else opensearch_node.running_url()
    if url is None:
        pytest.skip("no OpenSearch node is running (make opensearch-start); this test starts none")
    lucene = functools.partial(
        opensearch_mapping.IndexOptions, engine=opensearch_node.ENGINE, replicas=0, refresh_interval="20ms"
    )
    monkeypatch.setattr(opensearch_mapping, "IndexOptions", lucene)
    guard = IndexProxy(url)
    alias = f"vs-switch-{uuid.uuid4().hex[:10]}"
    try:
        # Other sessions' tests and benchmarks load the node too: a request may wait its turn.
        patience = {"opensearch_timeout_s": 30.0, "opensearch_budget_s": 120.0}
        yield Cluster(guard.url, alias, node_url=url, patience=patience)
        assert guard.refused_faiss == 0
    finally:
        guard.shutdown()
        requests.delete(f"{url}/{alias}-*", timeout=30)


@dataclass
class Swapped:
    cluster: Cluster
    data: Path
    served: Services  # the old model's service, still running after the swap
    answer: Answer  # its answer to TEXT before the backfill
    documents: dict[str, dict[str, Any]]  # its assets' documents
    cursor: str  # a next_cursor it handed out before the swap
    old: set[str]  # what the alias named before
    during: list[tuple[set[str], Answer]] = field(default_factory=list)  # the alias, and the answer
    backfill_rc: int = -1


@pytest.fixture
def swapped(cluster, tmp_path, tiny_model_dir, tiny_siglip2_48_model_dir, monkeypatch) -> Iterator[Swapped]:
    # Given images indexed under the tiny CLIP (32-d) behind the alias, and its service serving them
    served = build_services(make_settings(tmp_path, tiny_model_dir, **cluster.settings()))
    try:
        seed_images(served, IMAGES)
        answer = ranked(served)
        before = documents(served, [asset_id for asset_id, _ in answer])
        state = Swapped(
            cluster, tmp_path, served, answer, before, first_page_cursor(served), cluster.behind_alias()
        )
        # When SigLIP 2's index is back-filled beside it and activated, by one command, while it answers
        state.backfill_rc = backfill_while(
            monkeypatch,
            cluster.env(tiny_siglip2_48_model_dir, tmp_path),
            ["--batch", "2", "--activate"],
            lambda: state.during.append((cluster.behind_alias(), ranked(served))),
        )
        yield state
    finally:
        served.close()


def test_on_opensearch_the_alias_serves_the_old_model_until_one_call_moves_it_to_the_complete_new_index(
    swapped,
):
    # Then readers had the old index, and its answers, throughout the load
    assert swapped.backfill_rc == 0
    assert len(swapped.during) == IMAGES
    assert all(seen == (swapped.old, swapped.answer) for seen in swapped.during)
    # and the alias now names the new model's index alone, which holds every image
    (new,) = swapped.cluster.behind_alias()
    assert {new} != swapped.old
    assert swapped.cluster.count(new) == IMAGES
    double = swapped.cluster.double
    if double is not None:  # every request is recorded: one `_aliases` call moved it, remove and add
        moves = [body for _, path, _, body in double.requests if path == "/_aliases"]
        (old,) = swapped.old
        assert moves[-1] == {
            "actions": [
                {"remove": {"index": old, "alias": swapped.cluster.alias}},
                {"add": {"index": new, "alias": swapped.cluster.alias}},
            ]
        }
        assert len(moves) == 2  # the first made the alias, with the old model's index


def test_on_opensearch_after_the_swap_a_service_on_the_new_model_finds_the_same_assets_with_its_dimension(
    swapped, tiny_siglip2_48_model_dir
):
    settings = make_settings(swapped.data, tiny_siglip2_48_model_dir, **swapped.cluster.settings())
    switched = build_services(settings)
    try:
        assert_the_new_model_finds_the_same_assets(switched, swapped.answer, swapped.documents, dim=48)
        assert_a_cursor_of_the_old_model_is_a_400(switched, swapped.cursor)
    finally:
        switched.close()


def test_on_opensearch_a_service_still_on_the_old_model_after_the_swap_answers_429_not_500(swapped):
    # Given the swap, and a service not yet restarted on the new model (a function being deployed)
    asked = [
        {"text": TEXT},
        {"image_asset_id": swapped.answer[0][0]},
        {"text": TEXT, "max_results": 2, "next_cursor": swapped.cursor},
    ]
    for params in asked:
        # When it is asked to search
        status, body, headers = over_http(swapped.served, **params)
        # Then it answers "retry later", saying why: a retry reaches a service on the new model
        assert status == 429, (params, body)
        assert headers["Retry-After"]
        assert "model switch" in body["error"]["message"]


def test_on_opensearch_a_service_whose_alias_moved_to_another_model_of_its_dimension_does_not_rank_it(
    tmp_path, tiny_model_dir, monkeypatch
):
    # Given a service on the tiny CLIP (32-d) behind the alias
    double = FakeOpenSearch(mode="managed")
    plug_in(monkeypatch, double)
    cluster = Cluster("https://search.example", "visual-search", double=double)
    served = build_services(make_settings(tmp_path, tiny_model_dir, **cluster.settings()))
    try:
        seed_images(served, IMAGES)
        ids = [asset_id for asset_id, _ in ranked(served)]
        # When the alias moves to another model's index of the same dimension (CLIP to MobileCLIP: 512)
        other = OpenSearchIndex(
            connect(cluster.endpoint, auth="none", connection_class=double.connection_class()),
            cluster.alias,
            32,
            "other",
            reindex=True,
        )
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((IMAGES, 32)).astype(np.float32)
        other.upsert(
            [
                IndexedAsset(
                    i, v / np.linalg.norm(v), replace(served.index.get(i).document, model_id="other")
                )  # type: ignore[union-attr]
                for i, v in zip(ids, vectors, strict=True)
            ]
        )
        other.activate(other.physical_name)
        # Then the service does not rank the other model's vectors with its own query's
        for params in ({"text": TEXT}, {"image_asset_id": ids[0]}):
            status, body, _ = over_http(served, **params)
            assert status == 429, (params, body)
            assert "model switch" in body["error"]["message"]
    finally:
        served.close()


def test_on_opensearch_rolling_back_is_the_same_command_with_the_old_model(
    swapped, tiny_model_dir, monkeypatch, capsys
):
    # When the backfill runs again with the old model, into its own index, and --activate
    env = swapped.cluster.env(tiny_model_dir, swapped.data)
    assert backfill_while(monkeypatch, env, ["--activate"], lambda: None) == 0
    # Then nothing was embedded again, the alias names the old model's index again, and the service
    # still on the old model answers as before the switch
    assert capsys.readouterr().out.splitlines()[-1] == f"listed {IMAGES}; skipped: {IMAGES}"
    assert swapped.cluster.behind_alias() == swapped.old
    assert ranked(swapped.served) == swapped.answer


def test_on_opensearch_the_backfill_run_again_after_the_switch_indexes_what_was_written_meanwhile(
    swapped, tiny_siglip2_48_model_dir, monkeypatch, capsys
):
    # Given an image stored after the new model's backfill had listed the store
    late = swapped.data / "images" / "late" / "new.jpg"
    late.parent.mkdir(parents=True)
    late.write_bytes(images.jpeg(120, 90, seed=99))
    # When the backfill runs again with the new model
    env = swapped.cluster.env(tiny_siglip2_48_model_dir, swapped.data)
    assert backfill_while(monkeypatch, env, ["--prune"], lambda: None) == 0
    # Then only that image was embedded, and readers of the new model find it
    assert capsys.readouterr().out.splitlines()[-1] == f"listed {IMAGES + 1}; indexed: 1, skipped: {IMAGES}"
    switched = build_services(
        make_settings(swapped.data, tiny_siglip2_48_model_dir, **swapped.cluster.settings())
    )
    try:
        assert switched.index.count() == IMAGES + 1
    finally:
        switched.close()
