"""At-least-once, unordered delivery: duplicates are harmless and an older event never overwrites a newer
state. The events are shaped like AWS's (sequencer, versionId, URL-encoded keys) — moto's carry neither
sequencer nor versionId — and the objects live in a versioned moto bucket, so an old event could still
fetch its old version: only the ledger stops it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from tests.fixtures import images
from tests.fixtures.ingest_world import BUCKET, IngestWorld, as_sqs_event, s3_notification, sqs_record
from visual_search.bootstrap import IngestServices
from visual_search.domain.identity import derived_asset_id
from visual_search.ingest.batch import handle_event

KEY = "photos/red flower été + (2).jpg"


@pytest.fixture
def ingest(versioned_world: IngestWorld) -> Iterator[IngestServices]:
    services = versioned_world.worker()
    yield services
    services.close()


def apply(services: IngestServices, *notifications: dict) -> dict:
    response = handle_event(services.pipeline, as_sqs_event(*notifications))
    assert response["batchItemFailures"] == []
    return response


def created(seq: str, version: str | None, key: str = KEY) -> dict:
    return s3_notification("ObjectCreated:Put", key, seq, version)


def removed(seq: str, version: str | None = None, name: str = "ObjectRemoved:DeleteMarkerCreated") -> dict:
    return s3_notification(name, KEY, seq, version)


def indexed_vector(services: IngestServices, key: str = KEY) -> np.ndarray | None:
    found = services.index.get(derived_asset_id(services.store.name, key))
    return None if found is None else found.vector


def test_url_encoded_keys_with_spaces_plus_and_unicode_are_fetched_and_indexed(versioned_world, ingest):
    version = versioned_world.put(KEY, images.jpeg(seed=1))
    apply(ingest, created("0A", version))
    found = ingest.index.get(derived_asset_id(ingest.store.name, KEY))
    assert found is not None
    assert found.document.public_id == "photos/red flower été + (2)"


def test_a_late_create_after_the_delete_stays_out(versioned_world, ingest):
    v1 = versioned_world.put(KEY, images.jpeg(seed=1))
    versioned_world.delete(KEY)
    apply(ingest, removed("0B"))
    apply(ingest, created("0A", v1))  # its version is still readable: only the ledger stops it
    assert indexed_vector(ingest) is None
    assert ingest.ledger.get(derived_asset_id(ingest.store.name, KEY)).state == "removed"


def test_an_old_overwrite_arriving_after_the_new_one_is_ignored(versioned_world, ingest, tiny_embedder):
    old, new = images.jpeg(seed=1), images.jpeg(seed=2)
    v1, v2 = versioned_world.put(KEY, old), versioned_world.put(KEY, new)
    apply(ingest, created("00000000000000000002", v2))
    apply(ingest, created("01", v1))  # shorter sequencer, smaller value: older
    expected = tiny_embedder.embed_images([new])[0]
    np.testing.assert_allclose(indexed_vector(ingest), expected, atol=1e-5)


def test_both_orders_of_an_overwrite_end_in_the_same_state(versioned_world, ingest, tiny_embedder):
    v1, v2 = versioned_world.put(KEY, images.jpeg(seed=1)), versioned_world.put(KEY, images.jpeg(seed=2))
    apply(ingest, created("01", v1), created("02", v2))  # in order, in one batch
    in_order = indexed_vector(ingest)
    other = versioned_world.worker("other")
    apply(other, created("02", v2))
    apply(other, created("01", v1))
    np.testing.assert_allclose(indexed_vector(other), in_order, atol=1e-6)
    other.close()


def test_a_new_upload_after_a_delete_is_indexed_again(versioned_world, ingest):
    versioned_world.put(KEY, images.jpeg(seed=1))
    versioned_world.delete(KEY)
    v3 = versioned_world.put(KEY, images.jpeg(seed=3))
    apply(ingest, removed("02"))
    apply(ingest, created("03", v3))
    assert indexed_vector(ingest) is not None


def test_a_redelivered_event_writes_nothing_the_second_time(versioned_world, ingest, monkeypatch):
    version = versioned_world.put(KEY, images.jpeg(seed=1))
    writes = []
    upsert = ingest.index.upsert
    monkeypatch.setattr(
        ingest.index,
        "upsert",
        lambda assets, known=None: (writes.append(len(assets)), upsert(assets, known))[1],
    )
    event = created("0A", version)
    apply(ingest, event)
    apply(ingest, event)
    apply(ingest, event, event)
    assert writes == [1]


def test_deleting_a_non_current_version_keeps_the_current_one_indexed(versioned_world, ingest, tiny_embedder):
    v1 = versioned_world.put(KEY, images.jpeg(seed=1))
    v2 = versioned_world.put(KEY, images.jpeg(seed=2))
    apply(ingest, created("02", v2))
    versioned_world.s3.delete_object(Bucket=BUCKET, Key=KEY, VersionId=v1)
    apply(ingest, removed("03", v1, name="ObjectRemoved:Delete"))
    expected = tiny_embedder.embed_images([images.jpeg(seed=2)])[0]
    np.testing.assert_allclose(indexed_vector(ingest), expected, atol=1e-5)


def test_eventbridge_events_invoking_the_function_directly_are_applied(versioned_world, ingest):
    version = versioned_world.put("products/blue shirt.jpg", images.jpeg(seed=4))
    event = {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "time": "2026-11-24T10:20:00Z",
        "detail": {
            "bucket": {"name": BUCKET},
            "object": {"key": "products/blue+shirt.jpg", "size": 5, "version-id": version, "sequencer": "0C"},
        },
    }
    assert handle_event(ingest.pipeline, event) == {"applied": 1}
    assert indexed_vector(ingest, "products/blue shirt.jpg") is not None


def test_a_malformed_message_fails_alone_and_the_rest_of_the_batch_is_applied(versioned_world, ingest):
    version = versioned_world.put(KEY, images.jpeg(seed=1))
    good = as_sqs_event(created("0A", version))["Records"][0]
    bad = sqs_record({"MessageId": "garbage", "Body": "<xml>not an event</xml>"})
    test_event = sqs_record(
        {"MessageId": "test", "Body": json.dumps({"Event": "s3:TestEvent", "Bucket": BUCKET})}
    )
    response = handle_event(ingest.pipeline, {"Records": [bad, good, test_event]})
    assert response["batchItemFailures"] == [{"itemIdentifier": "garbage"}]
    assert indexed_vector(ingest) is not None
