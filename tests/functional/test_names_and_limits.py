"""Names, prefixes and limits from outside: Cloudinary's SDK and plain HTTP against the local server.

The reserved `_vs/` prefix is refused on every write, delete and search path; staging files never share
the public_id namespace; NFC/NFD spellings are one asset; public_id and tag limits hold at and just past
each bound with a 400 in Cloudinary's shape (never a 500); authentication comes before the cloud name;
repeated, null and differently spaced parameters mean the same on every transport.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import replace

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures import images
from tests.fixtures.ingest_world import IngestWorld
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD
from visual_search.cli_commands import add_files
from visual_search.domain.identity import derived_asset_id
from visual_search.errors import BadInput
from visual_search.index.port import IndexedAsset
from visual_search.ingest.pipeline import IngestItem
from visual_search.ingest.renditions import rendition_key
from visual_search.storage.local import LocalImageStore
from visual_search.storage.port import InvalidKey

SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
SEEDED = "shoes/item-01.jpg"  # one of the images the module's services are seeded with
PNG = images.png(64, 64, seed=1)


@pytest.fixture
def sdk(server):
    cloudinary.reset_config()
    cloudinary.config(
        cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=server, secure=False
    )
    yield cloudinary
    cloudinary.reset_config()


def upload(public_id: str, seed: int = 0, **options):
    return cloudinary.uploader.upload(images.png(96, 96, seed=seed), public_id=public_id, **options)


def assert_refused(call, *args, match: str | None = None, **kwargs) -> None:
    with pytest.raises(cloudinary.exceptions.BadRequest, match=match):
        call(*args, **kwargs)


# -- the reserved prefix


@pytest.mark.parametrize(
    "options",
    [
        {"public_id": rendition_key(SEEDED).removesuffix(".png")},
        {"public_id": "_vs/renditions/w320/shoes/item-01.jpg"},
        {"public_id": "x", "folder": "_vs/models"},
        {"public_id": "x", "asset_folder": "_vs"},
        {"public_id": "/_VS/x"},
    ],
)
def test_an_upload_under_the_reserved_prefix_is_a_400_and_replaces_nothing(sdk, services, options):
    rendition = services.store.get(rendition_key(SEEDED)).data
    count = services.index.count()
    assert_refused(cloudinary.uploader.upload, images.png(96, 96, seed=3), match="_vs/ prefix", **options)
    assert services.store.get(rendition_key(SEEDED)).data == rendition
    assert services.index.count() == count
    assert not [
        k
        for k in services.store.list("_vs/")
        if not k.startswith(("_vs/renditions/", "_vs/staging/", "_vs/meta/"))
    ]


def test_a_delete_under_the_reserved_prefix_is_a_400_and_deletes_nothing(sdk, services, api):
    rendition = rendition_key(SEEDED)
    kept = upload("kept/one", seed=2)
    assert_refused(cloudinary.api.delete_resources, [rendition.removesuffix(".jpg")], match="reserved")
    assert_refused(cloudinary.api.delete_resources, ["kept/one", "_vs/renditions/w320/shoes/item-01"])
    status, body, _ = api.request("DELETE", f"/v1_1/{CLOUD}/resources/image/upload?public_ids[]=_vs/x")
    assert (status, list(body)) == (400, ["error"])
    assert services.store.head(rendition) is not None
    assert services.index.get(kept["asset_id"]) is not None


def test_a_delete_of_100_public_ids_is_accepted_and_101_refused(sdk):
    assert len(cloudinary.api.delete_resources([f"absent/{i}" for i in range(100)])["deleted"]) == 100
    assert_refused(cloudinary.api.delete_resources, [f"absent/{i}" for i in range(101)], match="100")


@pytest.mark.parametrize("folder", ["_vs", "_vs/renditions", "/_vs/renditions/w320/"])
def test_a_search_filtered_to_the_reserved_folder_is_a_400(api, folder):
    status, body, _ = api.search(text="shoe", asset_folder=folder)
    assert (status, list(body)) == (400, ["error"])
    assert "reserved" in body["error"]["message"]


def test_an_asset_indexed_under_the_reserved_prefix_is_never_found_by_its_id(api, services):
    # Given an index written before the prefix was guarded (no ingest path writes one now)
    seeded = services.index.get(derived_asset_id(services.store.name, SEEDED))
    key = "_vs/renditions/w320/legacy.jpg"
    legacy_id = derived_asset_id(services.store.name, key)
    legacy = IndexedAsset(legacy_id, seeded.vector, replace(seeded.document, asset_id=legacy_id, key=key))
    services.index.upsert([legacy])
    try:
        status, body, _ = api.search(image_asset_id=legacy.asset_id)
        assert (status, list(body)) == (404, ["error"])
        for path in (f"/resources/{legacy.asset_id}", f"/resources/{legacy.asset_id}/duplicates"):
            status, body, _ = api.request("GET", f"/v1_1/{CLOUD}{path}")
            assert (status, list(body)) == (404, ["error"])
    finally:
        services.index.delete([legacy.asset_id])


def test_no_ingest_path_indexes_a_reserved_key(services):
    (result,) = services.ingestor.ingest([IngestItem("_vs/models/x.jpg", images.jpeg(seed=5))])
    assert (result.status, result.reason) == ("refused", "reserved_name")
    assert services.index.get(result.asset_id) is None


def test_visual_search_add_never_stores_a_file_under_the_reserved_prefix(services, tmp_path, capsys):
    rendition = services.store.get(rendition_key(SEEDED)).data
    (tmp_path / "_vs/renditions/w320/shoes").mkdir(parents=True)
    (tmp_path / "_vs/renditions/w320/shoes/item-01.jpg.jpg").write_bytes(images.jpeg(seed=4))
    (tmp_path / "fine.jpg").write_bytes(images.jpeg(seed=4))
    totals = add_files(services, [tmp_path], progress=False)
    assert totals == {"indexed": 1}
    assert services.store.get(rendition_key(SEEDED)).data == rendition
    assert "_vs/ holds Visual Search's own files" in capsys.readouterr().err


def test_s3_ingest_never_indexes_a_reserved_key(aws_env, tmp_path, tiny_model_dir):
    world = IngestWorld(tiny_model_dir, tmp_path)
    worker = world.worker()
    try:
        world.put("_vs/renditions/w320/a.jpg", images.jpeg(seed=6))
        world.put("photos/b.jpg", images.jpeg(seed=7))
        world.drain(worker)
        assert worker.index.get(derived_asset_id(worker.store.name, "_vs/renditions/w320/a.jpg")) is None
        assert worker.index.get(derived_asset_id(worker.store.name, "photos/b.jpg")) is not None
    finally:
        worker.close()


# -- staging files and the public_id namespace


def test_a_public_id_like_a_staging_file_is_uploaded_listed_and_deleted(sdk, services):
    uploaded = upload(".upload-probe", seed=8)
    assert uploaded["public_id"] == ".upload-probe"
    assert ".upload-probe.png" in list(services.store.list())
    assert cloudinary.api.delete_resources([".upload-probe"])["deleted"] == {".upload-probe": "deleted"}
    assert services.store.head(".upload-probe.png") is None
    assert services.index.get(uploaded["asset_id"]) is None


def test_the_local_store_stages_writes_under_the_reserved_prefix_only(tmp_path):
    store = LocalImageStore(tmp_path, None, b"k" * 32)
    store.put("a/b.jpg", b"data")
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == {"a/b.jpg"}
    assert {p.name for p in tmp_path.iterdir()} == {"a", "_vs"}
    assert list(store.list()) == ["a/b.jpg"]


def test_the_local_store_refuses_a_segment_over_255_bytes_instead_of_failing(tmp_path):
    store = LocalImageStore(tmp_path, None, b"k" * 32)
    store.put("a" * 251 + ".jpg", b"data")
    with pytest.raises(InvalidKey, match="255 bytes"):
        store.put("a" * 252 + ".jpg", b"data")
    with pytest.raises(InvalidKey, match="255 bytes"):
        store.get("é" * 128 + "/x.jpg")


# -- normalisation


def test_the_same_name_in_nfc_and_nfd_is_one_asset(sdk, services):
    first = upload(unicodedata.normalize("NFC", "names/café crème"), seed=9)
    second = upload(unicodedata.normalize("NFD", "names/café crème"), seed=10)
    assert second["asset_id"] == first["asset_id"]
    assert second["public_id"] == unicodedata.normalize("NFC", "names/café crème")
    assert list(services.store.list("names/")) == [unicodedata.normalize("NFC", "names/café crème.png")]
    deleted = cloudinary.api.delete_resources([unicodedata.normalize("NFD", "names/café crème")])
    assert list(deleted["deleted"].values()) == ["deleted"]


def test_a_public_id_ending_in_a_slash_is_trimmed_not_a_hidden_file(sdk, services):
    uploaded = upload("trailing/", seed=11)
    assert uploaded["public_id"] == "trailing"
    assert services.store.head("trailing.png") is not None
    assert services.store.head("trailing/.png") is None


@pytest.mark.parametrize(
    "public_id", ["/", " / ", "a//b", "a/../b", "a?b", "a#b", "a%b", "a+b", "a,b", "v12/x", "a\x01b"]
)
def test_a_name_outside_cloudinarys_rules_is_a_400(sdk, public_id):
    assert_refused(upload, public_id)


SEGMENTS = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="aé€😀", min_size=60, max_size=270),  # around the byte and character limits
    st.sampled_from(["", ".", "..", " ", "_vs", "_VS", ".upload-x", "v12", "dir/"]),
)
NAMES = st.lists(SEGMENTS, max_size=4).map("/".join)


@settings(max_examples=80, deadline=None)
@given(public_id=NAMES, folder=NAMES)
def test_any_name_is_refused_clearly_or_stored_listed_and_deletable(services, public_id, folder):
    try:
        document = services.uploads.upload(PNG, {"public_id": public_id, "folder": folder}).document
    except BadInput:
        return
    assert document.key in set(services.store.list(document.folder))
    assert services.uploads.delete(document.public_id) == "deleted"
    assert services.index.get(document.asset_id) is None


# -- limits, at and just past


def test_a_public_id_of_255_characters_is_accepted_and_256_refused(sdk):
    at_limit = "f" * 200 + "/" + "b" * 54
    assert upload(at_limit, seed=12)["public_id"] == at_limit
    assert_refused(upload, at_limit + "b", match="255")


def test_a_path_segment_past_255_bytes_is_a_400_not_a_500(sdk):
    at_limit = "é" * 127 + "a"  # 255 UTF-8 bytes
    assert upload(at_limit + "/x", seed=13)["folder"] == at_limit
    assert_refused(upload, "é" * 128 + "/x", match="255 bytes")
    assert_refused(upload, "a" * 300, match="255")  # the original ENAMETOOLONG reproduction
    long_name = "é" * 128 + "/x"  # a bucket may hold it; here a delete finds nothing, and says so
    assert cloudinary.api.delete_resources([long_name])["deleted"] == {long_name: "not_found"}
    room = 255 - len(".png") - len(".jpg")  # the rendition appends .jpg to the key
    assert upload("seg/" + "a" * room, seed=14)["public_id"] == "seg/" + "a" * room
    assert_refused(upload, "seg/" + "a" * (room + 1), match=f"at most {room} bytes")


def test_1000_tags_are_accepted_and_1001_refused(sdk):
    tags = [f"t{i}" for i in range(1000)]
    assert len(upload("tagged/many", seed=15, tags=tags)["tags"]) == 1000
    assert_refused(upload, "tagged/too-many", seed=16, tags=[*tags, "one-more"], match="1000")


def test_a_tag_of_255_characters_is_accepted_and_256_refused(sdk):
    assert upload("tagged/long", seed=17, tags=["é" * 255])["tags"] == ["é" * 255]
    assert_refused(upload, "tagged/too-long", seed=18, tags=["é" * 256], match="255")


def test_a_search_filter_past_the_tag_limits_is_a_400(api):
    status, body, _ = api.search("POST", text="shoe", tags=",".join(f"t{i}" for i in range(1001)))
    assert (status, list(body)) == (400, ["error"])
    status, _, _ = api.search(text="shoe", tags="x" * 256)
    assert status == 400
    status, _, _ = api.search(text="shoe", tags="x" * 255)
    assert status == 200


# -- authentication before the cloud name


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/resources/visual_search?text=x"),
        ("POST", "/resources/visual_search"),
        ("GET", "/resources/" + "0" * 32),
        ("GET", "/resources/" + "0" * 32 + "/duplicates"),
        ("GET", "/duplicates"),
        ("DELETE", "/resources/image/upload?public_ids[]=x"),
        ("POST", "/image/upload"),
    ],
)
def test_a_stranger_gets_401_whether_or_not_the_cloud_name_is_right(api, method, path):
    right, _, _ = api.request(method, f"/v1_1/{CLOUD}{path}", auth=False)
    wrong, body, _ = api.request(method, f"/v1_1/not-{CLOUD}{path}", auth=False)
    assert right == wrong == 401
    assert "not-" not in json.dumps(body)


def test_a_signed_upload_to_a_wrong_cloud_name_is_still_a_404(sdk, server):
    cloudinary.config(cloud_name="not-" + CLOUD)
    with pytest.raises(cloudinary.exceptions.NotFound):
        upload("anywhere", seed=19)


# -- one meaning per parameter, on every transport


def ranked(body: dict) -> list[tuple[str, float]]:
    """What a search answered, as (asset_id, score) in order: its signed URLs carry an expiry taken from
    the clock, so two identical searches either side of a second differ there (a flake)."""
    return [(r["asset_id"], r["score"]) for r in body["resources"]]


def test_a_repeated_parameter_takes_the_last_value_on_get_as_on_post(api):
    expected = ranked(api.search(text="red shoe", max_results=3)[1])
    status, body, _ = api.request("GET", SEARCH + "?text=blue+sky&text=red+shoe&max_results=9&max_results=3")
    assert status == 200
    assert ranked(body) == expected
    status, body, _ = api.request(
        "POST",
        SEARCH,
        body="text=blue+sky&text=red+shoe&max_results=9&max_results=3",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (status, ranked(body)) == (200, expected)


def test_a_json_null_is_an_absent_parameter_not_the_text_null(api):
    some_id = api.search(text="shoe", max_results=1)[1]["resources"][0]["asset_id"]
    by_id = ranked(api.search(image_asset_id=some_id, max_results=4)[1])

    def post_json(payload):
        return api.request(
            "POST", SEARCH, body=json.dumps(payload), headers={"Content-Type": "application/json"}
        )

    status, body, _ = post_json({"text": None, "image_asset_id": some_id, "max_results": 4})
    assert (status, ranked(body)) == (200, by_id)
    status, body, _ = post_json({"text": None})
    assert status == 400
    assert "exactly one" in body["error"]["message"]


@pytest.mark.parametrize("respelled", ["red shoe ", "  red   shoe", "red\tshoe\n"])
def test_a_cursor_serves_every_spelling_of_the_same_text(api, respelled):
    first = api.search(text="red shoe", max_results=5)[1]
    expected = ranked(api.search(text="red shoe", max_results=5, next_cursor=first["next_cursor"])[1])
    status, body, _ = api.search(text=respelled, max_results=5, next_cursor=first["next_cursor"])
    assert (status, ranked(body)) == (200, expected)


def test_a_cursor_serves_the_nfd_spelling_of_its_nfc_text(api):
    first = api.search(text=unicodedata.normalize("NFC", "café"), max_results=5)[1]
    status, _, _ = api.search(
        text=unicodedata.normalize("NFD", "café"), max_results=5, next_cursor=first["next_cursor"]
    )
    assert status == 200


def test_a_cursor_is_still_refused_for_a_different_text(api):
    first = api.search(text="red shoe", max_results=5)[1]
    status, body, _ = api.search(text="red shoes", max_results=5, next_cursor=first["next_cursor"])
    assert status == 400
    assert "different query" in body["error"]["message"]
