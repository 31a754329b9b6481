"""Bad and odd images through search-by-file, unicode and over-long keys through upload, and failing
dependencies: valid inputs work, invalid ones get a clear 4xx in Cloudinary's shape, nothing hangs, no
5xx, memory stays bounded."""

from __future__ import annotations

import resource
import time

import pytest

from tests.fixtures import images
from tests.functional.conftest import CLOUD
from visual_search.errors import DependencyUnavailable

SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
REQUEST_SECONDS = 10.0
RSS_GROWTH_MB = 600  # a 12 MP photo decodes at reduced scale; a bomb is refused from its header


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("kind", sorted(images.CORPUS))
def test_every_corpus_image_searched_by_file_works_or_is_refused_clearly(api, kind):
    factory, error = images.CORPUS[kind]
    before = peak_rss_mb()
    started = time.monotonic()
    status, body, _ = api.request("POST", SEARCH, fields={"image_file": (f"{kind}.jpg", factory())})
    assert time.monotonic() - started < REQUEST_SECONDS
    assert peak_rss_mb() - before < RSS_GROWTH_MB
    if error is None:
        assert status == 200
        assert body["resources"]
    else:
        assert status == 400
        assert set(body) == {"error"}
        assert body["error"]["message"]


def test_an_unavailable_index_is_a_429_with_retry_after_not_a_hang(api, services, monkeypatch):
    def unavailable(*_args, **_kwargs):
        raise DependencyUnavailable("index throttled")

    monkeypatch.setattr(services.index, "knn_page", unavailable)
    status, body, headers = api.search(text="shoe")
    assert status == 429  # not 503: Cloudinary's Node SDK drops the body of a 503
    assert int(headers["Retry-After"]) > 0
    assert "throttled" in body["error"]["message"]


def test_an_unavailable_store_during_upload_is_retryable_and_indexes_nothing(services, monkeypatch):
    def unavailable(*_args, **_kwargs):
        raise DependencyUnavailable("store timed out")

    monkeypatch.setattr(services.store, "put", unavailable)
    count = services.index.count()
    with pytest.raises(DependencyUnavailable):
        services.uploads.upload(images.jpeg(seed=1), {"public_id": "never-stored"})
    assert services.index.count() == count


def test_unicode_public_ids_are_stored_indexed_and_found(services):
    document = services.uploads.upload(images.jpeg(seed=41), {"public_id": "фото/café ☕ 1", "tags": "ünï"})
    assert document["public_id"] == "фото/café ☕ 1"
    assert document["folder"] == "фото"
    assert services.index.get(document["asset_id"]).document["tags"] == ["ünï"]


def test_a_public_id_over_255_characters_is_refused_before_anything_is_stored(services):
    # 600 characters, 1,200 bytes: past Cloudinary's 255 characters and S3's 1,024 bytes alike
    from visual_search.errors import BadInput

    count, keys = services.index.count(), set(services.store.list())
    with pytest.raises(BadInput, match="255"):
        services.uploads.upload(images.jpeg(seed=42), {"public_id": "é" * 600})
    assert services.index.count() == count
    assert set(services.store.list()) == keys
