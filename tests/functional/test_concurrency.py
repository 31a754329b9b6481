"""Concurrent requests never see each other's parameters, on the local server or one resolver (Powertools
keeps request state on the resolver; api/concurrent_resolver.py keeps it per thread), and the advisory
rate-limit window is one per process."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from aws_lambda_powertools.event_handler.api_gateway import Route

from tests.functional.conftest import API_KEY, API_SECRET, CLOUD
from visual_search.api.app import build_resolver
from visual_search.api.http import Http
from visual_search.domain.identity import derived_asset_id
from visual_search.server.events import lambda_context, to_proxy_event


def test_a_request_paused_while_another_is_served_still_reads_its_own_parameters(api, monkeypatch):
    first_inside, second_done = threading.Event(), threading.Event()
    check_credentials = Http.check_credentials

    def pausing_check_credentials(self):
        check_credentials(self)
        if self.app.current_event.get_query_string_value("max_results") == "3":
            first_inside.set()
            assert second_done.wait(10)

    monkeypatch.setattr(Http, "check_credentials", pausing_check_credentials)
    results: dict[str, int] = {}

    def first() -> None:
        status, body, _ = api.search(text="shoe", max_results="3")
        results["first"] = len(body["resources"]) if status == 200 else -status

    thread = threading.Thread(target=first)
    thread.start()
    assert first_inside.wait(10)
    status, body, _ = api.search(text="shirt", max_results="7")
    results["second"] = len(body["resources"]) if status == 200 else -status
    second_done.set()
    thread.join(10)
    assert results == {"first": 3, "second": 7}


def resource_event(asset_id: str) -> dict:
    headers = {"Authorization": "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()}
    return to_proxy_event("GET", f"/v1_1/{CLOUD}/resources/{asset_id}", headers, b"", "127.0.0.1")


def test_route_arguments_of_a_paused_request_survive_another_request_on_the_same_resolver(services):
    """Powertools keeps route arguments in the resolver's `context`, cleared after every request: a
    request finishing in between must not take the paused request's arguments with it."""
    resolver = build_resolver(services)
    first_id = derived_asset_id("local", "shoes/item-01.jpg")
    paused, second_done = threading.Event(), threading.Event()

    def pause_first(app, next_middleware):
        if app.current_event.path.endswith(first_id):
            paused.set()
            assert second_done.wait(10)
        return next_middleware(app)

    resolver.use([pause_first])
    results: dict[str, dict] = {}
    thread = threading.Thread(
        target=lambda: results.update(first=resolver.resolve(resource_event(first_id), lambda_context()))
    )
    thread.start()
    assert paused.wait(10)
    results["second"] = resolver.resolve(resource_event("0" * 32), lambda_context())
    second_done.set()
    thread.join(10)
    assert results["second"]["statusCode"] == 404
    assert results["first"]["statusCode"] == 200
    assert json.loads(results["first"]["body"])["public_id"] == "shoes/item-01"


def test_first_requests_arriving_together_build_each_route_once(services, monkeypatch):
    """Powertools builds a route's middleware stack on its first request; two threads building it at
    once would wrap the route twice."""
    built: list[str] = []
    build = Route._build_middleware_stack

    def slow_build(self, router_middlewares, app):
        built.append(self.func.__name__)
        time.sleep(0.05)  # widen the window two unguarded builds would overlap in
        return build(self, router_middlewares, app)

    monkeypatch.setattr(Route, "_build_middleware_stack", slow_build)
    resolver = build_resolver(services)
    asset = derived_asset_id("local", "shoes/item-01.jpg")
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: resolver.resolve(resource_event(asset), lambda_context()), range(4))
        )
    assert [a["statusCode"] for a in answers] == [200] * 4
    assert built == ["get_resource"]


def remaining(response_headers) -> int:
    return int(response_headers["X-FeatureRateLimit-Remaining"])


def remaining_in_event(result: dict) -> int:
    return int(result["multiValueHeaders"]["X-FeatureRateLimit-Remaining"][0])


def test_the_rate_limit_window_counts_per_process_across_resolvers_and_threads(api, services):
    """The local server's resolver and another one (as a Lambda builds) count in one window."""
    lambda_resolver = build_resolver(services)
    asset = derived_asset_id("local", "shoes/item-01.jpg")
    seen = []
    for _ in range(3):
        seen.append(remaining(api.request("GET", "/health")[2]))
        seen.append(remaining_in_event(lambda_resolver.resolve(resource_event(asset), lambda_context())))
    assert seen == list(range(seen[0], seen[0] - 6, -1))

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda _: remaining(api.request("GET", "/health")[2]), range(24)))
    assert sorted(together, reverse=True) == list(range(seen[-1] - 1, seen[-1] - 25, -1))
