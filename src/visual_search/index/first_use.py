"""A set-up step run on first use, not at start: a Lambda's init phase runs before any request deadline,
and an error there is an invocation error (API Gateway answers 502) after which the next invocation
starts the whole init again. Run on first use instead, the step fails the request that needed it, with
the error that request can answer (an unreachable index: DependencyUnavailable, so 429 + Retry-After),
and the services built beside it are kept.

A failed step is tried again only once a back-off delay has passed (1 s, doubling up to 30 s): calls in
between fail at once with the same kind of error, so a cluster that is down is not hammered by every
request of every execution environment, and those requests answer quickly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from time import monotonic

from visual_search.errors import DependencyUnavailable

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0


class FirstUse:
    """`ensure()` runs `step` once, the first time it is called; see the module docstring.

    >>> calls = []
    >>> ready = FirstUse(lambda: calls.append("connected"))
    >>> ready.ensure(); ready.ensure(); calls
    ['connected']
    """

    def __init__(self, step: Callable[[], None], clock: Callable[[], float] = monotonic):
        self._step, self._clock = step, clock
        self._lock = threading.Lock()  # the local server's threads: one attempt at a time
        self.done = False
        self._failures = 0
        self._retry_at = 0.0
        self._last: Exception | None = None

    def ensure(self) -> None:
        if self.done:
            return
        with self._lock:
            if self.done:
                return
            wait = self._retry_at - self._clock()
            if self._last is not None and wait > 0:
                self._refuse(wait)
            try:
                self._step()
            except Exception as exc:
                self._failures += 1
                delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** (self._failures - 1))
                self._retry_at, self._last = self._clock() + delay, exc
                raise
            self.done, self._last = True, None

    def _refuse(self, wait: float) -> None:
        last = self._last
        if isinstance(last, DependencyUnavailable):
            raise DependencyUnavailable(f"{last} (next attempt in {wait:.1f} s)")
        assert last is not None
        # A refusal (credentials, another model's index): the same answer until it is tried again.
        raise last.with_traceback(None)
