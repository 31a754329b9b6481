"""What the local server lets clients hold at once, in total and per client address: bytes of request
bodies, and requests being resolved.

A body is paid for before it is read (its Content-Length, or the body limit when it is chunked) and
paid back when its answer has been sent, so the bytes that bodies take in memory (read, then decoded
and parsed by the resolver) are bounded whatever clients send, signed or not: the same idea as the
decode gate (embedding/decode.py) one step earlier. A request that cannot be paid for waits, without
reading anything (uvicorn stops reading the socket once 64 KiB are buffered), until the budget frees or
its deadline passes.

Everything here runs on the event loop's thread: no locks.

    budget = BodyBudget(total=128 << 20, per_client=64 << 20)
    await budget.reserve("10.0.0.7", 5_000_000, timeout_s=10)   # TimeoutError when it never fits
    ...
    budget.release("10.0.0.7", 5_000_000)
"""

from __future__ import annotations

import asyncio
from collections import Counter


class BodyBudget:
    def __init__(self, total: int, per_client: int):
        self.total, self.per_client = total, per_client
        self.held = 0
        self.peak = 0  # the most ever held at once: what the memory bound rests on
        self._by_client: Counter[str] = Counter()
        self._freed: asyncio.Condition | None = None  # made on the loop that first waits

    def fits(self, client: str, size: int) -> bool:
        return self.held + size <= self.total and self._by_client[client] + size <= self.per_client

    async def reserve(self, client: str, size: int, timeout_s: float) -> None:
        """Hold `size` bytes for `client`, waiting up to `timeout_s` for them (TimeoutError)."""
        if size > min(self.total, self.per_client):
            raise ValueError(f"{size:,} bytes never fit a budget of {min(self.total, self.per_client):,}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # Checked again after every wake-up, and taken with no await between the check and the taking:
        # two waiters woken by one release must not both take what only one of them fits in.
        while not self.fits(client, size):
            if self._freed is None:
                self._freed = asyncio.Condition()
            async with self._freed:
                await asyncio.wait_for(self._freed.wait(), max(0.0, deadline - loop.time()))
        self.held += size
        self._by_client[client] += size
        self.peak = max(self.peak, self.held)

    def release(self, client: str, size: int) -> None:
        self.held -= size
        self._by_client[client] -= size
        if self._by_client[client] <= 0:
            del self._by_client[client]
        if self._freed is not None:
            asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        assert self._freed is not None
        async with self._freed:
            self._freed.notify_all()


class ClientSlots:
    """Requests being resolved, in total and per client address; `take` says whether one more may."""

    def __init__(self, total: int, per_client: int):
        self.total, self.per_client = total, per_client
        self.in_use = 0
        self._by_client: Counter[str] = Counter()

    def take(self, client: str) -> str | None:
        """None when a slot was taken; else why not (for the 429's message)."""
        if self.in_use >= self.total:
            return f"the server is resolving {self.in_use} requests; retry shortly"
        if self._by_client[client] >= self.per_client:
            return f"this client has {self._by_client[client]} requests being resolved; retry shortly"
        self.in_use += 1
        self._by_client[client] += 1
        return None

    def give_back(self, client: str) -> None:
        self.in_use -= 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]
