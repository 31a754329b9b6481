"""The ASGI side of the local server: an HTTP request becomes the API Gateway proxy event the search
Lambda receives, resolved by the same resolver, so auth, parsing and errors exist once.

What API Gateway does in front of the Lambda is done here, before the resolver sees anything: the body
is read as a stream and refused at the byte limit, the Host is validated, non-canonical paths are 404,
in-flight requests are capped, and every request leaves one access-log line. The one thing served
here directly is `/files/<key>`: the local image store's signed, expiring URLs (S3 presigned URLs on AWS).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import mimetypes
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from visual_search.api import params
from visual_search.api.app import build_resolver
from visual_search.api.errors import RETRY_AFTER_S, error_body
from visual_search.bootstrap import Services
from visual_search.server.events import lambda_context, to_proxy_event
from visual_search.settings import ServiceSettings
from visual_search.storage.local import LocalImageStore
from visual_search.storage.port import ObjectNotFound

log = logging.getLogger(__name__)
access_log = logging.getLogger("visual_search.server.access")

# A host name or IPv4 address, or a bracketed IPv6 literal, then an optional port (RFC 3986 authority
# without userinfo): nothing that could break out of a URL or an HTML attribute.
VALID_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?"
)
# The only paths that end with a slash: each redirects to its page, relative to itself.
FOLDERS = {"/", "/ui/"}
# Query parameters whose values are credentials: the access log shows that they were there, not what.
SECRET_PARAMS = {"api_secret", "signature"}

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_head_bytes: int
    max_concurrent_requests: int
    body_timeout_s: float

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Limits:
        return cls(
            max_body_bytes=params.max_body_bytes(settings.max_image_bytes),  # one limit, the parser's
            max_head_bytes=settings.server_max_header_bytes,
            max_concurrent_requests=settings.server_max_concurrent_requests,
            body_timeout_s=settings.server_body_timeout_s,
        )


class Refused(Exception):
    """An answer given by the server layer itself, before the resolver."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, close: bool = True):
        super().__init__(message)
        self.status, self.message, self.headers, self.close = status, message, headers or {}, close


