"""An asset's asset_id is made once, at the first write of its public_id, and kept: across an overwrite in
another format, and by whoever reads the asset later (a listing, a search by image_asset_id,
resources_by_asset_ids, a re-index). A file stored without one (written around the API) keeps the id
derived from its key, so indices written before ids were stored stay valid."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import pytest

from tests.fixtures import images
from tests.functional.conftest import make_settings, sdk_served_from
from visual_search.bootstrap import Services, build_ingest, build_services
from visual_search.domain.identity import ASSET_ID, derived_asset_id
from visual_search.ingest.backfill import backfill
from visual_search.settings import IngestSettings


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir) -> Iterator[Services]:
    built = build_services(make_settings(tmp_path_factory.mktemp("identity"), tiny_model_dir))
    yield built
    built.close()


@pytest.fixture(scope="module")
def served(services) -> Iterator[str]:
    yield from sdk_served_from(services)


def test_an_asset_keeps_its_asset_id_when_overwritten_in_another_format(served, services):
    # Given shoes/red uploaded as a JPEG
    first = cloudinary.uploader.upload(images.jpeg(80, 60, seed=1), public_id="shoes/red")
    # When it is uploaded again as a PNG
    second = cloudinary.uploader.upload(images.png(64, 64, seed=2), public_id="shoes/red")
    # Then it is the same asset, said to be overwritten, found by its id everywhere
    assert ASSET_ID.fullmatch(first["asset_id"])
    assert second["asset_id"] == first["asset_id"]
    assert "overwritten" not in first
    assert second["overwritten"] is True
    assert cloudinary.api.resource("shoes/red")["asset_id"] == first["asset_id"]
    found = cloudinary.api.resources_by_asset_ids([first["asset_id"]])["resources"]
    assert [(r["public_id"], r["format"]) for r in found] == [("shoes/red", "png")]
    assert services.index.count() == 1
    cloudinary.uploader.upload(images.jpeg(80, 60, seed=3), public_id="shoes/blue")
    similar = cloudinary.api.visual_search(image_asset_id=first["asset_id"])["resources"]
    assert [r["public_id"] for r in similar] == ["shoes/blue"]


def test_a_new_asset_under_a_destroyed_public_id_gets_a_new_asset_id(served, services):
    first = cloudinary.uploader.upload(images.jpeg(80, 60, seed=4), public_id="again/photo")
    cloudinary.uploader.destroy("again/photo")
    second = cloudinary.uploader.upload(images.jpeg(80, 60, seed=4), public_id="again/photo")
    assert second["asset_id"] != first["asset_id"]
    assert "overwritten" not in second


def test_a_reindex_finds_the_asset_id_stored_with_the_file(served, services, tmp_path, tiny_model_dir):
    uploaded = cloudinary.uploader.upload(images.jpeg(80, 60, seed=5), public_id="kept/one", tags="x")
    # When the folder is indexed anew from its files alone (another machine, a new model)
    shutil.copytree(services.settings.data_dir / "images", tmp_path / "images")
    worker = build_ingest(IngestSettings(model_dir=tiny_model_dir, data_dir=tmp_path))
    backfill(worker.pipeline, worker.store, prefix="kept/")
    # Then the asset is back under its own id, with its tags
    stored = worker.index.get(uploaded["asset_id"])
    worker.close()
    assert stored is not None
    assert stored.document.key == "kept/one.jpg"
    assert stored.document.tags == ("x",)


def test_a_file_stored_without_an_asset_id_keeps_the_id_derived_from_its_key(served, services):
    # Given a file written around the API, then indexed
    services.store.put("legacy/photo.jpg", images.jpeg(80, 60, seed=6))
    services.writer.put("legacy/photo.jpg", images.jpeg(80, 60, seed=6))
    derived = derived_asset_id(services.store.name, "legacy/photo.jpg")
    assert cloudinary.api.resource("legacy/photo")["asset_id"] == derived
    # When the API overwrites it in another format
    answer = cloudinary.uploader.upload(images.png(64, 64, seed=7), public_id="legacy/photo")
    # Then it keeps that id
    assert (answer["asset_id"], answer["overwritten"]) == (derived, True)
    assert services.index.get(derived).document.format == "png"


def test_a_renamed_asset_keeps_its_asset_id_and_is_found_under_its_new_name(served, services):
    # Given ren/old, uploaded as a JPEG then as a PNG with a tag
    first = cloudinary.uploader.upload(images.jpeg(80, 60, seed=8), public_id="ren/old")
    cloudinary.uploader.upload(images.png(64, 64, seed=9), public_id="ren/old", tags="kept")
    # When it is renamed
    renamed = cloudinary.uploader.rename("ren/old", "ren/new", invalidate=True)
    # Then it is the same asset under its new name only, with its format and tags
    assert (renamed["asset_id"], renamed["public_id"], renamed["format"]) == (
        first["asset_id"],
        "ren/new",
        "png",
    )
    assert sorted(services.store.list("ren/")) == ["ren/new.png"]
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.api.resource("ren/old")
    found = cloudinary.api.resources_by_asset_ids([first["asset_id"]])["resources"]
    assert [(r["public_id"], r["tags"]) for r in found] == [("ren/new", ["kept"])]
    # And tagged under its new name, it is still that asset, found by its id and by image_asset_id
    assert cloudinary.uploader.add_tag("later", ["ren/new"])["public_ids"] == ["ren/new"]
    found = cloudinary.api.resources_by_asset_ids([first["asset_id"]])["resources"]
    assert [(r["public_id"], r["tags"]) for r in found] == [("ren/new", ["kept", "later"])]
    cloudinary.uploader.upload(images.jpeg(80, 60, seed=30), public_id="ren/other")
    similar = cloudinary.api.visual_search(image_asset_id=first["asset_id"])["resources"]
    assert "ren/other" in [r["public_id"] for r in similar]
    assert first["asset_id"] not in [r["asset_id"] for r in similar]


def test_a_rename_onto_an_existing_public_id_needs_overwrite_and_then_replaces_that_asset(served, services):
    moving = cloudinary.uploader.upload(images.jpeg(80, 60, seed=10), public_id="onto/a")
    taken = cloudinary.uploader.upload(images.png(64, 64, seed=11), public_id="onto/b")
    with pytest.raises(cloudinary.exceptions.BadRequest):
        cloudinary.uploader.rename("onto/a", "onto/b")
    assert cloudinary.api.resource("onto/b")["asset_id"] == taken["asset_id"]
    renamed = cloudinary.uploader.rename("onto/a", "onto/b", overwrite=True)
    assert renamed["asset_id"] == moving["asset_id"]
    assert sorted(services.store.list("onto/")) == ["onto/b.jpg"]
    assert cloudinary.api.resources_by_asset_ids([taken["asset_id"]])["resources"] == []


def test_renaming_a_public_id_that_has_no_asset_is_not_found(served):
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.uploader.rename("nothing/here", "nothing/there")


def test_a_rename_refused_under_its_new_name_leaves_the_file_where_it_was(served, services):
    # Given a file written around the API that no pipeline would index (not an image)
    services.store.put("notimg/a.jpg", b"not an image")
    # When it is renamed
    with pytest.raises(cloudinary.exceptions.BadRequest):
        cloudinary.uploader.rename("notimg/a", "notimg/b")
    # Then it is where it was, and nothing is under the new name
    assert sorted(services.store.list("notimg/")) == ["notimg/a.jpg"]
