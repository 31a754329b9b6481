"""Concurrent requests on the local server never see each other's parameters (Powertools keeps the
current event on a class attribute; the server's resolver keeps one per thread)."""

from __future__ import annotations

import threading

from visual_search.api.app import Routes


def test_a_request_paused_while_another_is_served_still_reads_its_own_parameters(api, monkeypatch):
    first_inside, second_done = threading.Event(), threading.Event()
    authenticate = Routes.authenticate

    def pausing_authenticate(self, cloud_name=None):
        authenticate(self, cloud_name)
        if self.app.current_event.get_query_string_value("max_results") == "3":
            first_inside.set()
            assert second_done.wait(10)

    monkeypatch.setattr(Routes, "authenticate", pausing_authenticate)
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
