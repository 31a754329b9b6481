"""Cloudinary's own Python SDK pointed at the local server (`upload_prefix`): the compatibility promise."""

from __future__ import annotations

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import pytest

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD


@pytest.fixture
def sdk(server):
    previous = cloudinary.config()
    cloudinary.reset_config()
    cloudinary.config(
        cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=server, secure=False
    )
    yield cloudinary
    cloudinary.reset_config()
    _ = previous


def test_sdk_visual_search_by_text(sdk):
    result = cloudinary.api.visual_search(text="a pair of shoes")
    assert len(result["resources"]) == 30
    assert result["resources"][0]["score"] >= result["resources"][-1]["score"]
    assert result.rate_limit_allowed >= result.rate_limit_remaining


def test_sdk_visual_search_by_image_file_sends_multipart(sdk, tmp_path):
    path = tmp_path / "probe.jpg"
    path.write_bytes(images.jpeg(200 + 7, 160, seed=7))
    result = cloudinary.api.visual_search(image_file=str(path))
    assert result["resources"][0]["public_id"] == "shoes/item-07"


def test_sdk_visual_search_by_asset_id(sdk):
    first = cloudinary.api.visual_search(text="x")["resources"][0]
    result = cloudinary.api.visual_search(image_asset_id=first["asset_id"])
    assert first["asset_id"] not in [r["asset_id"] for r in result["resources"]]


def test_sdk_upload_then_find_it(sdk):
    data = images.png(300, 300, seed=99)
    uploaded = cloudinary.uploader.upload(data, public_id="uploaded/probe-99", tags=["new"])
    assert uploaded["public_id"] == "uploaded/probe-99"
    assert uploaded["format"] == "png"
    found = cloudinary.api.visual_search(image_file=data)
    assert found["resources"][0]["asset_id"] == uploaded["asset_id"]
    assert found["resources"][0]["tags"] == ["new"]


def test_sdk_upload_with_a_wrong_secret_is_refused(sdk):
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.uploader.upload(images.png(seed=5), api_secret="wrong")


def test_sdk_raises_its_own_exceptions_for_our_errors(sdk):
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.api.visual_search(text="x", api_secret="wrong")
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.api.visual_search(image_asset_id="f" * 32)
    with pytest.raises(cloudinary.exceptions.BadRequest):
        cloudinary.api.visual_search(text="x", image_asset_id="f" * 32)
