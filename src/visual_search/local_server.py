"""The local HTTP server. It only translates protocols: each HTTP request becomes an API Gateway
proxy event for the same resolver the Lambda runs, so auth, parsing and errors exist once.

The one thing it serves itself is `/files/<key>`: the local image store's signed, expiring URLs
(on AWS, S3 presigned URLs play that part).
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import queue
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from visual_search.api.app import build_resolver
from visual_search.api.errors import error_body
from visual_search.bootstrap import Services
from visual_search.storage.local import LocalImageStore
from visual_search.storage.port import ObjectNotFound

log = logging.getLogger(__name__)
BODY_OVERHEAD = 1024 * 1024  # multipart framing and base64 on top of the image byte limit


def to_proxy_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str) -> dict:
    """An API Gateway REST (v1) proxy event, as API Gateway would build it."""
    parts = urlsplit(raw_path)
    multi_query = parse_qs(parts.query, keep_blank_values=True) or None
    request_id = str(uuid.uuid4())
    return {
        "resource": parts.path,
        "path": unquote(parts.path),
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "local",
            "httpMethod": method,
            "path": parts.path,
            "resourcePath": parts.path,
            "identity": {"sourceIp": source_ip},
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }


def lambda_context() -> Any:
    return SimpleNamespace(
        function_name="visual-search-local",
        memory_limit_in_mb=0,
        invoked_function_arn="local",
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], services: Services):
        self.services = services
        self.max_body = services.settings.max_image_bytes * 4 // 3 + BODY_OVERHEAD
        # A resolver keeps per-request state (route arguments) on itself: each request borrows its own.
        self._resolvers: queue.SimpleQueue[APIGatewayRestResolver] = queue.SimpleQueue()
        super().__init__(address, _Handler)

    def resolve(self, event: dict) -> dict:
        try:
            resolver = self._resolvers.get_nowait()
        except queue.Empty:
            resolver = build_resolver(self.services)
        try:
            return resolver.resolve(event, lambda_context())
        finally:
            self._resolvers.put(resolver)


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle on, keep-alive clients wait ~40 ms for the
    # delayed ACK before the body leaves.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        if self.path.startswith("/files/") and self.command == "GET":
            return self._serve_file()
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.server.max_body:
            self.close_connection = True
            return self._send(
                400,
                {"Content-Type": "application/json"},
                error_body(f"request body over {self.server.max_body:,} bytes").encode(),
            )
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        event = to_proxy_event(self.command, self.path, headers, body, self.client_address[0])
        result = self.server.resolve(event)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        out_headers = {k: v for k, v in (result.get("headers") or {}).items()}
        for k, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[k] = ", ".join(values)
        self._send(result["statusCode"], out_headers, data)

    def _serve_file(self) -> None:
        store = self.server.services.store
        parts = urlsplit(self.path)
        key = unquote(parts.path.removeprefix("/files/"))
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not isinstance(store, LocalImageStore) or not store.verify(
            key, query.get("expires", ""), query.get("signature", "")
        ):
            return self._send(
                403,
                {"Content-Type": "application/json"},
                error_body("missing, invalid or expired file signature").encode(),
            )
        try:
            obj = store.get(key)
        except ObjectNotFound:
            return self._send(404, {"Content-Type": "application/json"}, error_body("no such file").encode())
        content_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
        self._send(200, {"Content-Type": content_type, "Cache-Control": "private, max-age=3600"}, obj.data)

    def _send(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, fmt: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), fmt % args)


def serve(services: Services, host: str = "127.0.0.1", port: int = 8000) -> LocalServer:
    """Create the server (call serve_forever on it, or run it in a thread in tests)."""
    return LocalServer((host, port), services)
