"""The resolver is built from the route table (api/routes.py): it serves exactly the table's routes, and
asks every caller what the route's auth kind says, before anything else. API Gateway's side of the same
table: tests/infra/test_stack.py."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import urlencode

import pytest

from tests.fixtures.routes import request_paths
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings
from visual_search.api.app import build_resolver
from visual_search.api.routes import ROUTES, Auth, Route
from visual_search.api.upload_signature import sign
from visual_search.bootstrap import build_services
from visual_search.server.events import lambda_context, to_proxy_event

SAMPLES = {"resource_type": ("image",), "public_id": ("folder/photo",)}
IAM_CALLER = {"userArn": "arn:aws:iam::123456789012:user/ops", "accountId": "123456789012"}


@pytest.fixture(scope="module", params=["basic", "iam"])
def api(request, tmp_path_factory, tiny_model_dir):
    settings = make_settings(tmp_path_factory.mktemp("data"), tiny_model_dir, api_auth=request.param)
    services = build_services(settings)
    yield request.param, build_resolver(services)
    services.close()


def _path(route: Route, cloud: str) -> str:
    (path,) = request_paths(route, {**SAMPLES, "cloud_name": (cloud,)})
    return path


def _call(resolver, method: str, path: str, headers=None, body=b"", identity=None):
    event = to_proxy_event(method, path, {"Host": "localhost", **(headers or {})}, body, "127.0.0.1")
    event["requestContext"]["identity"].update(identity or {})
    response = resolver.resolve(event, lambda_context())
    body_text = response.get("body") or ""
    message = json.loads(body_text)["error"]["message"] if '"error"' in body_text[:10] else None
    return response["statusCode"], response.get("multiValueHeaders") or {}, message


def _credentials(mode: str, route: Route) -> dict:
    """What a caller allowed on the route sends: a signed body, or the API's credentials."""
    if route.auth is Auth.SIGNED:
        fields = {"timestamp": str(int(time.time())), "api_key": API_KEY, "public_id": "photo"}
        body = urlencode({**fields, "signature": sign(fields, API_SECRET)}).encode()
        return {"headers": {"Content-Type": "application/x-www-form-urlencoded"}, "body": body}
    if mode == "iam":
        return {"identity": IAM_CALLER}
    token = base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
    return {"headers": {"Authorization": f"Basic {token}"}}


def test_the_resolver_serves_the_tables_routes_each_behind_its_auth_kind_and_no_other(api):
    _, resolver = api
    # Powertools' registered routes (internals, pinned by the locks): static ones, then the others.
    registered = resolver._static_routes + resolver._dynamic_routes
    served = {(r.method, r.path, tuple(m.__name__ for m in r.middlewares)) for r in registered}
    assert served == {(r.method, r.path, (f"{r.auth.value}_guard",)) for r in ROUTES}


def test_every_route_asks_a_caller_without_credentials_what_its_auth_kind_says(api):
    mode, resolver = api
    for route in ROUTES:
        # Another cloud's name too: the caller is checked first, so a stranger learns nothing of ours.
        for cloud in (CLOUD, "another"):
            path = _path(route, cloud)
            status, headers, message = _call(resolver, route.method, path)
            if route.auth is Auth.PUBLIC:
                assert status != 401, path
            elif route.auth is Auth.SIGNED:
                assert (status, message) == (401, "Must supply api_key"), path
                assert "WWW-Authenticate" not in headers, path  # no Basic challenge: Basic is not accepted
            elif mode == "iam":
                assert (status, message) == (
                    401,
                    "missing credentials: sign the request with AWS Signature Version 4",
                )
            else:
                assert status == 401, path
                assert message == "missing credentials: use HTTP Basic auth with your api_key and api_secret"
                assert headers["WWW-Authenticate"] == ['Basic realm="visual-search"'], path


def test_every_route_of_a_cloud_answers_another_clouds_name_with_a_404_once_the_caller_is_known(api):
    mode, resolver = api
    for route in ROUTES:
        if "<cloud_name>" not in route.path:
            continue
        path = _path(route, "another")
        status, _, message = _call(resolver, route.method, path, **_credentials(mode, route))
        assert (status, message) == (404, "unknown cloud_name 'another'"), f"{route.method} {path}"


def test_a_caller_with_credentials_reaches_every_routes_handler(api):
    mode, resolver = api
    for route in ROUTES:
        path = _path(route, CLOUD)
        status, _, message = _call(resolver, route.method, path, **_credentials(mode, route))
        assert status not in (401, 403), f"{route.method} {path}: {message}"
