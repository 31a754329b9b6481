"""uvicorn's h11 protocol with the limits it leaves to a proxy in front of it.

uvicorn bounds idle time between requests (`timeout_keep_alive`) and the size of a request head
(`h11_max_incomplete_event_size`), but not the time a client may take to send the head (a slowloris
client dripping one byte at a time holds its connection for ever) nor the number of connections
(`limit_concurrency` answers a text/plain 503 and still keeps every idle connection open), and its own
400 for malformed framing is text/plain. Here: a deadline for each request head, a connection cap in
total and per client address that refuses with Cloudinary's error shape, and JSON for the 400.

`H11Protocol`'s methods overridden here (`connection_made`, `connection_lost`, `handle_events`,
`on_response_complete`, `send_400_response`) and its attributes read (`conn`, `transport`, `loop`,
`connections`) are uvicorn's internals, pinned by locks/*.txt: tests/functional/test_local_server.py
(framing, head deadline, caps) fails if a release changes them; run it when raising the pin.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from visual_search.api.errors import RETRY_AFTER_S, error_body

# The same log as asgi.py's request lines; answers given here have no method, path or request id.
access_log = logging.getLogger("visual_search.server.access")


def raw_response(status: int, reason: str, message: str, extra: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response that closes the connection, for answers given outside h11's
    request cycle (before a request exists, or after its framing failed). Logged as it leaves."""
    body = error_body(message).encode()
    request_id = str(uuid.uuid4())
    headers = {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "connection": "close",
        "x-request-id": request_id,
        **(extra or {}),
    }
    access_log.info("- - %d - %s", status, request_id)
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("ascii") + b"\r\n" + body


class LimitedH11Protocol(H11Protocol):
    """Set per server by `protocol_class`, from the settings: the caps, the head deadline and the
    per-address counts."""

    max_connections: int
    max_connections_per_client: int
    head_timeout_s: float
    per_client: Counter[str]  # open connections by client address, on the event loop's thread only

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else ""
        self.per_client[self._address] += 1
        super().connection_made(transport)
        refused = None
        if len(self.connections) > self.max_connections:
            refused = f"the server has {self.max_connections} connections open; retry shortly"
        elif self.per_client[self._address] > self.max_connections_per_client:
            refused = f"this client has {self.max_connections_per_client} connections open; retry shortly"
        if refused is not None:
            # Refused before reading anything: 429 as for every "busy, retry" answer (see api/errors.py).
            self.logger.warning("connection refused: %s", refused)
            transport.write(
                raw_response(429, "Too Many Requests", refused, {"retry-after": str(RETRY_AFTER_S)})
            )
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self.per_client[self._address] -= 1
        if self.per_client[self._address] <= 0:
            del self.per_client[self._address]
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a whole request head has arrived
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def send_400_response(self, msg: str) -> None:
        # h11 refused the request's framing (Content-Length: -1 or abc, bad chunk sizes, a request line
        # that is not ASCII, a head over the size limit): the connection cannot be resynchronised.
        message = "malformed HTTP request (request line, headers or body framing)"
        self.transport.write(raw_response(400, "Bad Request", message))
        self.transport.close()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("connection closed: no complete request head in %ss", self.head_timeout_s)
            self.transport.close()


def protocol_class(
    max_connections: int, max_connections_per_client: int, head_timeout_s: float
) -> type[LimitedH11Protocol]:
    return type(
        "ServerH11Protocol",
        (LimitedH11Protocol,),
        {
            "max_connections": max_connections,
            "max_connections_per_client": max_connections_per_client,
            "head_timeout_s": head_timeout_s,
            "per_client": Counter(),
        },
    )
