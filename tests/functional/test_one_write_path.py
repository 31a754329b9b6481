"""Every writer goes through the one ledger-guarded indexing path: an API upload on AWS is stored once and
indexed once, by its bucket event, with its tags and under the opt-in rule; on one machine the upload,
destroy and `visual-search add` index through the same pipeline and each call reports only itself."""

from __future__ import annotations

import pytest

from tests.fixtures import images
from tests.functional.conftest import make_settings
from visual_search.bootstrap import build_services
from visual_search.domain.identity import derived_asset_id
from visual_search.embedding import Embedder


@pytest.fixture
def aws_api(world, tmp_path, tiny_model_dir):
    """The search service as deployed: S3 store, beside the ingest worker that drains the bucket's queue."""
    services = build_services(
        make_settings(tmp_path / "api", tiny_model_dir, store_backend="s3", bucket="visual-search-images")
    )
    yield services
    services.close()


def count_image_embeddings(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = Embedder.embed_pixels

    def counting(self, pixels):
        calls.append(len(pixels))
        return original(self, pixels)

    monkeypatch.setattr(Embedder, "embed_pixels", counting)
    return calls


def test_an_upload_on_aws_is_embedded_once_by_its_bucket_event_and_keeps_its_tags(
    world, aws_api, monkeypatch
):
    worker = world.worker()
    embedded = count_image_embeddings(monkeypatch)

    document = aws_api.uploads.upload(
        images.jpeg(seed=3), {"public_id": "shop/red", "tags": "sale,ünï"}
    ).document
    assert embedded == []  # the request stores; it does not index
    world.drain(worker)

    stored = worker.index.get(document.asset_id)
    assert stored is not None
    assert stored.document.tags == ("sale", "ünï")
    assert sum(embedded) == 1
    assert aws_api.index.count() == 0  # the service's own index was never written
    worker.close()


def test_with_opt_in_an_upload_is_indexed_only_when_it_asks_to_be(world, aws_api):
    worker = world.worker(ingest_opt_in=True)
    plain = aws_api.uploads.upload(images.jpeg(seed=4), {"public_id": "plain"}).document
    opted = aws_api.uploads.upload(
        images.jpeg(seed=5), {"public_id": "opted", "visual_search": "true"}
    ).document
    world.drain(worker)
    assert worker.index.get(plain.asset_id) is None
    assert worker.index.get(opted.asset_id) is not None
    worker.close()


def test_a_destroy_on_aws_and_an_s3_delete_end_in_the_same_state(world, aws_api):
    worker = world.worker()
    a = aws_api.uploads.upload(images.jpeg(seed=6), {"public_id": "a"}).document
    b = aws_api.uploads.upload(images.jpeg(seed=7), {"public_id": "b"}).document
    world.drain(worker)
    assert aws_api.uploads.destroy("a") is True
    world.delete(f"b.{b.format}")
    world.drain(worker)
    for doc in (a, b):
        assert worker.index.get(doc.asset_id) is None
        assert worker.ledger.get(doc.asset_id).state == "removed"
    worker.close()


def test_locally_the_opt_in_rule_applies_to_uploads_too(tmp_path, tiny_model_dir):
    services = build_services(make_settings(tmp_path, tiny_model_dir, ingest_opt_in=True))
    plain = services.uploads.upload(images.jpeg(seed=8), {"public_id": "plain"}).document
    opted = services.uploads.upload(
        images.jpeg(seed=9), {"public_id": "opted", "visual_search": "1"}
    ).document
    assert services.index.get(plain.asset_id) is None
    assert services.index.get(opted.asset_id) is not None
    assert services.ledger.get(opted.asset_id).state == "indexed"
    services.close()


def test_each_local_write_reports_only_itself(tmp_path, tiny_model_dir):
    services = build_services(make_settings(tmp_path, tiny_model_dir))
    first = services.writer.put("one.jpg", images.jpeg(seed=10))
    second = services.writer.put("two.jpg", images.jpeg(seed=11))
    bad = services.writer.put("bad.jpg", images.truncated_jpeg())
    assert (first.counts, second.counts) == ({"indexed": 1}, {"indexed": 1})
    assert bad.counts == {"refused": 1}
    assert [r.reason for r in bad.refused] == ["corrupt"]
    removed = services.writer.delete("one.jpg")
    assert removed.counts == {"removed": 1}
    assert services.index.get(derived_asset_id(services.store.name, "one.jpg")) is None
    services.close()


def test_a_local_upload_decodes_its_image_once(tmp_path, tiny_model_dir, monkeypatch):
    # The upload checks the file by decoding it at the model's scale; indexing reuses that decode (a
    # second one doubled every upload's decoding time).
    import visual_search.ingest.pipeline as pipeline

    decodes = []
    real = pipeline.decode_image
    monkeypatch.setattr(pipeline, "decode_image", lambda *a, **k: decodes.append(1) or real(*a, **k))
    services = build_services(make_settings(tmp_path, tiny_model_dir))
    document = services.uploads.upload(images.jpeg(seed=12), {"public_id": "once"}).document
    assert services.index.get(document.asset_id) is not None
    assert len(decodes) == 1
    services.close()
