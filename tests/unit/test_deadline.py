"""One deadline per request: every stage that waits takes the nearer of its own bound and what the
request has left, and running out of the request's time is a 429 (DependencyUnavailable), not the
stage's own failure. (The same over a real slow image server: tests/functional/test_remote_fetch.py.)"""

from __future__ import annotations

import pytest

from visual_search.deadline import Deadline, budget, lambda_budget, request_expired, within


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_without_a_request_deadline_each_stage_keeps_its_own_bound():
    assert budget(20.0) == 20.0
    assert not request_expired()


def test_stages_share_what_the_request_has_left():
    clock = _Clock()
    with within(25.0, clock):
        assert budget(20.0) == 20.0  # the tower download: its own bound is nearer
        clock.now += 18.0
        assert budget(10.0) == pytest.approx(7.0)  # image_url after it: only what is left
        clock.now += 7.5
        assert budget(20.0) == 0.0  # OpenSearch: nothing left
        assert request_expired()
    assert budget(20.0) == 20.0  # the next request starts afresh


def test_the_lambda_budget_keeps_a_reserve_to_answer():
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 27_400

    assert lambda_budget(Context(), reserve_s=6.0) == pytest.approx(21.4)
    assert Deadline.after(5.0, _Clock()).remaining() == 5.0
