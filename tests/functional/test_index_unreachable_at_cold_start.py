"""A search function that cold-starts while its OpenSearch index cannot be reached: the request answers
the documented 429 + Retry-After (an error out of the function's set-up would be an invocation error,
which API Gateway answers 502), the services that need no index are built once and kept, and later
invocations retry only the connection, and only once a back-off delay has passed."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.doubles.opensearch_double import FakeOpenSearch, plug_in
from tests.events import api_gateway_event
from tests.fixtures.lambdas import LambdaContext, loaded_handler
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD

SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
AUTH = "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
FIRST_BACK_OFF_S = 1.0  # visual_search.index.first_use: the first failed connection waits this long


@pytest.fixture
def index_down(tmp_path, tiny_model_dir, monkeypatch):
    """The search handler, loaded fresh (a cold start), whose OpenSearch index is down; yields the
    cluster (`reachable` brings it up), the handler module, and how many times it built its services."""
    cluster = FakeOpenSearch(reachable=False)
    plug_in(monkeypatch, cluster)
    environment = {
        "VS_MODEL_DIR": str(tiny_model_dir),
        "VS_DATA_DIR": str(tmp_path),
        "VS_CLOUD_NAME": CLOUD,
        "VS_API_KEY": API_KEY,
        "VS_API_SECRET": API_SECRET,
        "VS_CURSOR_SECRET": "cursor-secret-for-tests-0123456789",
        "VS_INDEX_BACKEND": "opensearch",
        "VS_OPENSEARCH_ENDPOINT": "https://search.example",
        "VS_OPENSEARCH_AUTH": "none",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with loaded_handler("search") as module:
        builds = []
        build = module.build_services
        monkeypatch.setattr(module, "build_services", lambda settings: builds.append(1) or build(settings))
        yield cluster, module, builds


def search(module) -> tuple[int, dict, dict]:
    event = api_gateway_event("GET", SEARCH, query={"text": "a shoe"}, headers={"Authorization": AUTH})
    response = module.handler(event, LambdaContext())
    headers = {k: v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers |= response.get("headers") or {}
    return response["statusCode"], headers, json.loads(response["body"])


def test_a_cold_start_with_the_index_down_answers_429_with_retry_after(index_down):
    cluster, module, _ = index_down

    status, headers, body = search(module)

    assert status == 429
    assert int(headers["Retry-After"]) > 0
    assert "OpenSearch" in body["error"]["message"]
    assert cluster.injected["unreachable"] > 0  # it did try


def test_within_the_back_off_a_request_answers_429_at_once_without_reaching_for_the_index(index_down):
    cluster, module, _ = index_down
    search(module)
    tried = cluster.injected["unreachable"]

    started = time.monotonic()
    status, headers, _ = search(module)

    assert (status, "Retry-After" in headers) == (429, True)
    assert cluster.injected["unreachable"] == tried
    assert time.monotonic() - started < 0.5


def test_once_the_index_is_up_the_next_request_after_the_back_off_answers_200_on_the_same_services(
    index_down,
):
    cluster, module, builds = index_down
    assert search(module)[0] == 429
    services = module._resolver

    cluster.reachable = True
    time.sleep(FIRST_BACK_OFF_S + 0.05)
    status, _, body = search(module)

    assert status == 200
    assert body["resources"] == []  # the index was made on this first use: empty
    assert module._resolver is services
    assert builds == [1]
