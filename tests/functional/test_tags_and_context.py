"""Tags and context on assets already stored, from Cloudinary's Python SDK as its users call it: the
Upload API's add_tag / remove_tag / replace_tag / remove_all_tags, add_context / remove_all_context and
explicit; the Admin API's update, resources_by_ids, resources_by_tag and resources_by_context. Every
change shows in the asset's resource, in listings and in search results, keeps the asset's id and
vector (nothing is embedded again), and outlives a re-index from the files alone."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import cloudinary
import cloudinary.api
import cloudinary.exceptions
import cloudinary.uploader
import numpy as np
import pytest

from tests.fixtures import images
from tests.functional.conftest import CLOUD, Api, make_settings, sdk_served_from
from visual_search.bootstrap import Services, build_ingest, build_services
from visual_search.ingest.backfill import backfill
from visual_search.settings import IngestSettings


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir) -> Iterator[Services]:
    built = build_services(make_settings(tmp_path_factory.mktemp("labels"), tiny_model_dir))
    yield built
    built.close()


@pytest.fixture(scope="module")
def served(services) -> Iterator[str]:
    yield from sdk_served_from(services)


def _upload(public_id: str, seed: int, **options) -> dict:
    return cloudinary.uploader.upload(images.jpeg(80, 60, seed=seed), public_id=public_id, **options)


def _tags(public_id: str) -> list[str]:
    return cloudinary.api.resource(public_id)["tags"]


def test_tag_calls_change_only_the_assets_named_and_answer_the_public_ids_changed(served):
    _upload("tagged/a", 1, tags="red")
    _upload("tagged/b", 2)
    _upload("tagged/c", 3, tags="red")
    added = cloudinary.uploader.add_tag("sale", ["tagged/a", "tagged/b", "tagged/missing"])
    assert added["public_ids"] == ["tagged/a", "tagged/b"]
    assert (_tags("tagged/a"), _tags("tagged/b"), _tags("tagged/c")) == (["red", "sale"], ["sale"], ["red"])
    cloudinary.uploader.remove_tag("red", ["tagged/a"])
    assert _tags("tagged/a") == ["sale"]
    cloudinary.uploader.replace_tag("new", ["tagged/b", "tagged/c"])
    assert (_tags("tagged/b"), _tags("tagged/c")) == (["new"], ["new"])
    cloudinary.uploader.remove_all_tags(["tagged/a", "tagged/b"])
    assert (_tags("tagged/a"), _tags("tagged/b"), _tags("tagged/c")) == ([], [], ["new"])
    by_tag = cloudinary.api.resources_by_tag("new")["resources"]
    assert [r["public_id"] for r in by_tag] == ["tagged/c"]


def test_a_tag_change_keeps_the_asset_id_and_the_vector_and_embeds_nothing(served, services, monkeypatch):
    uploaded = _upload("kept/vector", 4)
    before = services.index.get(uploaded["asset_id"])
    calls = []
    original = services.embedder.embed_pixels
    monkeypatch.setattr(services.embedder, "embed_pixels", lambda p: calls.append(len(p)) or original(p))
    cloudinary.uploader.add_tag("x", ["kept/vector"])
    cloudinary.uploader.add_context({"alt": "a shoe"}, ["kept/vector"])
    after = services.index.get(uploaded["asset_id"])
    assert calls == []
    assert after is not None
    assert before is not None
    assert np.array_equal(after.vector, before.vector)
    assert after.document.tags == ("x",)
    assert after.document.context == (("alt", "a shoe"),)
    assert after.document.created_at == before.document.created_at
    assert services.index.count() == len(list(services.store.list()))


def test_new_bytes_under_the_same_public_id_are_embedded_again(served, services, monkeypatch):
    _upload("kept/changed", 5)
    calls = []
    original = services.embedder.embed_pixels
    monkeypatch.setattr(services.embedder, "embed_pixels", lambda p: calls.append(len(p)) or original(p))
    _upload("kept/changed", 6)
    assert calls == [1]


def test_context_is_added_merged_and_removed_and_escapes_round_trip(served):
    uploaded = _upload("ctx/one", 7, context={"caption": "Tom | Jerry", "alt": "a=b"})
    assert uploaded["context"] == {"custom": {"caption": "Tom | Jerry", "alt": "a=b"}}
    cloudinary.uploader.add_context({"alt": "new", "lang": "日本語"}, ["ctx/one"])
    resource = cloudinary.api.resource("ctx/one")
    assert resource["context"] == {"custom": {"caption": "Tom | Jerry", "alt": "new", "lang": "日本語"}}
    assert resource["asset_id"] == uploaded["asset_id"]
    cloudinary.uploader.remove_all_context(["ctx/one"])
    assert "context" not in cloudinary.api.resource("ctx/one")


def test_resources_by_context_selects_by_key_and_by_value(served):
    _upload("ctxsel/a", 8, context={"team": "red"})
    _upload("ctxsel/b", 9, context={"team": "blue"})
    _upload("ctxsel/c", 10)
    by_key = cloudinary.api.resources_by_context("team", prefix="ctxsel/")["resources"]
    assert sorted(r["public_id"] for r in by_key) == ["ctxsel/a", "ctxsel/b"]
    by_value = cloudinary.api.resources_by_context("team", "blue")["resources"]
    assert [r["public_id"] for r in by_value] == ["ctxsel/b"]
    with pytest.raises(cloudinary.exceptions.BadRequest, match="key is required"):
        cloudinary.api.resources_by_context("")


def test_update_replaces_tags_and_context_and_keeps_what_it_is_not_given(served):
    uploaded = _upload("upd/shoe", 11, tags="a,b", context={"alt": "x"})
    updated = cloudinary.api.update("upd/shoe", tags=["c"])
    assert updated["tags"] == ["c"]
    assert updated["context"] == {"custom": {"alt": "x"}}
    assert updated["asset_id"] == uploaded["asset_id"]
    updated = cloudinary.api.update("upd/shoe", context={"caption": "new"})
    assert (updated["tags"], updated["context"]) == (["c"], {"custom": {"caption": "new"}})
    with pytest.raises(cloudinary.exceptions.NotFound):
        cloudinary.api.update("upd/missing", tags=["c"])
    with pytest.raises(cloudinary.exceptions.BadRequest, match="moderation_status"):
        cloudinary.api.update("upd/shoe", moderation_status="approved")


def test_an_update_takes_the_empty_fields_javas_sdk_always_sends_as_not_given(served):
    # Given an asset, and Java's Api.update: a form holding `moderation_status` and `notification_url`
    # without a value (null options), beside the tags and the escaped context
    _upload("upd/java", 19)
    body = "moderation_status&context=note%3Dx%5C%3Dy%7Ckind%3D%C3%A9t%C3%A9&notification_url&tags=sale"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    # When it is sent
    status, answer, _ = Api(served).request(
        "POST", f"/v1_1/{CLOUD}/resources/image/upload/upd/java", body=body, headers=headers
    )
    # Then the tags and the context are set, and nothing is refused
    assert status == 200, answer
    assert (answer["tags"], answer["context"]) == (["sale"], {"custom": {"note": "x=y", "kind": "été"}})


def test_explicit_sets_tags_and_context_and_refuses_what_it_cannot_do(served):
    uploaded = _upload("expl/shoe", 12, tags="old")
    done = cloudinary.uploader.explicit("expl/shoe", type="upload", tags=["n1", "n2"], context={"k": "v"})
    assert done["asset_id"] == uploaded["asset_id"]
    assert (done["tags"], done["context"]) == (["n1", "n2"], {"custom": {"k": "v"}})
    with pytest.raises(cloudinary.exceptions.Error, match="eager"):
        cloudinary.uploader.explicit("expl/shoe", type="upload", eager=[{"width": 10}])


def test_resources_by_ids_lists_the_named_assets_that_exist(served):
    _upload("ids/a", 13)
    _upload("ids/b", 14)
    found = cloudinary.api.resources_by_ids(["ids/b", "ids/none", "ids/a"])["resources"]
    assert [r["public_id"] for r in found] == ["ids/b", "ids/a"]


def test_search_results_carry_tags_and_context_and_filter_by_tag_and_by_context(served):
    _upload("found/a", 15, tags="keep", context={"shade": "kept"})
    _upload("found/b", 16)
    results = cloudinary.api.visual_search(text="a photo", max_results=50)["resources"]
    by_id = {r["public_id"]: r for r in results}
    assert by_id["found/a"]["tags"] == ["keep"]
    assert by_id["found/a"]["context"] == {"custom": {"shade": "kept"}}
    assert "context" not in by_id["found/b"]

    def search(**filters) -> list[str]:
        found = cloudinary.api.call_api("get", ["resources", "visual_search"], {"text": "x", **filters})
        return [r["public_id"] for r in found["resources"]]

    assert search(tags="keep") == ["found/a"]
    assert search(context="shade=kept") == ["found/a"]
    assert search(context="shade") == ["found/a"]
    assert search(context="shade=other") == []
    cloudinary.uploader.add_context({"shade": "other"}, ["found/b"])
    assert search(context="shade=other") == ["found/b"]
    assert sorted(search(context="shade")) == ["found/a", "found/b"]


def test_tags_and_context_outlive_a_reindex_from_the_files_alone(served, services, tmp_path, tiny_model_dir):
    uploaded = _upload("reindex/a", 17)
    cloudinary.uploader.add_tag("later", ["reindex/a"])
    cloudinary.uploader.add_context({"alt": "later"}, ["reindex/a"])
    shutil.copytree(services.settings.data_dir / "images", tmp_path / "images")
    worker = build_ingest(IngestSettings(model_dir=tiny_model_dir, data_dir=tmp_path))
    backfill(worker.pipeline, worker.store, prefix="reindex/")
    stored = worker.index.get(uploaded["asset_id"])
    worker.close()
    assert stored is not None
    assert (stored.document.tags, stored.document.context) == (("later",), (("alt", "later"),))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cloudinary.uploader.call_tags_api("x", "set_exclusive", ["a"]), "set_exclusive"),
        (lambda: cloudinary.uploader.add_tag("", ["a"]), "tag is required"),
        (lambda: cloudinary.uploader.add_tag("x", []), "public_ids is required"),
        (lambda: cloudinary.uploader.add_context({}, ["a"]), "context is required"),
        (lambda: cloudinary.uploader.add_context({"k": "v" * 256}, ["a"]), "longer than 255"),
        (lambda: cloudinary.uploader.add_context({"k": "\x00"}, ["a"]), "control characters"),
        (lambda: cloudinary.uploader.add_tag("x", [f"p{i}" for i in range(101)]), "at most 100"),
        (lambda: cloudinary.uploader.add_tag("x", ["_vs/models/x"]), "reserved"),
    ],
)
def test_bad_tag_and_context_calls_are_400_with_a_message(served, call, message):
    with pytest.raises(cloudinary.exceptions.Error, match=message):
        call()


def test_tag_calls_need_a_valid_signature(served):
    _upload("signed/a", 18)
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.uploader.add_tag("x", ["signed/a"], api_secret="wrong")
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired):
        cloudinary.api.update("signed/a", tags=["x"], api_secret="wrong")
    assert _tags("signed/a") == []


def test_a_tags_or_context_call_answers_with_ids_and_reads_no_document(served, services, monkeypatch):
    # Where events index, a document not indexed yet is made by decoding the file: 100 ids, 100 decodes.
    _upload("nodoc/a", 19)

    def read(_key):
        raise AssertionError("a tags or context call reads no document")

    monkeypatch.setattr(services.uploads, "document_of", read)
    assert cloudinary.uploader.add_tag("x", ["nodoc/a"])["public_ids"] == ["nodoc/a"]
    assert cloudinary.uploader.add_context({"k": "v"}, ["nodoc/a"])["public_ids"] == ["nodoc/a"]
    monkeypatch.undo()
    assert _tags("nodoc/a") == ["x"]
