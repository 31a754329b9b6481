"""Holds on names within one process, for a service that has no shared ledger to hold them in (a search
function deployed without `VS_LEDGER_TABLE`): writes to one public_id are then serialised only among
the requests this process serves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from visual_search.ledger.port import HOLD_TTL_S, HOLD_WAIT_S, busy


class ProcessHolds:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}  # name -> (its lock, writers using it)

    @contextmanager
    def hold(self, name: str, wait_s: float = HOLD_WAIT_S, ttl_s: float = HOLD_TTL_S) -> Iterator[None]:
        """`ttl_s` is the port's; a thread that dies releases its hold as it unwinds."""
        with self._guard:
            lock, users = self._locks.get(name, (threading.Lock(), 0))
            self._locks[name] = (lock, users + 1)
        try:
            if not lock.acquire(timeout=wait_s):
                raise busy(name)
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._guard:
                lock, users = self._locks[name]
                if users == 1:
                    del self._locks[name]
                else:
                    self._locks[name] = (lock, users - 1)
