"""Each kind of bad or unusual image, uploaded to the bucket: the bad ones are refused with their reason
(recorded, never retried), the unusual-but-valid ones are indexed, and none blocks the others."""

from __future__ import annotations

import pytest

from tests.fixtures import images
from visual_search import errors
from visual_search.domain.identity import derived_asset_id

EXTENSIONS = {"png_bomb": "png", "grey_16bit": "png", "palette_alpha": "png", "animated_gif": "gif"}
EXTENSIONS |= {"multipage_tiff": "tif", "one_pixel": "png", "svg": "png", "html": "jpg"}


@pytest.fixture
def uploaded(world):
    keys = {}
    for name, (make, expected) in images.CORPUS.items():
        key = f"kinds/{name}.{EXTENSIONS.get(name, 'jpg')}"
        world.put(key, make())
        keys[name] = (key, expected)
    world.put("kinds/rgba.png", images.rgba_png())
    keys["rgba"] = ("kinds/rgba.png", None)
    return keys


def test_every_bad_image_kind_is_refused_with_its_reason_and_the_valid_ones_are_indexed(world, uploaded):
    services = world.worker()
    responses = world.drain(services)
    assert all(r["batchItemFailures"] == [] for r in responses)
    outcome = {}
    for name, (key, _expected) in uploaded.items():
        entry = services.ledger.get(derived_asset_id(services.store.name, key))
        outcome[name] = (entry.state, entry.reason)
    expected = {
        name: ("refused", getattr(errors, error).reason) if error else ("indexed", None)
        for name, (_key, error) in uploaded.items()
    }
    assert outcome == expected
    assert services.index.count() == sum(1 for state, _ in expected.values() if state == "indexed")
    services.close()


def test_exif_rotation_is_applied_before_indexing(world, uploaded):
    services = world.worker()
    world.drain(services)
    found = services.index.get(derived_asset_id(services.store.name, uploaded["exif_rotated"][0]))
    assert (found.document.width, found.document.height) == (200, 400)
    services.close()


def test_an_object_over_the_byte_limit_is_refused_as_too_many_bytes(world):
    services = world.worker(max_image_bytes=20_000)
    world.put("big/photo.jpg", images.jpeg(1200, 900, seed=3))
    world.put("big/small.jpg", images.jpeg(64, 48, seed=4))
    world.drain(services)
    big = services.ledger.get(derived_asset_id(services.store.name, "big/photo.jpg"))
    assert (big.state, big.reason) == ("refused", "too_many_bytes")
    assert services.ledger.get(derived_asset_id(services.store.name, "big/small.jpg")).state == "indexed"
    services.close()
