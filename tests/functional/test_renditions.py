"""Result grids get small renditions, made at ingest: a page of hits never needs the originals."""

from __future__ import annotations

import io

from PIL import Image

from tests.fixtures import images
from visual_search.domain.identity import derived_asset_id
from visual_search.ingest.renditions import MAX_SIDE, rendition_key


def test_every_hit_has_a_thumbnail_url_serving_a_small_jpeg(api):
    _, body, _ = api.search(text="shoe", max_results="5")
    for hit in body["resources"]:
        opened = api.http.request("GET", hit["thumbnail_url"])
        assert opened.status == 200
        thumb = Image.open(io.BytesIO(opened.data))
        assert thumb.format == "JPEG"
        assert max(thumb.size) <= MAX_SIDE
        assert len(opened.data) < hit["bytes"] or hit["bytes"] < 20_000


def test_renditions_are_not_part_of_the_collection(services):
    keys = list(services.store.list())
    assert keys
    assert not [k for k in keys if k.startswith("_vs/")]
    assert len(services.collection_ids()) == len(keys)


def test_a_rendition_keeps_the_upright_aspect_of_an_exif_rotated_photo(services):
    services.uploads.upload(images.exif_rotated_jpeg(), {"public_id": "rotated/portrait"})
    data = services.store.get(rendition_key("rotated/portrait.jpg")).data
    width, height = Image.open(io.BytesIO(data)).size
    assert height > width


def test_deleting_an_asset_deletes_its_rendition_too(services):
    services.uploads.upload(images.jpeg(seed=77), {"public_id": "gone/soon"})
    assert services.store.head(rendition_key("gone/soon.jpg")) is not None
    assert services.uploads.delete("gone/soon") == "deleted"
    assert services.store.head(rendition_key("gone/soon.jpg")) is None
    assert services.index.get(derived_asset_id(services.store.name, "gone/soon.jpg")) is None


def test_an_s3_delete_removes_the_rendition_written_at_ingest(world):
    worker = world.worker()
    world.put("photos/p.jpg", images.jpeg(seed=3))
    world.drain(worker)
    assert worker.store.head(rendition_key("photos/p.jpg")) is not None
    world.delete("photos/p.jpg")
    world.drain(worker)
    assert worker.store.head(rendition_key("photos/p.jpg")) is None
    worker.close()
