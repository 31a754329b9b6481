"""One deadline per request, shared by every stage that waits on something (the image tower's download,
an image_url fetch, OpenSearch with its retries), so their budgets cannot add up past the time the
caller has: on Lambda, the function's remaining time less a reserve to answer. A stage that runs out of
it raises DependencyUnavailable, which the API answers 429 + Retry-After — never API Gateway's 502.

The deadline travels in a context variable: a request sets it once (`within`), each stage asks
`budget(its_own_bound)`. Outside a request (the local server's threads, the CLI, ingest) there is none
and each stage keeps its own bound.

    with within(lambda_budget(context, reserve_s=settings.opensearch_timeout_s + 1)):
        response = resolver.resolve(event, context)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from visual_search.errors import DependencyUnavailable


@dataclass(frozen=True)
class Deadline:
    at: float  # on `clock`'s scale
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        return max(0.0, self.at - self.clock())


_current: ContextVar[Deadline | None] = ContextVar("visual_search_request_deadline", default=None)


@contextmanager
def within(seconds: float, clock: Callable[[], float] = time.monotonic) -> Iterator[Deadline]:
    """The request running inside this block has `seconds` for everything it waits on."""
    deadline = Deadline.after(seconds, clock)
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def lambda_budget(context: Any, reserve_s: float) -> float:
    """The Lambda invocation's remaining time, less what answering needs after the deadline passes (one
    request already in flight, e.g. OpenSearch's request timeout, and writing the response)."""
    return max(0.0, context.get_remaining_time_in_millis() / 1000 - reserve_s)


def budget(bound_s: float) -> float:
    """Seconds a stage may take: its own bound, or less if the request's deadline is nearer."""
    deadline = _current.get()
    return bound_s if deadline is None else min(bound_s, deadline.remaining())


def request_expired() -> bool:
    """True once the request's deadline (if any) has passed."""
    deadline = _current.get()
    return deadline is not None and deadline.remaining() <= 0


def out_of_time(stage: str) -> DependencyUnavailable:
    return DependencyUnavailable(f"{stage}: the request ran out of time, try again shortly")
