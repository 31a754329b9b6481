"""Backfill: what is already in the bucket gets indexed, resumably, without ever overriding what live
events applied; a second run touches only what changed; --prune removes assets whose object is gone."""

from __future__ import annotations

import time

import pytest

from tests.doubles.opensearch_double import FakeOpenSearch, plug_in
from tests.fixtures import images
from tests.fixtures.ingest_world import BUCKET, as_sqs_event, s3_notification
from visual_search.cli import main
from visual_search.domain.identity import derived_asset_id
from visual_search.ingest.backfill import backfill
from visual_search.ingest.batch import handle_event


def fill(world, n: int, prefix: str = "old/") -> list[str]:
    keys = [f"{prefix}{i:03d}.jpg" for i in range(n)]
    for i, key in enumerate(keys):
        world.put(key, images.jpeg(64, 48, seed=i))
    world.discard_queued()  # these predate the worker: only a backfill can find them
    return keys


def test_backfill_indexes_what_is_in_the_bucket_and_a_second_run_changes_nothing(world):
    keys = fill(world, 23)
    world.put("old/notes.txt", b"not an image")
    services = world.worker()
    first = backfill(services.pipeline, services.store, batch_size=5)
    assert first.listed == 24
    assert first.outcomes == {"indexed": 23, "skipped": 1}
    assert services.index.count() == 23
    second = backfill(services.pipeline, services.store)
    assert second.outcomes == {"skipped": 24}
    time.sleep(1.05)  # S3 listings give LastModified to the second
    world.put(keys[0], images.jpeg(64, 48, seed=99))  # changed since: picked up again
    assert backfill(services.pipeline, services.store).outcomes == {"indexed": 1, "skipped": 23}
    services.close()


def test_an_interrupted_backfill_resumes_where_it_stopped(world, monkeypatch):
    fill(world, 12)
    services = world.worker()
    calls = []
    apply = services.pipeline.apply

    def dies_on_the_second_batch(staged, report=None):
        calls.append(len(staged))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return apply(staged, report)

    monkeypatch.setattr(services.pipeline, "apply", dies_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        backfill(services.pipeline, services.store, batch_size=4)
    monkeypatch.undo()
    assert services.index.count() == 4
    resumed = backfill(services.pipeline, services.store, batch_size=4)
    assert resumed.outcomes == {"indexed": 8, "skipped": 4}
    services.close()


def test_a_live_delete_is_never_undone_by_a_backfill_that_listed_the_object_before(world):
    key = fill(world, 1)[0]
    services = world.worker()
    backfill(services.pipeline, services.store)
    world.delete(key)
    handle_event(services.pipeline, as_sqs_event(s3_notification("ObjectRemoved:Delete", key, "0A")))
    world.put(key, images.jpeg(64, 48, seed=5))  # re-created; its own event would carry the new state
    world.discard_queued()
    assert backfill(services.pipeline, services.store).outcomes == {"skipped": 1}
    assert services.index.get(derived_asset_id(services.store.name, key)) is None
    services.close()


def test_prune_removes_assets_whose_object_is_gone(world):
    keys = fill(world, 5)
    services = world.worker()
    backfill(services.pipeline, services.store)
    world.delete(keys[1])
    world.discard_queued()  # the delete event was missed
    report = backfill(services.pipeline, services.store, prune=True)
    assert report.outcomes == {"removed": 1, "skipped": 4}
    assert services.index.get(derived_asset_id(services.store.name, keys[1])) is None
    assert services.index.count() == 4
    services.close()


def _backfill_command_env(world, monkeypatch, prefix: str) -> None:
    monkeypatch.setenv("VS_MODEL_DIR", str(world.model_dir))
    monkeypatch.setenv("VS_DATA_DIR", str(world.data_dir / prefix))
    monkeypatch.setenv("VS_STORE_BACKEND", "s3")
    monkeypatch.setenv("VS_BUCKET", BUCKET)


def test_the_backfill_command_reads_the_ingest_settings_and_reports(world, monkeypatch, capsys):
    fill(world, 3, prefix="cli/")
    _backfill_command_env(world, monkeypatch, "cli")
    assert main(["backfill", "--prefix", "cli/", "--quiet", "--per-second", "1000"]) == 0
    assert capsys.readouterr().out.strip() == "listed 3; indexed: 3"


def _rebuilding_on_opensearch(monkeypatch) -> FakeOpenSearch:
    """The CLI's index is a new OpenSearch index built beside the served one (the double's cluster)."""
    cluster = FakeOpenSearch(mode="managed")
    plug_in(monkeypatch, cluster)
    monkeypatch.setenv("VS_INDEX_BACKEND", "opensearch")
    monkeypatch.setenv("VS_OPENSEARCH_ENDPOINT", "https://search.example")
    monkeypatch.setenv("VS_OPENSEARCH_REINDEX", "true")
    return cluster


def test_backfill_activate_points_the_alias_at_the_new_models_index_on_opensearch(world, monkeypatch, capsys):
    # Given a bucket's images and an OpenSearch index being rebuilt beside the served one
    fill(world, 3, prefix="re/")
    _backfill_command_env(world, monkeypatch, "re")
    cluster = _rebuilding_on_opensearch(monkeypatch)
    # When the backfill runs with --activate
    assert main(["backfill", "--prefix", "re/", "--quiet", "--activate"]) == 0
    # Then readers' alias names the one physical index, which holds every image
    (physical,) = cluster.aliases["visual-search"]
    assert physical != "visual-search"
    assert len(cluster.indices[physical].docs) == 3
    assert capsys.readouterr().out.strip() == "listed 3; indexed: 3"


def test_backfill_activate_on_the_embedded_index_is_refused_with_what_to_do(world, monkeypatch, capsys):
    fill(world, 1, prefix="one/")
    _backfill_command_env(world, monkeypatch, "one")
    assert main(["backfill", "--prefix", "one/", "--quiet", "--activate"]) == 2
    assert "--activate needs the OpenSearch index (one machine: restart instead)" in capsys.readouterr().err


def test_a_backfill_into_a_new_opensearch_index_is_a_bulk_load_finished_before_readers_move(
    world, monkeypatch, capsys
):
    # Given a bucket's images and an OpenSearch index being rebuilt for a new model
    fill(world, 4, prefix="bulk/")
    _backfill_command_env(world, monkeypatch, "bulk")
    cluster = _rebuilding_on_opensearch(monkeypatch)
    # When the backfill runs with --activate
    assert main(["backfill", "--prefix", "bulk/", "--quiet", "--batch", "2", "--activate"]) == 0
    # Then its writes did not wait for refreshes (the double refuses a wait_for into an index whose
    # refresh is off), and the index got refresh and replicas back, merged, before the alias moved
    calls = [(method, path.rsplit("/", 1)[-1], params) for method, path, params, _ in cluster.requests]
    bulks = [params for _, last, params in calls if last == "_bulk"]
    assert len(bulks) == 2
    assert all("refresh" not in params for params in bulks)
    order = [
        last for method, last, _ in calls if last in ("_bulk", "_forcemerge", "_aliases") or method == "PUT"
    ]
    assert order[-4:] == ["_bulk", "_forcemerge", "_settings", "_aliases"]
    (physical,) = cluster.aliases["visual-search"]
    assert cluster.indices[physical].settings["number_of_replicas"] == 1  # the configured default
    assert "refresh_interval" not in cluster.indices[physical].settings  # OpenSearch's default again
    assert capsys.readouterr().out.strip() == "listed 4; indexed: 4"