class ResolverApp:
    """ASGI application: one resolver (thread-safe: api/concurrent_resolver.py) shared by a bounded
    pool of worker threads, one per request in flight."""

    def __init__(self, services: Services, limits: Limits | None = None):
        self.services = services
        self.limits = limits or Limits.from_settings(services.settings)
        self.resolver = build_resolver(services)
        self.executor = ThreadPoolExecutor(self.limits.max_concurrent_requests, "vs-request")
        self.in_flight = 0  # touched only on the event loop's thread

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        status = 500
        try:
            status = await self._answer(scope, receive, send, request_id)
        finally:
            access_log.info(
                "%s %s %d %.1fms %s",
                scope["method"],
                loggable_target(scope),
                status,
                (time.perf_counter() - started) * 1000,
                request_id,
            )

    async def _answer(self, scope: dict, receive: Receive, send: Send, request_id: str) -> int:
        try:
            if self.in_flight >= self.limits.max_concurrent_requests:
                raise Refused(
                    429,
                    f"the server is resolving {self.in_flight} requests; retry shortly",
                    {"Retry-After": str(RETRY_AFTER_S)},
                )
            self.in_flight += 1
            try:
                status, headers, data = await self._handle(scope, receive, request_id)
            finally:
                self.in_flight -= 1
        except Refused as refused:
            status, data = refused.status, error_body(refused.message).encode()
            headers = {"Content-Type": "application/json", **refused.headers}
            if refused.close:
                headers["Connection"] = "close"
        except Exception:
            log.exception("unhandled error in the server layer (request %s)", request_id)
            status = 500
            headers = {"Content-Type": "application/json"}
            data = error_body("internal error; the X-Request-Id identifies it in the logs").encode()
        headers.setdefault("X-Request-Id", request_id)
        await send_response(send, status, headers, data)
        return status

    async def _handle(self, scope: dict, receive: Receive, request_id: str) -> tuple[int, dict, bytes]:
        # h11 bounds a head it is still waiting for; one that arrived whole in a single read is
        # measured here.
        head = len(scope["raw_path"]) + len(scope["query_string"])
        head += sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if head > self.limits.max_head_bytes:
            raise Refused(400, f"request head over {self.limits.max_head_bytes:,} bytes")
        headers = request_headers(scope)
        headers["host"] = checked_host(headers.get("host"), scope.get("server"))
        # Set from the socket, never taken from the client (API Gateway sets it in front of the Lambda).
        headers["x-forwarded-proto"] = scope.get("scheme", "http")
        raw_path = scope["raw_path"].decode("ascii")
        if not is_canonical(unquote(raw_path)):
            # `///ui/index.html` or `/ui/index.html/` would load the page under another base: the browser
            # resolves its relative links against another path or (`//ui/...`) another host. One
            # spelling per resource; everything else is 404.
            raise Refused(404, "no such route", close=False)
        body = await self._read_body(scope, headers, receive)
        loop = asyncio.get_running_loop()
        if raw_path.startswith("/files/") and scope["method"] in ("GET", "HEAD"):
            query = scope["query_string"]
            return await loop.run_in_executor(self.executor, self._serve_file, raw_path, query)
        target = raw_path + ("?" + scope["query_string"].decode("ascii") if scope["query_string"] else "")
        client = scope.get("client") or ("", 0)
        event = to_proxy_event(scope["method"], target, headers, body, client[0], request_id)
        result = await loop.run_in_executor(
            self.executor, self.resolver.resolve, event, lambda_context(request_id)
        )
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        out = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out[name] = ", ".join(values)
        return result["statusCode"], out, data

    async def _read_body(self, scope: dict, headers: dict[str, str], receive: Receive) -> bytes:
        """The body, read as it arrives; refused the moment it passes the limit or the deadline."""
        limit = self.limits.max_body_bytes
        if "content-length" in headers and "transfer-encoding" in headers:
            # h11 would follow the chunked framing; a proxy in front might follow the length.
            raise Refused(400, "malformed HTTP request: both Content-Length and Transfer-Encoding")
        declared = headers.get("content-length")
        if declared is not None and int(declared) > limit:  # h11 has checked that it is digits
            raise Refused(413, too_large(int(declared), limit))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_s
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise Refused(
                    408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s"
                ) from None
            if message["type"] == "http.disconnect":
                raise Refused(400, "the client closed the connection mid-body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refused(413, too_large(size, limit, at_least=True))
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _serve_file(self, raw_path: str, query_string: bytes) -> tuple[int, dict, bytes]:
        store = self.services.store
        key = unquote(raw_path.removeprefix("/files/"))
        query = {k: v[-1] for k, v in parse_qs(query_string.decode("ascii")).items()}
        if not isinstance(store, LocalImageStore) or not store.verify(
            key, query.get("expires", ""), query.get("signature", "")
        ):
            raise Refused(403, "missing, invalid or expired file signature", close=False)
        try:
            obj = store.get(key)
        except ObjectNotFound:
            raise Refused(404, "no such file", close=False) from None
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        return 200, {"Content-Type": content_type, "Cache-Control": "private, max-age=3600"}, obj.data

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        sweeper: asyncio.Task | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                sweeper = asyncio.create_task(self._sweep_upload_staging())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if sweeper is not None:
                    sweeper.cancel()
                self.executor.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _sweep_upload_staging(self) -> None:
        """Expire abandoned upload_large parts even when no other part arrives to do it (on AWS, the
        bucket's lifecycle rule does it for the Lambdas)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.executor, self.services.chunks.sweep)
            except Exception:
                log.exception("sweeping upload_large's staging failed; next try in the next interval")
            await asyncio.sleep(self.services.settings.upload_sweep_interval_s)


def request_headers(scope: dict) -> dict[str, str]:
    """Header names lower-cased (as HTTP/2 and API Gateway's v2 events have them); repeated headers
    joined with ", " as RFC 9110 allows."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def checked_host(host: str | None, server: tuple[str, int] | None) -> str:
    """The Host the file URLs are built on: the client's if well-formed; the listening address (with its
    port) when there is none (HTTP/1.0); a 400 when it could inject anything into a URL."""
    if host is None or host == "":
        address, port = server or ("127.0.0.1", 0)
        return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    if not VALID_HOST.fullmatch(host):
        raise Refused(400, "invalid Host header")
    return host


def is_canonical(path: str) -> bool:
    """No empty, `.` or `..` segment; a trailing slash only on a folder that has a page (FOLDERS)."""
    if path in FOLDERS:
        return True
    return path.startswith("/") and all(s not in ("", ".", "..") for s in path[1:].split("/"))


def loggable_target(scope: dict) -> str:
    """The path and query with credential values replaced, for the access log."""
    path = scope["raw_path"].decode("ascii", "replace")
    query = scope.get("query_string", b"").decode("ascii", "replace")
    if not query:
        return path
    pairs = []
    for pair in query.split("&"):
        name, sep, _ = pair.partition("=")
        pairs.append(f"{name}{sep}***" if unquote(name).lower() in SECRET_PARAMS and sep else pair)
    return path + "?" + "&".join(pairs)


def too_large(size: int, limit: int, at_least: bool = False) -> str:
    # Cloudinary's wording for an oversized upload.
    got = f"at least {size:,}" if at_least else f"{size:,}"
    return f"File size too large. Got {got} bytes. Maximum is {limit:,}."


async def send_response(send: Send, status: int, headers: dict[str, Any], data: bytes) -> None:
    out = [
        (name.lower().encode("latin-1"), str(value).encode("latin-1"))
        for name, value in headers.items()
        if name.lower() not in ("content-length", "transfer-encoding", "server")
    ]
    out.append((b"content-length", str(len(data)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": data})
