"""One public_id reaches one asset: its own stored file and no other's. A public_id that ends in what looks
like an extension (`vb/photo.jpg`) is a name of its own, never the file of `vb/photo` stored as JPEG; a
name that is both a file and a folder is refused with a 400 or both live; and writes to one public_id
are serialised, so concurrent uploads leave one asset and `overwrite=false` creates it once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import pytest

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings, sdk_served_from
from visual_search.bootstrap import Services, build_services
from visual_search.cli import main as cli_main


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir) -> Iterator[Services]:
    built = build_services(make_settings(tmp_path_factory.mktemp("names"), tiny_model_dir))
    yield built
    built.close()


@pytest.fixture(scope="module")
def served(services) -> Iterator[str]:
    yield from sdk_served_from(services)


def alive(public_id: str) -> dict | None:
    try:
        return cloudinary.api.resource(public_id)
    except cloudinary.exceptions.NotFound:
        return None


def stored(services: Services, prefix: str) -> list[str]:
    return list(services.store.list(prefix))


def test_destroying_a_name_with_an_extension_leaves_the_asset_stored_under_that_file(served, services):
    # Given vb/photo, stored as vb/photo.jpg
    kept = cloudinary.uploader.upload(images.jpeg(80, 60, seed=1), public_id="vb/photo")
    assert stored(services, "vb/") == ["vb/photo.jpg"]
    # When vb/photo.jpg, which no asset has, is destroyed
    answer = cloudinary.uploader.destroy("vb/photo.jpg")
    # Then nothing was found, and vb/photo is still there
    assert answer["result"] == "not found"
    assert alive("vb/photo")["asset_id"] == kept["asset_id"]
    assert stored(services, "vb/") == ["vb/photo.jpg"]


def test_delete_resources_and_get_resource_never_resolve_a_name_to_another_assets_file(served, services):
    cloudinary.uploader.upload(images.jpeg(80, 60, seed=2), public_id="dr/photo")
    assert alive("dr/photo.jpg") is None
    answer = cloudinary.api.delete_resources(["dr/photo.jpg"])
    assert answer["deleted"] == {"dr/photo.jpg": "not_found"}
    assert alive("dr/photo") is not None


def test_uploading_a_name_with_an_extension_in_another_format_leaves_the_shorter_name(served, services):
    # Given victim/photo as JPEG (stored as victim/photo.jpg)
    victim = cloudinary.uploader.upload(images.jpeg(80, 60, seed=3), public_id="victim/photo")
    # When victim/photo.jpg is uploaded as a PNG
    other = cloudinary.uploader.upload(images.png(64, 64, seed=4), public_id="victim/photo.jpg")
    # Then both assets live, each with its own file
    assert alive("victim/photo")["asset_id"] == victim["asset_id"]
    assert alive("victim/photo.jpg")["asset_id"] == other["asset_id"]
    assert sorted(stored(services, "victim/")) == ["victim/photo.jpg", "victim/photo.jpg.png"]


def test_add_through_a_server_keeps_both_files_whose_names_share_a_stem(
    served, services, tmp_path, monkeypatch
):
    # Given a folder holding photo.png and photo.png.jpg
    folder = tmp_path / "stem"
    folder.mkdir()
    (folder / "photo.png").write_bytes(images.png(64, 64, seed=5))
    (folder / "photo.png.jpg").write_bytes(images.jpeg(80, 60, seed=6))
    for name, value in {"VS_CLOUD_NAME": CLOUD, "VS_API_KEY": API_KEY, "VS_API_SECRET": API_SECRET}.items():
        monkeypatch.setenv(name, value)
    # When it is added through the server, once and again
    for _ in range(2):
        assert cli_main(["add", str(folder), "--prefix", "stem", "--server", served, "--quiet"]) == 0
        # Then after each run both files are stored, each its own asset
        assert sorted(stored(services, "stem/")) == ["stem/photo.png", "stem/photo.png.jpg"]
        assert alive("stem/photo")["format"] == "png"
        assert alive("stem/photo.png")["format"] == "jpg"


@pytest.mark.parametrize(
    ("first", "second"),
    [("col1/x.png/y", "col1/x"), ("col2/x", "col2/x.png/y")],
    ids=["folder-first", "file-first"],
)
def test_a_name_that_is_both_a_file_and_a_folder_is_refused_or_both_live(served, services, first, second):
    cloudinary.uploader.upload(images.png(64, 64, seed=7), public_id=first)
    try:
        cloudinary.uploader.upload(images.png(64, 64, seed=8), public_id=second)
    except cloudinary.exceptions.BadRequest:
        assert alive(second) is None
    else:
        assert alive(second) is not None
    assert alive(first) is not None


def _at_once(*calls) -> list:
    """Run the calls on threads released together; their results (or exceptions), in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        try:
            results[n] = calls[n]()
        except Exception as exc:  # reported, asserted by the caller
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("run", range(4))
def test_concurrent_uploads_of_one_public_id_in_two_formats_leave_one_asset(served, services, run):
    public_id = f"race/{run}"
    results = _at_once(
        lambda: cloudinary.uploader.upload(images.png(64, 64, seed=9), public_id=public_id),
        lambda: cloudinary.uploader.upload(images.jpeg(80, 60, seed=10), public_id=public_id),
    )
    assert all(isinstance(r, dict) for r in results), results
    files = stored(services, f"race/{run}.")
    assert len(files) == 1, files
    now = alive(public_id)
    assert files == [f"race/{run}.{now['format']}"]
    # One asset in the index too: a search in its folder finds exactly one hit for that public_id.
    hits = cloudinary.api.visual_search(text="x", asset_folder="race")["resources"]
    assert [h["public_id"] for h in hits].count(public_id) == 1


@pytest.mark.parametrize("run", range(4))
def test_concurrent_uploads_with_overwrite_false_tell_exactly_one_client_created(served, services, run):
    public_id = f"once/{run}"
    results = _at_once(
        lambda: cloudinary.uploader.upload(images.png(64, 64, seed=11), public_id=public_id, overwrite=False),
        lambda: cloudinary.uploader.upload(
            images.jpeg(80, 60, seed=12), public_id=public_id, overwrite=False
        ),
    )
    assert all(isinstance(r, dict) for r in results), results
    created = [r for r in results if not r.get("existing")]
    assert len(created) == 1, results
    files = stored(services, f"once/{run}.")
    assert files == [f"once/{run}.{created[0]['format']}"]
    assert alive(public_id)["etag"] == created[0]["etag"]
