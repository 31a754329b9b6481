"""Hostile and random requests never get a 500: Schemathesis generates requests from the service's own
OpenAPI document; Hypothesis throws raw query strings, forms, multipart and JSON bodies at the search
route; every route refuses missing and wrong credentials."""

from __future__ import annotations

import base64
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.routes import request_paths
from tests.functional.conftest import CLOUD
from visual_search.api.routes import ROUTES, Auth

SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def test_no_request_generated_from_the_openapi_document_gets_a_server_error(server, api):
    status, document, _ = api.request("GET", "/docs?format=json")
    assert status == 200
    operations = [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]
    assert len(operations) >= 6

    calls = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @FUZZ
        def no_server_error(case):
            response = case.call(base_url=server, headers=api.auth)
            calls.append(response.status_code)
            assert response.status_code < 500, f"{case.operation.label}: {response.text[:300]}"

        no_server_error()
    assert len(calls) >= 10 * len(operations), "Schemathesis generated too few requests to mean anything"
    assert 200 in calls, "no generated request was valid: the schema does not describe the API"


field_names = st.sampled_from(
    ["text", "image_url", "image_asset_id", "max_results", "next_cursor", "threshold", "folder", "tags"]
)
values = st.one_of(
    st.text(max_size=50),
    st.text(min_size=9_000, max_size=10_000),
    st.integers().map(str),
    st.sampled_from(["", " ", "-1", "0", "1e309", "NaN", "null", "[]", "{}", "%00", "../../etc/passwd"]),
)
fields = st.dictionaries(field_names, values, max_size=4)


@given(fields)
@FUZZ
def test_random_query_strings_never_get_a_server_error(api, params):
    status, body, _ = api.request("GET", SEARCH, fields=params)
    assert status < 500
    assert status == 200 or set(body) == {"error"}


@given(fields)
@FUZZ
def test_random_form_bodies_never_get_a_server_error(api, params):
    status, body, _ = api.request("POST", SEARCH, fields=params, encode_multipart=False)
    assert status < 500
    assert status == 200 or set(body) == {"error"}


@given(fields, st.binary(max_size=2_000))
@FUZZ
def test_random_multipart_uploads_never_get_a_server_error(api, params, blob):
    status, body, _ = api.request("POST", SEARCH, fields={**params, "image_file": ("x.jpg", blob)})
    assert status < 500
    assert status == 200 or set(body) == {"error"}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30), st.lists, max_leaves=8))
@FUZZ
def test_random_json_bodies_never_get_a_server_error(api, payload):
    status, body, _ = api.request(
        "POST", SEARCH, body=json.dumps(payload), headers={"Content-Type": "application/json"}
    )
    assert status < 500
    assert status == 200 or set(body) == {"error"}


def test_ten_thousand_characters_of_text_are_refused_clearly(api):
    status, body, _ = api.search(text="red " * 2_500)
    assert status == 400
    assert "characters" in body["error"]["message"]


# Every route behind the API's credentials (the route table's), as a client calls it, and two with a query.
SAMPLES = {"cloud_name": (CLOUD,), "public_id": ("folder/photo",)}
PROTECTED = [
    (route.method, path)
    for route in ROUTES
    if route.auth is Auth.CREDENTIALS
    for path in request_paths(route, SAMPLES)
] + [("GET", SEARCH + "?text=shoe"), ("GET", "/docs?format=json")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize("credentials", [None, "test-key:wrong", "nobody:test-secret-123", ":", "garbage"])
def test_every_route_refuses_missing_and_wrong_credentials(api, method, path, credentials):
    headers = {}
    if credentials is not None:
        token = credentials if credentials == "garbage" else base64.b64encode(credentials.encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    response = api.http.request(method, api.base + path, headers=headers)
    assert response.status == 401
    assert set(json.loads(response.data)) == {"error"}
