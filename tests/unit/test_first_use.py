"""A set-up step run on first use: once when it succeeds; after a failure, tried again only once its
back-off delay (1 s, doubling, at most 30 s) has passed, and refused at once in between."""

from __future__ import annotations

import pytest

from visual_search.errors import ConfigurationError, DependencyUnavailable
from visual_search.index.first_use import MAX_DELAY_S, FirstUse


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Step:
    """Fails while `failing` holds an exception; counts its attempts."""

    def __init__(self, failing: Exception | None = None) -> None:
        self.failing, self.attempts = failing, 0

    def __call__(self) -> None:
        self.attempts += 1
        if self.failing is not None:
            raise self.failing


def test_a_step_that_succeeds_runs_once():
    step = Step()
    ready = FirstUse(step, Clock())

    ready.ensure()
    ready.ensure()

    assert (step.attempts, ready.done) == (1, True)


def test_after_a_failure_calls_are_refused_at_once_until_the_back_off_has_passed():
    clock, step = Clock(), Step(DependencyUnavailable("cannot reach OpenSearch"))
    ready = FirstUse(step, clock)
    with pytest.raises(DependencyUnavailable):
        ready.ensure()

    clock.now += 0.9
    with pytest.raises(DependencyUnavailable, match=r"cannot reach OpenSearch \(next attempt in 0.1 s\)"):
        ready.ensure()
    assert step.attempts == 1

    step.failing = None
    clock.now += 0.1
    ready.ensure()
    assert (step.attempts, ready.done) == (2, True)


def test_the_back_off_doubles_with_each_failure_up_to_its_cap():
    clock, step = Clock(), Step(DependencyUnavailable("down"))
    ready = FirstUse(step, clock)
    with pytest.raises(DependencyUnavailable):
        ready.ensure()
    delays = []
    for _ in range(7):  # how long until the next call is an attempt again (which fails again)
        started, attempts = clock.now, step.attempts
        while step.attempts == attempts:
            clock.now += 0.25
            with pytest.raises(DependencyUnavailable):
                ready.ensure()
        delays.append(clock.now - started)

    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, MAX_DELAY_S, MAX_DELAY_S]


def test_a_refusal_is_answered_with_the_same_error_until_it_is_tried_again():
    clock, step = Clock(), Step(ConfigurationError("the index holds another model"))
    ready = FirstUse(step, clock)
    with pytest.raises(ConfigurationError):
        ready.ensure()

    with pytest.raises(ConfigurationError, match="another model"):
        ready.ensure()
    assert step.attempts == 1
