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

from tests.fixtures import images
from tests.fixtures.lambdas import LambdaContext, loaded_handler
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings, seed_images
from visual_search.bootstrap import build_services

SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
AUTH = "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()


def gateway_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    binary: bool = False,
    resource: str = "/{proxy+}",
) -> dict:
    headers = {"Authorization": AUTH, **(headers or {})}
    if isinstance(body, bytes):  # API Gateway base64-encodes the binary media types only
        body = base64.b64encode(body).decode() if binary else body.decode()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")} if resource == "/{proxy+}" else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "stage": "v1",
            "path": "/v1" + path,
            "httpMethod": method,
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7"},
            "authorizer": {"principalId": API_KEY},
        },
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


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
    event = multipart_event(
        f"/v1_1/{CLOUD}/image/upload",
        fields,
        resource="/v1_1/{cloud_name}/image/upload",  # the route API Gateway lets through unauthorised
    )
    del event["headers"]["Authorization"], event["multiValueHeaders"]["Authorization"]
    del event["requestContext"]["authorizer"]
    return event


def test_the_signed_upload_route_is_authenticated_by_its_signature(search_lambda):
    status, payload = answer(search_lambda(signed_upload_event("not-the-secret")))
    assert status == 401
    assert set(payload) == {"error"}
    status, payload = answer(search_lambda(signed_upload_event(API_SECRET)))
    assert status == 200
    assert payload["public_id"] == "gateway/red"
