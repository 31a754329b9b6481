"""On AWS an asset's id travels with its object (S3 user metadata): the ingest worker indexes the object
under it, an overwrite in another format keeps it, and a rename (a copy, then a delete, in S3) moves
the asset instead of making a second one. Whatever order the copy's and the delete's events arrive in,
the index never holds both and ends with the asset under its new key; a removal event of the key the
asset left is ignored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures import images
from tests.fixtures.ingest_world import BUCKET, IngestWorld, as_sqs_event, s3_notification
from tests.functional.conftest import make_settings
from visual_search.bootstrap import IngestServices, build_services
from visual_search.ingest.batch import handle_event
from visual_search.ingest.objects import IngestReport

ASSET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def ingest(world: IngestWorld) -> Iterator[IngestServices]:
    services = world.worker()
    yield services
    services.close()


def put_asset(world: IngestWorld, key: str, seed: int) -> None:
    world.put(key, images.jpeg(seed=seed), Metadata={"vs-asset-id": ASSET})


def rename_in_s3(world: IngestWorld, old: str, new: str) -> None:
    world.s3.copy_object(Bucket=BUCKET, Key=new, CopySource={"Bucket": BUCKET, "Key": old})
    world.delete(old)


def apply(services: IngestServices, *notifications: dict) -> None:
    assert handle_event(services.pipeline, as_sqs_event(*notifications))["batchItemFailures"] == []


def where(services: IngestServices) -> str | None:
    found = services.index.get(ASSET)
    return None if found is None else found.document.key


def test_an_object_is_indexed_under_the_asset_id_stored_with_it(world, ingest):
    put_asset(world, "photos/a.jpg", 1)
    world.drain(ingest)
    assert where(ingest) == "photos/a.jpg"
    assert ingest.index.count() == 1
    assert ingest.ledger.get(ASSET).key == "photos/a.jpg"


def test_a_rename_delivered_in_order_moves_the_asset(world, ingest):
    put_asset(world, "photos/a.jpg", 1)
    world.drain(ingest)
    rename_in_s3(world, "photos/a.jpg", "photos/b.jpg")
    world.drain(ingest)
    assert where(ingest) == "photos/b.jpg"
    assert ingest.index.count() == 1
    assert ingest.ledger.get(ASSET).state == "indexed"


def test_a_rename_is_never_both_and_the_late_removal_of_the_old_key_is_ignored(world, ingest):
    put_asset(world, "photos/a.jpg", 1)
    apply(ingest, s3_notification("ObjectCreated:Put", "photos/a.jpg", "01"))
    rename_in_s3(world, "photos/a.jpg", "photos/b.jpg")
    # The copy's event first: the asset moves at once, one document throughout
    apply(ingest, s3_notification("ObjectCreated:Copy", "photos/b.jpg", "05"))
    assert (where(ingest), ingest.index.count()) == ("photos/b.jpg", 1)
    # Then the delete of the key it left: ignored
    apply(ingest, s3_notification("ObjectRemoved:Delete", "photos/a.jpg", "06"))
    assert (where(ingest), ingest.index.count()) == ("photos/b.jpg", 1)


def test_a_rename_delivered_out_of_order_ends_under_the_new_key(world, ingest):
    put_asset(world, "photos/a.jpg", 1)
    apply(ingest, s3_notification("ObjectCreated:Put", "photos/a.jpg", "01"))
    rename_in_s3(world, "photos/a.jpg", "photos/b.jpg")
    # The delete's event first: neither, until the copy's event
    apply(ingest, s3_notification("ObjectRemoved:Delete", "photos/a.jpg", "06"))
    assert where(ingest) is None
    apply(ingest, s3_notification("ObjectCreated:Copy", "photos/b.jpg", "05"))
    assert (where(ingest), ingest.index.count()) == ("photos/b.jpg", 1)
    # And the two in one batch, in either order, end the same way
    rename_in_s3(world, "photos/b.jpg", "photos/c.jpg")
    apply(
        ingest,
        s3_notification("ObjectRemoved:Delete", "photos/b.jpg", "09"),
        s3_notification("ObjectCreated:Copy", "photos/c.jpg", "08"),
    )
    assert (where(ingest), ingest.index.count()) == ("photos/c.jpg", 1)


def test_a_late_redelivery_of_the_old_keys_creation_does_not_move_the_asset_back(world, ingest):
    put_asset(world, "photos/a.jpg", 1)
    apply(ingest, s3_notification("ObjectCreated:Put", "photos/a.jpg", "01"))
    world.s3.copy_object(
        Bucket=BUCKET, Key="photos/b.jpg", CopySource={"Bucket": BUCKET, "Key": "photos/a.jpg"}
    )
    apply(ingest, s3_notification("ObjectCreated:Copy", "photos/b.jpg", "05"))
    # a duplicate of a.jpg's creation, while a.jpg is not deleted yet
    apply(ingest, s3_notification("ObjectCreated:Put", "photos/a.jpg", "01"))
    world.delete("photos/a.jpg")
    apply(ingest, s3_notification("ObjectRemoved:Delete", "photos/a.jpg", "06"))
    assert (where(ingest), ingest.index.count()) == ("photos/b.jpg", 1)


def test_an_upload_on_aws_keeps_its_asset_id_across_formats(world, ingest, tmp_path, tiny_model_dir):
    api = build_services(make_settings(tmp_path / "api", tiny_model_dir, store_backend="s3", bucket=BUCKET))
    first = api.uploads.upload(images.jpeg(seed=1), {"public_id": "shoes/red"})
    world.drain(ingest)
    second = api.uploads.upload(images.png(64, 64, seed=2), {"public_id": "shoes/red"})
    world.drain(ingest)
    assert second.document.asset_id == first.document.asset_id
    assert second.overwritten is True
    found = ingest.index.get(first.document.asset_id)
    assert found is not None
    assert found.document.key == "shoes/red.png"
    assert ingest.index.count() == 1
    api.close()


def test_a_rename_on_aws_moves_the_asset_through_its_bucket_events(world, ingest, tmp_path, tiny_model_dir):
    api = build_services(make_settings(tmp_path / "api", tiny_model_dir, store_backend="s3", bucket=BUCKET))
    uploaded = api.uploads.upload(images.jpeg(seed=1), {"public_id": "shoes/red", "tags": "sale"}).document
    world.drain(ingest)
    renamed = api.uploads.rename("shoes/red", "shoes/crimson")
    world.drain(ingest)
    assert renamed.asset_id == uploaded.asset_id
    found = ingest.index.get(uploaded.asset_id)
    assert found is not None
    assert (found.document.key, found.document.tags) == ("shoes/crimson.jpg", ("sale",))
    assert ingest.index.count() == 1
    api.close()


def test_tags_and_context_changed_on_aws_reach_the_index_through_bucket_events_without_embedding(
    world, ingest, tmp_path, tiny_model_dir
):
    api = build_services(make_settings(tmp_path / "api", tiny_model_dir, store_backend="s3", bucket=BUCKET))
    uploaded = api.uploads.upload(images.jpeg(seed=1), {"public_id": "shoes/red", "tags": "sale"}).document
    world.drain(ingest)
    before = ingest.index.get(uploaded.asset_id)
    # The answer has the change at once; the index after the bucket's event
    answered = api.labels.update("shoes/red", tags="sale,new", context="alt=red shoe")
    assert (answered.tags, answered.context) == (("new", "sale"), (("alt", "red shoe"),))
    report = IngestReport()
    world.drain(ingest, report=report)
    after = ingest.index.get(uploaded.asset_id)
    assert before is not None
    assert after is not None
    assert report.counts["indexed"] == 1
    assert (report.timings.decode_s, report.timings.embed_s) == (0, 0)
    assert (after.vector == before.vector).all()
    assert (after.document.tags, after.document.context) == (("new", "sale"), (("alt", "red shoe"),))
    assert ingest.index.count() == 1
    api.close()
