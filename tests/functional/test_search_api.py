"""The Cloudinary-compatible search API over HTTP: shapes, parameters, paging, errors."""

from __future__ import annotations

import base64
import json

import pytest

from tests.fixtures import images
from tests.functional.conftest import CLOUD
from visual_search.api import search_params
from visual_search.api.search_params import SearchParams
from visual_search.domain.identity import derived_asset_id

RESOURCE_FIELDS = {
    "asset_id",
    "public_id",
    "format",
    "resource_type",
    "type",
    "created_at",
    "bytes",
    "width",
    "height",
    "folder",
    "asset_folder",
    "tags",
    "url",
    "secure_url",
    "score",
}


def test_text_search_answers_cloudinary_resources_most_similar_first(api):
    status, body, headers = api.search(text="red shirt")
    assert status == 200
    hits = body["resources"]
    assert len(hits) == 30
    assert set(hits[0]) >= RESOURCE_FIELDS
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert isinstance(body["time"], int)
    assert headers["X-Request-Id"]
    assert int(headers["X-FeatureRateLimit-Limit"]) >= int(headers["X-FeatureRateLimit-Remaining"])
    assert headers["X-FeatureRateLimit-Reset"].endswith("GMT")


def test_result_urls_open_the_image_and_are_signed(api):
    _, body, _ = api.search(text="shoe", max_results="1")
    url = body["resources"][0]["secure_url"]
    opened = api.http.request("GET", url)
    assert opened.status == 200
    assert opened.headers["Content-Type"] == "image/jpeg"
    assert len(opened.data) == body["resources"][0]["bytes"]
    forged = api.http.request("GET", url.replace("signature=", "signature=0"))
    assert forged.status == 403


def test_get_post_form_multipart_and_json_give_the_same_results(api):
    path = f"/v1_1/{CLOUD}/resources/visual_search"
    _, by_get, _ = api.search(text="blue sky")
    _, by_multipart, _ = api.search("POST", text="blue sky")
    _, by_form, _ = api.request(
        "POST", path, body="text=blue+sky", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    _, by_json, _ = api.request(
        "POST", path, body=json.dumps({"text": "blue sky"}), headers={"Content-Type": "application/json"}
    )
    _, by_java_path, _ = api.request("GET", path + "/image", fields={"text": "blue sky"})
    ids = [
        [h["asset_id"] for h in b["resources"]]
        for b in (by_get, by_multipart, by_form, by_json, by_java_path)
    ]
    assert all(i == ids[0] for i in ids)


def test_paging_through_every_page_equals_one_large_query_without_repeats(api):
    _, whole, _ = api.search(text="summer shirt", max_results="500")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"text": "summer shirt", "max_results": "7"}
        if cursor:
            params["next_cursor"] = cursor
        status, page, _ = api.search(**params)
        assert status == 200
        seen += [h["asset_id"] for h in page["resources"]]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert pages == 5
    assert len(seen) == len(set(seen))
    assert seen == [h["asset_id"] for h in whole["resources"]]


def test_a_cursor_used_with_other_parameters_is_a_400(api):
    _, page, _ = api.search(text="red", max_results="5")
    status, body, _ = api.search(text="green", next_cursor=page["next_cursor"])
    assert status == 400
    assert "different query" in body["error"]["message"]


@pytest.mark.parametrize("cursor", ["garbage", "A" * 40, "", "%%%", "x" * 5000])
def test_a_forged_or_malformed_cursor_is_a_400_never_a_500(api, cursor):
    status, body, _ = api.search(text="red", next_cursor=cursor)
    assert status in (200, 400)  # an empty cursor is the same as none
    if cursor:
        assert status == 400
        assert body["error"]["message"]


def test_threshold_keeps_only_hits_at_or_above_it(api):
    _, everything, _ = api.search(text="red", max_results="500")
    median = sorted(h["score"] for h in everything["resources"])[15]
    _, above, _ = api.search(text="red", threshold=str(median), max_results="500")
    assert 0 < len(above["resources"]) < 30
    assert all(h["score"] >= median - 1e-6 for h in above["resources"])


def test_folder_tags_and_format_filters_restrict_hits(api):
    _, shirts, _ = api.search(text="x", asset_folder="shirts", max_results="500")
    assert {h["asset_folder"] for h in shirts["resources"]} == {"shirts/summer"}
    _, tagged, _ = api.search(text="x", tags="sale", max_results="500")
    assert len(tagged["resources"]) == 10
    assert all("sale" in h["tags"] for h in tagged["resources"])
    _, pngs, _ = api.search(text="x", format="png")
    assert pngs["resources"] == []


def test_search_by_asset_id_reuses_the_vector_and_leaves_the_asset_out(api):
    asset = derived_asset_id("local", "shoes/item-01.jpg")
    status, body, _ = api.search(image_asset_id=asset, max_results="500")
    assert status == 200
    ids = [h["asset_id"] for h in body["resources"]]
    assert asset not in ids
    assert len(ids) == 29


