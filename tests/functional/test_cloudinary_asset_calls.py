"""The asset calls people make around visual_search, through Cloudinary's own Python SDK pointed at the
local server: upload (image, auto, raw/video refused, naming parameters, re-upload in another format),
upload_large in parts, destroy, and the Admin API's ping, listings, lookups and deletes — with their
errors (401, 404, 400) and a paging walk."""

from __future__ import annotations

from collections.abc import Iterator

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import pytest

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings
from visual_search.api import asset_routes
from visual_search.assets import listing
from visual_search.bootstrap import Services, build_services
from visual_search.server import LocalServer


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, tiny_model_dir) -> Iterator[Services]:
    built = build_services(make_settings(tmp_path_factory.mktemp("assets"), tiny_model_dir))
    yield built
    built.close()


@pytest.fixture(scope="module")
def sdk(fresh) -> Iterator[None]:
    server = LocalServer(fresh, "127.0.0.1", 0).start()
    cloudinary.reset_config()
    cloudinary.config(
        cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=server.url, secure=False
    )
    yield
    cloudinary.reset_config()
    server.stop()


def public_ids(result) -> list[str]:
    return [r["public_id"] for r in result["resources"]]


def test_auto_upload_stores_and_indexes_an_image(sdk, fresh):
    uploaded = cloudinary.uploader.upload(images.jpeg(seed=1), resource_type="auto", public_id="auto/one")
    assert (uploaded["public_id"], uploaded["resource_type"], uploaded["format"]) == (
        "auto/one",
        "image",
        "jpg",
    )
    assert fresh.index.get(uploaded["asset_id"]) is not None


def test_auto_upload_of_a_non_image_is_a_clear_400(sdk):
    with pytest.raises(cloudinary.exceptions.BadRequest, match="not an image"):
        cloudinary.uploader.upload(b"%PDF-1.4 not an image", resource_type="auto", public_id="doc")


@pytest.mark.parametrize("resource_type", ["raw", "video"])
def test_raw_and_video_uploads_are_refused_saying_only_images_are_indexed(sdk, resource_type):
    with pytest.raises(cloudinary.exceptions.BadRequest, match="images only"):
        cloudinary.uploader.upload(images.jpeg(seed=2), resource_type=resource_type)


def test_use_filename_keeps_the_file_name_and_unique_filename_adds_a_suffix(sdk, tmp_path):
    path = tmp_path / "red shoe.jpg"
    path.write_bytes(images.jpeg(seed=3))
    exact = cloudinary.uploader.upload(str(path), use_filename=True, unique_filename=False, folder="named")
    assert exact["public_id"] == "named/red shoe"
    unique = cloudinary.uploader.upload(str(path), use_filename=True, folder="named")
    assert unique["public_id"].startswith("named/red shoe_")
    assert len(unique["public_id"]) == len("named/red shoe_") + 6


def test_a_reupload_in_another_format_replaces_the_asset(sdk, fresh):
    first = cloudinary.uploader.upload(images.jpeg(seed=4), public_id="swap/me", tags=["old"])
    second = cloudinary.uploader.upload(images.png(seed=5), public_id="swap/me", tags=["new"])
    assert second["format"] == "png"
    assert public_ids(cloudinary.api.resources(prefix="swap/")) == ["swap/me"]
    assert second["asset_id"] == first["asset_id"]  # the same asset, replaced
    assert fresh.index.get(first["asset_id"]).document.format == "png"
    assert cloudinary.api.resource("swap/me")["tags"] == ["new"]


def test_overwrite_false_keeps_the_existing_asset(sdk):
    first = cloudinary.uploader.upload(images.jpeg(seed=6), public_id="keep/me")
    again = cloudinary.uploader.upload(images.jpeg(seed=7), public_id="keep/me", overwrite=False)
    assert again["existing"] is True
    assert cloudinary.api.resource("keep/me")["bytes"] == first["bytes"]


def test_upload_large_in_parts_is_assembled_once_the_last_arrives(sdk, fresh, tmp_path):
    data = images.jpeg(640, 480, seed=8)
    path = tmp_path / "large.jpg"
    path.write_bytes(data)
    result = cloudinary.uploader.upload_large(
        str(path), resource_type="image", public_id="large/one", chunk_size=len(data) // 3 + 1
    )
    assert result["public_id"] == "large/one"
    assert result["bytes"] == len(data)
    assert fresh.index.get(result["asset_id"]) is not None
    assert list(fresh.store.list("_vs/uploads/")) == []  # parts are gone once assembled


def test_upload_large_with_the_sdk_default_resource_type_is_refused_clearly(sdk, tmp_path):
    path = tmp_path / "raw.jpg"
    path.write_bytes(images.jpeg(seed=9))
    with pytest.raises(cloudinary.exceptions.BadRequest, match="images only"):
        cloudinary.uploader.upload_large(str(path))


def test_destroy_removes_the_asset_its_index_entry_and_rendition(sdk, fresh):
    uploaded = cloudinary.uploader.upload(images.jpeg(seed=10), public_id="gone/soon")
    assert cloudinary.uploader.destroy("gone/soon")["result"] == "ok"
    assert fresh.index.get(uploaded["asset_id"]) is None
    assert [k for k in fresh.store.list() if k.startswith("gone/")] == []
    assert [k for k in fresh.store.list("_vs/") if "gone/" in k] == []
    assert cloudinary.uploader.destroy("gone/soon")["result"] == "not found"


