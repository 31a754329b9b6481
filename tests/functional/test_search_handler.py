"""The search Lambda as API Gateway's REST API invokes it behind `/{proxy+}` on stage v1: the event
shapes the local server does not produce (text bodies not base64-encoded, the proxy resource and path
parameters, the stage in the request context) reach the same resolver and answer as Cloudinary does."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import cloudinary.utils
import pytest
from urllib3 import encode_multipart_formdata

from tests.events import api_gateway_event
from tests.fixtures import images
from tests.fixtures.lambdas import LambdaContext, loaded_handler
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings, seed_images
from visual_search.bootstrap import build_services

SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
AUTH = "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()


def gateway_event(method: str, path: str, **kwargs) -> dict:
    """The recorded proxy event, past the authorizer with the Basic credentials the SDKs send."""
    headers = {"Authorization": AUTH, **kwargs.pop("headers", {})}
    return api_gateway_event(method, path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def search_lambda(tmp_path_factory, tiny_model_dir):
    data = tmp_path_factory.mktemp("lambda-data")
    seeded = build_services(make_settings(data, tiny_model_dir))
    seed_images(seeded, 12)
    seeded.close()
    environment = {
        "VS_MODEL_DIR": str(tiny_model_dir),
        "VS_DATA_DIR": str(data),
        "VS_CLOUD_NAME": CLOUD,
        "VS_API_KEY": API_KEY,
        "VS_API_SECRET": API_SECRET,
        "VS_CURSOR_SECRET": "cursor-secret-for-tests-0123456789",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        with loaded_handler("search") as module:
            yield lambda event: module.handler(event, LambdaContext())


def answer(response: dict) -> tuple[int, dict]:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body)


def test_a_get_with_a_query_string_pages_with_next_cursor(search_lambda):
    status, first = answer(
        search_lambda(gateway_event("GET", SEARCH, query={"text": "a shoe", "max_results": "5"}))
    )
    assert status == 200
    assert len(first["resources"]) == 5
    query = {"text": "a shoe", "max_results": "5", "next_cursor": first["next_cursor"]}
    status, second = answer(search_lambda(gateway_event("GET", SEARCH, query=query)))
    assert status == 200
    seen = [r["asset_id"] for r in first["resources"] + second["resources"]]
    assert len(seen) == len(set(seen)) == 10


def test_a_form_post_arrives_as_plain_text_and_is_read(search_lambda):
    form = urlencode({"text": "a shirt", "max_results": "3"}).encode()
    event = gateway_event(
        "POST", SEARCH, headers={"Content-Type": "application/x-www-form-urlencoded"}, body=form
    )
    assert event["isBase64Encoded"] is False
    status, payload = answer(search_lambda(event))
    assert status == 200
    assert len(payload["resources"]) == 3


def multipart_event(path: str, fields: dict, **kwargs) -> dict:
    body, content_type = encode_multipart_formdata(fields)
    return gateway_event(
        "POST", path, headers={"Content-Type": content_type}, body=body, binary=True, **kwargs
    )


def test_a_multipart_image_file_arrives_base64_encoded_and_is_searched(search_lambda):
    event = multipart_event(SEARCH, {"image_file": ("q.jpg", images.jpeg(120, 90, seed=3), "image/jpeg")})
    status, payload = answer(search_lambda(event))
    assert status == 200
    assert payload["resources"]


def test_wrong_credentials_are_refused_in_cloudinarys_shape_even_past_the_authorizer(search_lambda):
    event = gateway_event("GET", SEARCH, query={"text": "x"})
    event["headers"]["Authorization"] = event["multiValueHeaders"]["Authorization"][0] = "Basic eDp5"
    status, payload = answer(search_lambda(event))
    assert status == 401
    assert set(payload) == {"error"}
    assert payload["error"]["message"]


def test_bad_input_is_a_400_in_cloudinarys_shape(search_lambda):
    status, payload = answer(search_lambda(gateway_event("GET", SEARCH, query={"max_results": "5"})))
    assert status == 400
    assert "error" in payload


def test_the_stage_root_redirects_relatively_to_the_page(search_lambda):
    response = search_lambda(gateway_event("GET", "/", resource="/"))
    assert response["statusCode"] == 302
    location = response.get("headers", {}).get("Location") or response["multiValueHeaders"]["Location"][0]
    assert location == "ui/index.html"  # resolves to /v1/ui/index.html under the stage


def signed_upload_event(secret: str) -> dict:
    """As Cloudinary's SDK sends `uploader.upload`: multipart, signed fields, no Authorization header."""
    fields = {"public_id": "gateway/red", "timestamp": str(int(time.time()))}
    fields["signature"] = cloudinary.utils.api_sign_request(fields, secret)
    fields["api_key"] = API_KEY
    fields["file"] = ("red.jpg", images.jpeg(96, 64, seed=11), "image/jpeg")
    body, content_type = encode_multipart_formdata(fields)
    return api_gateway_event(
        "POST",
        f"/v1_1/{CLOUD}/image/upload",
        headers={"Content-Type": content_type},
        body=body,
        binary=True,
        resource="/v1_1/{cloud_name}/image/upload",  # the route API Gateway lets through unauthorised
        authorized=False,
    )


