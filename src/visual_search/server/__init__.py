"""The local HTTP server: uvicorn (h11) serving the same resolver the search Lambda runs.

Why uvicorn on h11: uvicorn is the most used maintained ASGI server and exposes the limits a public
endpoint needs (keep-alive, head size, TLS); h11 is a strict, pure-Python HTTP/1.1 parser (malformed
framing is an error, not a guess) that needs no compiled wheel. The limits uvicorn leaves to a proxy are
added in protocol.py (head deadline, connection caps) and asgi.py (streamed body limit, deadline and
minimum rate, the body budget, in-flight caps, Host validation, access log).

    server = LocalServer(services, "127.0.0.1", 0)
    server.start()          # in a background thread (tests, benchmarks); or server.run() to block (the CLI)
    server.url, server.port
    server.stop()
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn

from visual_search.bootstrap import Services
from visual_search.server.asgi import Limits, ResolverApp
from visual_search.server.protocol import protocol_class

log = logging.getLogger(__name__)


class LocalServer:
    def __init__(
        self,
        services: Services,
        host: str = "127.0.0.1",
        port: int = 8000,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ):
        settings = services.settings
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both a certificate and its key")
        self.app = ResolverApp(services, Limits.from_settings(settings))
        self.scheme = "https" if tls_cert else "http"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Bound here rather than by uvicorn, so the port (0: any free one) is known before serving.
        # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on sockets whose `proto` says TCP,
        # and accepted sockets inherit it. Without it every response (head and body are two writes)
        # waited for the client's delayed ACK: about 40 ms on each kept-alive request.
        self.socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        # Listening from here on: connections made before run() wait in the backlog, not refused.
        self.socket.listen(settings.server_max_connections)
        self.port: int = self.socket.getsockname()[1]
        self.host = host
        config = uvicorn.Config(
            self.app,
            http=protocol_class(
                settings.server_max_connections,
                settings.server_max_connections_per_client,
                settings.server_header_timeout_s,
            ),
            lifespan="on",
            loop="asyncio",
            ws="none",
            interface="asgi3",
            log_config=None,  # the application's logging configuration stands
            access_log=False,  # ours (asgi.py) redacts credentials and carries the X-Request-Id
            server_header=False,
            proxy_headers=False,  # no proxy in front: the client's X-Forwarded-* are not trusted
            timeout_keep_alive=settings.server_keep_alive_s,  # type: ignore[arg-type]
            h11_max_incomplete_event_size=settings.server_max_header_bytes,
            backlog=settings.server_max_connections,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def run(self) -> None:
        """Serve until interrupted (SIGINT/SIGTERM when on the main thread)."""
        self.server.run(sockets=[self.socket])

    def start(self, timeout_s: float = 10.0) -> LocalServer:
        """Serve on a background thread; returns once the server accepts connections."""
        self._thread = threading.Thread(target=self.run, name="vs-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.socket.close()


def serve(
    services: Services,
    host: str = "127.0.0.1",
    port: int = 8000,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> LocalServer:
    """Create the server (call run() on it, or start() it on a thread in tests)."""
    return LocalServer(services, host, port, tls_cert, tls_key)