def test_ping(sdk):
    assert cloudinary.api.ping()["status"] == "ok"


def test_a_paging_walk_lists_every_asset_once_in_public_id_order(sdk):
    for i in range(7):
        cloudinary.uploader.upload(images.jpeg(seed=20 + i), public_id=f"walk/{i:02d}", tags=["walk"])
    seen, cursor, pages = [], None, 0
    while True:
        page = cloudinary.api.resources(type="upload", prefix="walk/", max_results=3, next_cursor=cursor)
        seen += public_ids(page)
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert seen == [f"walk/{i:02d}" for i in range(7)]
    assert pages == 3


def test_a_cursor_from_another_listing_is_a_400(sdk):
    cursor = cloudinary.api.resources(prefix="walk/", max_results=1)["next_cursor"]
    with pytest.raises(cloudinary.exceptions.BadRequest, match="different query"):
        cloudinary.api.resources(prefix="swap/", next_cursor=cursor)
    with pytest.raises(cloudinary.exceptions.BadRequest):
        cloudinary.api.resources(prefix="walk/", next_cursor=cursor[:-4] + "AAAA")


def test_resources_by_tag_and_by_asset_ids(sdk):
    tagged = cloudinary.api.resources_by_tag("walk", max_results=100)
    assert public_ids(tagged) == [f"walk/{i:02d}" for i in range(7)]
    ids = [r["asset_id"] for r in tagged["resources"][:2]]
    found = cloudinary.api.resources_by_asset_ids([*ids, "0" * 32])
    assert sorted(r["asset_id"] for r in found["resources"]) == sorted(ids)


def test_resource_by_public_id_and_its_404(sdk):
    assert cloudinary.api.resource("walk/03")["public_id"] == "walk/03"
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.api.resource("walk/none")


def test_delete_resources_by_ids_by_prefix_and_by_tag(sdk):
    for name in ("a", "b", "c"):
        cloudinary.uploader.upload(images.jpeg(seed=40 + ord(name)), public_id=f"bulk/{name}", tags=["bulk"])
    cloudinary.uploader.upload(images.jpeg(seed=50), public_id="bulk2/x", tags=["other"])
    deleted = cloudinary.api.delete_resources(["bulk/a", "bulk/none"])
    assert deleted["deleted"] == {"bulk/a": "deleted", "bulk/none": "not_found"}
    assert cloudinary.api.delete_resources_by_tag("bulk")["deleted"] == {
        "bulk/b": "deleted",
        "bulk/c": "deleted",
    }
    assert cloudinary.api.delete_resources_by_prefix("bulk2/")["deleted"] == {"bulk2/x": "deleted"}
    assert public_ids(cloudinary.api.resources(prefix="bulk")) == []


def test_admin_calls_with_a_wrong_secret_are_401(sdk):
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.api.resources(api_secret="wrong")
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.uploader.destroy("walk/01", api_secret="wrong")


def test_a_wrong_cloud_name_is_404_once_authenticated(sdk):
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.api.ping(cloud_name="elsewhere")


def test_resource_by_asset_id_and_visual_search_keep_working(sdk):
    uploaded = cloudinary.uploader.upload(images.jpeg(seed=60), public_id="still/works")
    assert cloudinary.api.resource_by_asset_id(uploaded["asset_id"])["public_id"] == "still/works"
    hits = cloudinary.api.visual_search(image_asset_id=uploaded["asset_id"])
    assert uploaded["asset_id"] not in [r["asset_id"] for r in hits["resources"]]


def test_a_tag_path_with_a_comma_or_nothing_is_a_400(sdk):
    with pytest.raises(cloudinary.exceptions.BadRequest, match="exactly one tag"):
        cloudinary.api.resources_by_tag("a,b")
    with pytest.raises(cloudinary.exceptions.BadRequest, match="exactly one tag"):
        cloudinary.api.delete_resources_by_tag(" ")


def test_bulk_deletes_are_bounded_per_call_and_say_partial_until_done(sdk, monkeypatch):
    monkeypatch.setattr(asset_routes, "MAX_DELETE_MATCHES", 2)
    for i in range(3):
        cloudinary.uploader.upload(images.jpeg(seed=70 + i), public_id=f"many/{i}")
    first = cloudinary.api.delete_resources_by_prefix("many/")
    assert (len(first["deleted"]), first["partial"]) == (2, True)
    second = cloudinary.api.delete_resources_by_prefix("many/")
    assert (second["deleted"], second["partial"]) == ({"many/2": "deleted"}, False)


def test_a_tag_filter_reads_a_bounded_number_of_keys_and_hands_back_a_cursor(sdk, monkeypatch):
    monkeypatch.setattr(listing, "SCAN_LIMIT", 2)
    for i in range(5):
        tags = ["rare"] if i in (0, 4) else []
        cloudinary.uploader.upload(images.jpeg(seed=80 + i), public_id=f"scan/{i}", tags=tags)
    found, cursor, calls = [], None, 0
    while True:
        page = cloudinary.api.resources_by_tag("rare", max_results=10, next_cursor=cursor)
        found += public_ids(page)
        calls += 1
        if not (cursor := page.get("next_cursor")):
            break
    assert [p for p in found if p.startswith("scan/")] == ["scan/0", "scan/4"]
    assert calls > 1
