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
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from visual_search.api import params
from visual_search.api.app import build_resolver
from visual_search.api.errors import RETRY_AFTER_S, error_body
from visual_search.api.upload_signature import verify_upload
from visual_search.bootstrap import Services
from visual_search.embedding.decode import image_content_type
from visual_search.server.budget import BodyBudget, ClientSlots
from visual_search.server.events import lambda_context, to_proxy_event
from visual_search.server.upload_gate import Refusal, SignedFieldsFirst, gate_for
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
# The API's routes: the only ones that read a request body.
API_PREFIX = "/v1_1/"
# Query parameters whose values are credentials: the access log shows that they were there, not what.
SECRET_PARAMS = {"api_secret", "signature"}

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_head_bytes: int
    max_concurrent_requests: int
    max_concurrent_requests_per_client: int
    body_budget_bytes: int
    body_timeout_s: float
    body_grace_s: float
    body_min_rate: int

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Limits:
        max_body = params.max_body_bytes(settings.max_image_bytes)  # one limit, the parser's
        return cls(
            max_body_bytes=max_body,
            max_head_bytes=settings.server_max_header_bytes,
            max_concurrent_requests=settings.server_max_concurrent_requests,
            max_concurrent_requests_per_client=settings.server_max_concurrent_requests_per_client,
            # One client may hold half the budget; every budget holds at least one body of the limit.
            body_budget_bytes=max(settings.server_body_budget_bytes, 2 * max_body),
            body_timeout_s=settings.server_body_timeout_s,
            body_grace_s=settings.server_body_grace_s,
            body_min_rate=settings.server_body_min_rate,
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
        self.limits = limits = limits or Limits.from_settings(services.settings)
        self.resolver = build_resolver(services)
        self.executor = ThreadPoolExecutor(limits.max_concurrent_requests, "vs-request")
        # Both touched only on the event loop's thread. A request takes a slot once its body is read:
        # a body still trickling in holds only its bytes of the budget, never a slot.
        self.slots = ClientSlots(limits.max_concurrent_requests, limits.max_concurrent_requests_per_client)
        self.bodies = BodyBudget(limits.body_budget_bytes, limits.body_budget_bytes // 2)

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
            status, headers, data = await self._handle(scope, receive, request_id)
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
        client = (scope.get("client") or ("", 0))[0]
        size = self._body_size(raw_path, headers)
        if size:
            try:
                await self.bodies.reserve(client, size, self.limits.body_timeout_s)
            except TimeoutError:
                raise Refused(
                    429,
                    "the server holds as many request bodies as it may; retry shortly",
                    {"Retry-After": str(RETRY_AFTER_S)},
                ) from None
        held = size

        def release() -> None:  # once: when the answer is ready, or when a refused body stops being kept
            nonlocal held
            if held:
                self.bodies.release(client, held)
                held = 0

        try:
            gate = gate_for(scope["method"], raw_path, scope["query_string"], headers, self._verify_upload)
            body = await self._read_body(receive, gate, release) if size else b""
            event = self._event(scope, raw_path, headers, body, client, request_id)
            del body  # the event holds it (base64) while the resolver runs; nothing else needs to
            refused = self.slots.take(client)
            if refused is not None:
                raise Refused(429, refused, {"Retry-After": str(RETRY_AFTER_S)})
            try:
                return await self._resolve(scope, raw_path, event, request_id)
            finally:
                self.slots.give_back(client)
        finally:
            release()

    @staticmethod
    def _event(
        scope: dict, raw_path: str, headers: dict[str, str], body: bytes, client: str, request_id: str
    ) -> dict:
        target = raw_path + ("?" + scope["query_string"].decode("ascii") if scope["query_string"] else "")
        try:
            return to_proxy_event(scope["method"], target, headers, body, client, request_id)
        except UnicodeDecodeError:
            raise Refused(
                400, "the path or query string is not UTF-8 once percent-decoded", close=False
            ) from None

    async def _resolve(
        self, scope: dict, raw_path: str, event: dict, request_id: str
    ) -> tuple[int, dict, bytes]:
        loop = asyncio.get_running_loop()
        if raw_path.startswith("/files/") and scope["method"] in ("GET", "HEAD"):
            query = scope["query_string"]
            return await loop.run_in_executor(self.executor, self._serve_file, raw_path, query)
        result = await loop.run_in_executor(
            self.executor, self.resolver.resolve, event, lambda_context(request_id)
        )
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        out = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out[name] = ", ".join(values)
        return result["statusCode"], out, data

    def _body_size(self, raw_path: str, headers: dict[str, str]) -> int:
        """The bytes the request's body may take (its Content-Length; the limit when chunked), checked
        before any is read."""
        limit = self.limits.max_body_bytes
        if "content-length" in headers and "transfer-encoding" in headers:
            # h11 would follow the chunked framing; a proxy in front might follow the length.
            raise Refused(400, "malformed HTTP request: both Content-Length and Transfer-Encoding")
        declared = headers.get("content-length")
        size = limit if "transfer-encoding" in headers else int(declared or 0)  # h11 checked the digits
        if size and not raw_path.startswith(API_PREFIX):
            # The page, its files, /health, /docs: nothing there reads a body, so none is read.
            raise Refused(413, "this route takes no request body")
        if size > limit:
            raise Refused(413, too_large(size, limit))
        return size

    def _verify_upload(self, fields: dict[str, str]) -> None:
        settings = self.services.settings
        verify_upload(fields, settings.api_key, settings.api_secret_text)

    async def _read_body(
        self,
        receive: Receive,
        gate: SignedFieldsFirst | None = None,
        unkept: Callable[[], None] = lambda: None,
    ) -> bytes:
        """The body, read as it arrives; refused the moment it passes the limit, the deadline or (after
        the grace period) the minimum mean rate. An upload whose fields before its file fail (`gate`) is
        refused once its body has arrived, the rest read and dropped as it comes (`unkept` is called then):
        HTTP/1.1 clients write the whole body before they read an answer, and Java's SDK reports a
        broken pipe, not the 401, when the connection closes under it."""
        limit, limits = self.limits.max_body_bytes, self.limits
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + limits.body_timeout_s
        chunks: list[bytes] = []
        size = 0
        refusal: str | None = None
        while True:
            # The time this body may take so far: the grace period, plus a second per min_rate bytes.
            allowed = min(deadline, started + limits.body_grace_s + size / limits.body_min_rate)
            message = await self._next_message(receive, allowed, deadline)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refused(413, too_large(size, limit, at_least=True))
            if refusal is None:
                chunks.append(chunk)
            if gate is not None and refusal is None:
                try:
                    gate.feed(chunk)
                except Refusal as refused:
                    refusal, chunks = str(refused), []
                    unkept()
            if not message.get("more_body"):
                if refusal is not None:
                    raise Refused(401, refusal)
                return b"".join(chunks)

    async def _next_message(self, receive: Receive, allowed: float, deadline: float) -> dict:
        loop = asyncio.get_running_loop()
        try:
            message = await asyncio.wait_for(receive(), max(0.0, allowed - loop.time()))
        except TimeoutError:
            limits = self.limits
            if allowed < deadline:
                reason = f"the request body arrived slower than {limits.body_min_rate:,} bytes/s"
            else:
                reason = f"the request body did not arrive within {limits.body_timeout_s:g} s"
            raise Refused(408, reason) from None
        if message["type"] == "http.disconnect":
            raise Refused(400, "the client closed the connection mid-body")
        return message

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
        return 200, file_headers(key, obj.data), obj.data

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


def file_headers(key: str, data: bytes) -> dict[str, str]:
    """A stored file's headers, on the origin whose page holds the API secret: its type is what its
    bytes decode as (one of the image formats ingest accepts), never what its name says, so a stored
    `evil.html` or an SVG is never run as a page; anything else is a download. nosniff keeps browsers
    from guessing otherwise, and the sandbox CSP disarms whatever a browser would render anyway."""
    content_type = image_content_type(data)
    name = quote(key.rpartition("/")[2], safe="")
    disposition = "inline" if content_type.startswith("image/") else "attachment"
    return {
        "Content-Type": content_type,
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{name}",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600",
    }


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
