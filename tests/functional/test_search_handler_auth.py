"""The search Lambda under each API Gateway auth mode, with recorded event shapes (tests/events/):
`-c auth=secret` checks Basic key:secret itself as well as behind the authorizer; `-c auth=iam` trusts
the identity API Gateway verified and never reads the Authorization header, which holds a signature.
And every stage of a request shares the invocation's remaining time."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

import pytest

from tests.events import load
from tests.fixtures.lambdas import LambdaContext, loaded_handler
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings, seed_images
from visual_search.bootstrap import build_services
from visual_search.settings import service_settings


def _search_lambda(tmp_path_factory, tiny_model_dir, mode: str, remaining_ms: int = 28_000):
    seeded = tmp_path_factory.mktemp(f"lambda-{mode}-data")  # one per mode: an index opens once
    services = build_services(make_settings(seeded, tiny_model_dir))
    seed_images(services, 6)
    services.close()
    environment = {
        "VS_MODEL_DIR": str(tiny_model_dir),
        "VS_DATA_DIR": str(seeded),
        "VS_CLOUD_NAME": CLOUD,
        "VS_API_KEY": API_KEY,
        "VS_API_SECRET": API_SECRET,
        "VS_CURSOR_SECRET": "cursor-secret-for-tests-0123456789",
        "VS_API_AUTH": mode,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        service_settings.cache_clear()  # settings are read once per process, as in Lambda
        with loaded_handler("search") as module:
            yield lambda event: module.handler(event, LambdaContext(remaining_ms=remaining_ms))
        service_settings.cache_clear()


@pytest.fixture(scope="module")
def iam_lambda(tmp_path_factory, tiny_model_dir):
    yield from _search_lambda(tmp_path_factory, tiny_model_dir, "iam")


@pytest.fixture(scope="module")
def secret_lambda(tmp_path_factory, tiny_model_dir):
    yield from _search_lambda(tmp_path_factory, tiny_model_dir, "basic")


def answer(response: dict) -> tuple[int, dict]:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return response["statusCode"], json.loads(body)


def _with_header(event: dict[str, Any], name: str, value: str) -> dict[str, Any]:
    event["headers"][name] = value
    event["multiValueHeaders"][name] = [value]
    return event


def test_an_iam_signed_request_is_answered_on_the_identity_api_gateway_verified(iam_lambda):
    status, payload = answer(iam_lambda(load("apigw_rest_iam_search")))
    assert status == 200
    assert len(payload["resources"]) == 5


def test_in_iam_mode_a_request_without_a_verified_identity_is_refused(iam_lambda):
    # e.g. a route someone left without AWS_IAM: API Gateway then verified nobody.
    event = load("apigw_rest_iam_search")
    event["requestContext"]["identity"]["userArn"] = None
    event["requestContext"]["identity"]["accountId"] = None
    status, payload = answer(iam_lambda(event))
    assert status == 401
    assert "Signature Version 4" in payload["error"]["message"]


def test_in_iam_mode_basic_credentials_never_stand_in_for_an_identity(iam_lambda):
    event = load("apigw_rest_authorizer_search")  # correct key:secret, but no IAM identity
    assert answer(iam_lambda(event))[0] == 401


def test_in_iam_mode_the_authorization_header_is_not_read(iam_lambda):
    event = _with_header(load("apigw_rest_iam_search"), "Authorization", "Basic !!! not even base64")
    assert answer(iam_lambda(event))[0] == 200
    del event["headers"]["Authorization"], event["multiValueHeaders"]["Authorization"]
    assert answer(iam_lambda(event))[0] == 200


def test_behind_the_authorizer_the_key_and_secret_are_checked_again(secret_lambda):
    status, payload = answer(secret_lambda(load("apigw_rest_authorizer_search")))
    assert status == 200
    assert len(payload["resources"]) == 5
    wrong = "Basic " + base64.b64encode(f"{API_KEY}:wrong".encode()).decode()
    event = _with_header(load("apigw_rest_authorizer_search"), "Authorization", wrong)
    assert answer(secret_lambda(event))[0] == 401


def test_in_secret_mode_an_iam_identity_is_not_enough(secret_lambda):
    # What `-c auth=iam` used to deploy: a SigV4 header the function read as failed Basic auth.
    assert answer(secret_lambda(load("apigw_rest_iam_search")))[0] == 401


# --- one deadline per request -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_image_server():
    from tests.functional.test_remote_fetch import _Handler

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}/slow"  # one byte every 0.2 s
    srv.shutdown()


def test_a_request_short_on_lambda_time_answers_429_with_retry_after_not_a_gateway_502(
    tmp_path_factory, tiny_model_dir, slow_image_server, monkeypatch
):
    # Given an invocation with 6.8 s left, 6 s of which are kept to answer (one OpenSearch request
    # timeout + 1 s), and an image_url far slower than the 0.8 s that leaves
    monkeypatch.setenv("VS_ALLOW_PRIVATE_URLS", "true")
    running = _search_lambda(tmp_path_factory, tiny_model_dir, "iam", remaining_ms=6_800)
    search = next(running)
    event = load("apigw_rest_iam_search")
    event["queryStringParameters"] = {"image_url": slow_image_server}
    event["multiValueQueryStringParameters"] = {"image_url": [slow_image_server]}
    # When it is searched
    started = time.monotonic()
    response = search(event)
    # Then the function answers in time, in Cloudinary's shape, telling the client when to retry
    assert time.monotonic() - started < 3.0
    status, payload = answer(response)
    assert status == 429, payload
    assert "ran out of time" in payload["error"]["message"]
    assert int(response["multiValueHeaders"]["Retry-After"][0]) > 0
    running.close()
