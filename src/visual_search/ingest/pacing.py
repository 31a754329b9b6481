"""A bounded rate for bulk commands (backfill, redrive), so they never starve live traffic."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """`wait()` before each unit of work keeps the average at most `per_second` units per second;
    work that runs slower than the rate is never slowed further."""

    def __init__(
        self,
        per_second: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if per_second is not None and per_second <= 0:
            raise ValueError("the rate must be positive")
        self._interval = 1.0 / per_second if per_second else 0.0
        self._clock, self._sleep = clock, sleep
        self._next = clock()

    def wait(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        if now < self._next:
            self._sleep(self._next - now)
            now = self._next
        self._next = max(self._next, now - self._interval) + self._interval