def test_search_by_uploaded_file_finds_the_same_image_first(api):
    data = images.jpeg(200 + 4, 160, seed=4)
    status, body, _ = api.request(
        "POST",
        f"/v1_1/{CLOUD}/resources/visual_search",
        fields={"image_file": ("probe.jpg", data, "image/jpeg")},
    )
    assert status == 200
    assert body["resources"][0]["public_id"] == "shirts/summer/item-04"
    assert body["resources"][0]["score"] > 0.99


def test_image_file_as_a_data_uri_string_works_like_a_file(api):
    data = images.jpeg(200 + 4, 160, seed=4)
    uri = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    status, body, _ = api.search("POST", image_file=uri)
    assert status == 200
    assert body["resources"][0]["public_id"] == "shirts/summer/item-04"


def test_image_file_as_an_http_url_is_fetched_like_image_url(api, server):
    _, probe, _ = api.search(text="x", max_results="1")
    url = probe["resources"][0]["url"]
    status, body, _ = api.search("POST", image_file=url)
    assert status == 200
    assert body["resources"][0]["asset_id"] == probe["resources"][0]["asset_id"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "exactly one of"),
        ({"text": "a", "image_url": "http://x.test/a.jpg"}, "exactly one of"),
        ({"text": "a", "max_results": "0"}, "max_results"),
        ({"text": "a", "max_results": "501"}, "max_results"),
        ({"text": "a", "max_results": "ten"}, "max_results"),
        ({"text": "a", "threshold": "1.5"}, "threshold"),
        ({"text": "a", "threshold": "nan"}, "threshold"),
        ({"text": "   "}, "empty"),
        ({"text": "a" * 1001}, "longer than"),
        ({"image_asset_id": "not-an-id"}, "32 lowercase"),
        ({"image_file": "ftp://example.test/a.jpg"}, "data:"),
        ({"image_url": "file:///etc/passwd"}, ""),
    ],
)
def test_bad_parameters_are_a_400_in_cloudinary_shape(api, params, message):
    status, body, _ = api.search(**params)
    assert status == 400
    assert message in body["error"]["message"]


def test_unknown_asset_id_is_a_404(api):
    status, body, _ = api.search(image_asset_id="0" * 32)
    assert status == 404
    assert "no asset" in body["error"]["message"]


@pytest.mark.parametrize("kind", ["truncated", "empty", "svg", "html", "png_bomb"])
def test_a_bad_uploaded_image_is_a_400_with_a_reason(api, kind):
    factory, _ = images.CORPUS[kind]
    status, body, _ = api.request(
        "POST",
        f"/v1_1/{CLOUD}/resources/visual_search",
        fields={"image_file": ("bad.jpg", factory(), "image/jpeg")},
    )
    assert status == 400
    assert body["error"]["message"]


def test_unknown_cloud_name_is_a_404(api):
    status, body, _ = api.request("GET", "/v1_1/othercloud/resources/visual_search?text=a")
    assert status == 404
    assert "cloud_name" in body["error"]["message"]


def test_unknown_route_is_a_404_in_cloudinary_shape(api):
    status, body, _ = api.request("GET", "/nope")
    assert status == 404
    assert body["error"]["message"]


def test_resource_lookup_by_asset_id(api):
    asset = derived_asset_id("local", "shoes/item-01.jpg")
    status, body, _ = api.request("GET", f"/v1_1/{CLOUD}/resources/{asset}")
    assert status == 200
    assert body["public_id"] == "shoes/item-01"
    assert (body["width"], body["height"], body["format"]) == (201, 160, "jpg")


def test_oversized_body_is_refused_before_reading(api, services):
    limit = services.settings.max_image_bytes * 4 // 3 + 1024 * 1024
    response = api.http.request(
        "POST",
        api.base + f"/v1_1/{CLOUD}/resources/visual_search",
        headers={**api.auth, "Content-Length": str(limit + 1)},
        body=b"x",
        retries=False,
        preload_content=True,
    )
    assert response.status == 413
    assert json.loads(response.data)["error"]["message"]


def test_errors_never_leave_in_another_shape(api):
    for path in ("/v1_1/testcloud/resources/visual_search", "/v1_1/testcloud/resources/visual_search?text="):
        status, body, _ = api.request("GET", path)
        assert set(body) == {"error"}
        assert status in (400, 401, 404)


def test_the_openapi_document_lists_the_search_parameters_the_parser_reads(api):
    status, document, _ = api.request("GET", "/docs?format=json")
    assert status == 200
    operation = document["paths"]["/v1_1/{cloud_name}/resources/visual_search"]["get"]
    documented = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    assert set(documented) == set(SearchParams.model_fields)
    assert all(p.get("description") for p in documented.values())
    read = search_params.read({name: "" for name in documented})  # the parser reads each, empty as absent
    assert set(read.model_dump()) == set(documented)
    # Typed once: the parser's own schema has the bounds (Powertools 3.37 renders an optional field of a
    # query model as a string in /docs: its _get_basic_type_schema cannot take a union).
    schema = SearchParams.model_json_schema()["properties"]
    assert schema["max_results"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 500}
    assert schema["threshold"]["anyOf"][0]["type"] == "number"