def test_the_signed_upload_route_is_authenticated_by_its_signature(search_lambda):
    status, payload = answer(search_lambda(signed_upload_event("not-the-secret")))
    assert status == 401
    assert set(payload) == {"error"}
    status, payload = answer(search_lambda(signed_upload_event(API_SECRET)))
    assert status == 200
    assert payload["public_id"] == "gateway/red"


# --- the asset calls, as API Gateway delivers them -----------------------------------------------------


def signed_event(
    action: str, fields: dict, resource_type: str = "image", headers: dict | None = None
) -> dict:
    """An Upload API call as the SDKs sign it, through the route without authorizer."""
    fields = {**fields, "timestamp": str(int(time.time()))}
    text = {k: v for k, v in fields.items() if not isinstance(v, tuple)}
    fields["signature"] = cloudinary.utils.api_sign_request(text, API_SECRET)
    fields["api_key"] = API_KEY
    body, content_type = encode_multipart_formdata(fields)
    return api_gateway_event(
        "POST",
        f"/v1_1/{CLOUD}/{resource_type}/{action}",
        headers={"Content-Type": content_type, **(headers or {})},
        body=body,
        binary=True,
        resource=f"/v1_1/{{cloud_name}}/{resource_type}/{action}",
        authorized=False,
    )


def test_upload_lookup_list_and_destroy_as_gateway_events(search_lambda):
    jpeg = ("a.jpg", images.jpeg(96, 64, seed=21), "image/jpeg")
    status, uploaded = answer(
        search_lambda(signed_event("upload", {"public_id": "gw/a", "file": jpeg}, "auto"))
    )
    assert (status, uploaded["public_id"]) == (200, "gw/a")
    status, found = answer(search_lambda(gateway_event("GET", f"/v1_1/{CLOUD}/resources/image/upload/gw/a")))
    assert (status, found["asset_id"]) == (200, uploaded["asset_id"])
    query = {"prefix": "gw/", "max_results": "10"}
    status, listed = answer(
        search_lambda(gateway_event("GET", f"/v1_1/{CLOUD}/resources/image", query=query))
    )
    assert [r["public_id"] for r in listed["resources"]] == ["gw/a"]
    by_ids = {"asset_ids[]": [uploaded["asset_id"], "0" * 32]}
    path = f"/v1_1/{CLOUD}/resources/by_asset_ids"
    status, fetched = answer(search_lambda(gateway_event("GET", path, query=by_ids)))
    assert [r["public_id"] for r in fetched["resources"]] == ["gw/a"]
    status, destroyed = answer(search_lambda(signed_event("destroy", {"public_id": "gw/a"})))
    assert (status, destroyed) == (200, {"result": "ok"})


def test_upload_large_parts_as_gateway_events_are_assembled(search_lambda):
    data = images.jpeg(300, 200, seed=22)
    half = len(data) // 2
    for start, end in ((0, half - 1), (half, len(data) - 1)):
        headers = {"X-Unique-Upload-Id": "gw-large-1", "Content-Range": f"bytes {start}-{end}/{len(data)}"}
        part = ("large.jpg", data[start : end + 1], "application/octet-stream")
        event = signed_event("upload", {"public_id": "gw/large", "file": part}, headers=headers)
        status, payload = answer(search_lambda(event))
        assert status == 200
    assert (payload["public_id"], payload["bytes"]) == ("gw/large", len(data))


def test_ping_delete_by_json_body_and_the_errors_as_gateway_events(search_lambda):
    status, payload = answer(search_lambda(gateway_event("GET", f"/v1_1/{CLOUD}/ping")))
    assert (status, payload) == (200, {"status": "ok"})
    body = json.dumps({"public_ids": ["gw/none"]})
    event = gateway_event(
        "DELETE",
        f"/v1_1/{CLOUD}/resources/image/upload",
        headers={"Content-Type": "application/json"},
        body=body,
    )
    status, payload = answer(search_lambda(event))
    assert (status, payload["deleted"]) == (200, {"gw/none": "not_found"})
    status, payload = answer(
        search_lambda(signed_event("upload", {"file": ("x.jpg", b"x", "image/jpeg")}, "raw"))
    )
    assert status == 400
    assert "images only" in payload["error"]["message"]
    status, payload = answer(
        search_lambda(gateway_event("GET", f"/v1_1/{CLOUD}/resources/image/upload/no/such"))
    )
    assert status == 404
    event = gateway_event("GET", f"/v1_1/{CLOUD}/ping", headers={"Authorization": "Basic eDp5"})
    assert answer(search_lambda(event))[0] == 401
