"""S3 -> SQS -> ingest, end to end under moto: a real bucket notification configuration delivers to a
queue, and the queue is drained through the same entry point the Lambda uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures import images
from tests.fixtures.ingest_world import IngestWorld, sqs_record
from visual_search.bootstrap import IngestServices
from visual_search.domain.identity import derived_asset_id
from visual_search.errors import DependencyUnavailable
from visual_search.ingest.batch import handle_event
from visual_search.ingest.objects import IngestReport


@pytest.fixture
def ingest(world: IngestWorld) -> Iterator[IngestServices]:
    services = world.worker()
    yield services
    services.close()


def asset(services: IngestServices, key: str) -> str:
    return derived_asset_id(services.store.name, key)


def test_uploaded_images_become_searchable_and_deleted_ones_leave(world, ingest):
    for i in range(3):
        world.put(f"photos/p{i}.jpg", images.jpeg(seed=i))
    world.drain(ingest)
    ids = [asset(ingest, f"photos/p{i}.jpg") for i in range(3)]
    assert all(ingest.index.get(a) is not None for a in ids)
    assert ingest.index.get(ids[0]).document.public_id == "photos/p0"

    world.delete("photos/p1.jpg")
    world.drain(ingest)
    assert ingest.index.get(ids[1]) is None
    assert ingest.ledger.get(ids[1]).state == "removed"


def test_a_bad_image_is_refused_with_a_reason_and_does_not_block_the_batch(world, ingest):
    world.put("photos/good.jpg", images.jpeg(seed=1))
    world.put("photos/bad.jpg", images.truncated_jpeg())
    world.put("photos/bomb.png", images.png_bomb())
    responses = world.drain(ingest)
    assert all(r["batchItemFailures"] == [] for r in responses)
    assert ingest.index.get(asset(ingest, "photos/good.jpg")) is not None
    bad = ingest.ledger.get(asset(ingest, "photos/bad.jpg"))
    bomb = ingest.ledger.get(asset(ingest, "photos/bomb.png"))
    assert (bad.state, bad.reason) == ("refused", "corrupt")
    assert (bomb.state, bomb.reason) == ("refused", "too_many_pixels")


def test_duplicate_delivery_is_harmless(world, ingest):
    world.put("photos/x.jpg", images.jpeg(seed=5))
    messages = world.sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10)["Messages"]
    event = {"Records": [sqs_record(m) for m in messages]}
    first_report, second_report = IngestReport(), IngestReport()
    first = handle_event(ingest.pipeline, event, report=first_report)
    second = handle_event(ingest.pipeline, event, report=second_report)
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    assert ingest.index.count() == 1
    assert (first_report.counts, second_report.counts) == ({"indexed": 1}, {"skipped": 1})


def test_keys_outside_the_prefix_and_non_images_are_ignored(world):
    services = world.worker(ingest_prefix="photos/")
    world.put("other/a.jpg", images.jpeg(seed=1))
    world.put("photos/readme.txt", b"hello")
    world.put("photos/b.jpg", images.jpeg(seed=2))
    report = IngestReport()
    world.drain(services, report=report)
    assert services.index.count() == 1
    # skipped: other/a.jpg, readme.txt, and the rendition written for b.jpg (its own event comes back)
    assert report.counts == {"indexed": 1, "skipped": 3}
    services.close()


def test_an_index_failure_returns_the_messages_to_the_queue_and_records_nothing(world, ingest, monkeypatch):
    world.put("photos/a.jpg", images.jpeg(seed=1))

    def unavailable(*_args):
        raise DependencyUnavailable("index throttled")

    monkeypatch.setattr(ingest.index, "upsert", unavailable)
    responses = world.drain(ingest)
    assert len(responses[0]["batchItemFailures"]) == 1
    assert ingest.ledger.get(asset(ingest, "photos/a.jpg")) is None
    monkeypatch.undo()
    world.drain(ingest)
    assert ingest.ledger.get(asset(ingest, "photos/a.jpg")).state == "indexed"


def test_opt_in_mode_indexes_only_tagged_objects_and_drops_those_untagged_later(world):
    services = world.worker(ingest_opt_in=True)
    world.put("a.jpg", images.jpeg(seed=1), Tagging="visual_search=true")
    world.put("b.jpg", images.jpeg(seed=2))
    world.drain(services)
    assert services.index.get(asset(services, "a.jpg")) is not None
    assert services.index.get(asset(services, "b.jpg")) is None
    assert services.ledger.get(asset(services, "b.jpg")) is None

    world.put("a.jpg", images.jpeg(seed=3))  # overwritten without the tag: opted out
    world.drain(services)
    assert services.index.get(asset(services, "a.jpg")) is None
    services.close()
