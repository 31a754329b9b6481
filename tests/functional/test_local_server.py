"""`visual-search serve` as a client on the network sees it: framing, limits, timeouts, TLS, the shape of
every answer, the access log, the URLs it hands out. Each test drives a real server over a socket (raw
sockets where an HTTP client would refuse to send what an attacker sends)."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import urllib3

from tests.fixtures.tls import self_signed_certificate
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD
from visual_search.api.http import Http
from visual_search.server import LocalServer

AUTH = "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
# Short limits, so the timeouts are observable in a fast test.
LIMITS = {
    "max_image_bytes": 512 * 1024,
    "server_max_connections": 6,
    "server_max_concurrent_requests": 2,
    "server_header_timeout_s": 0.6,
    "server_body_timeout_s": 0.8,
    "server_keep_alive_s": 0.6,
}
BODY_LIMIT = LIMITS["max_image_bytes"] * 4 // 3 + 1024 * 1024


def with_settings(services, **overrides):
    return dataclasses.replace(services, settings=services.settings.model_copy(update=overrides))


@pytest.fixture(scope="module")
def limited(services) -> Iterator[LocalServer]:
    server = LocalServer(with_settings(services, **LIMITS), "127.0.0.1", 0).start()
    yield server
    server.stop()


class Reply:
    def __init__(self, raw: bytes):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split(" ")[1]) if lines[0].startswith("HTTP/") else 0
        self.headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> dict:
        return json.loads(self.body)


def connect(server: LocalServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_reply(sock: socket.socket, timeout: float = 10.0) -> Reply:
    """One response: read until its Content-Length is complete or the server closes."""
    sock.settimeout(timeout)
    data = b""
    while True:
        _, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = Reply(data).headers.get("content-length")
            if length is not None and len(body) >= int(length):
                return Reply(data)
        chunk = sock.recv(65536)
        if not chunk:
            return Reply(data)
        data += chunk


def exchange(server: LocalServer, raw: bytes) -> Reply:
    with connect(server) as sock:
        sock.sendall(raw)
        return read_reply(sock)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (EOF or reset) within `seconds`, reading whatever it
    sends first."""
    deadline = time.monotonic() + seconds
    sock.setblocking(False)
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.05)
        if ready:
            try:
                if not sock.recv(65536):
                    return True
            except ConnectionResetError:
                return True
    return False


def assert_cloudinary_error(reply: Reply, status: int) -> str:
    assert reply.status == status, reply.body[:300]
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["x-request-id"]
    body = reply.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message"}
    return body["error"]["message"]


# -- body framing and size


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "0x10", "5, 6"])
def test_a_malformed_content_length_is_a_json_400_not_a_read_to_end_of_stream(limited, length):
    reply = exchange(
        limited, f"POST {SEARCH} HTTP/1.1\r\nHost: a\r\nContent-Length: {length}\r\n\r\n".encode()
    )
    assert_cloudinary_error(reply, 400)


@pytest.mark.parametrize("pieces", [1, 40], ids=["in-one-read", "dripped"])
def test_a_request_head_over_the_size_limit_is_a_json_400(limited, pieces):
    raw = f"GET /health HTTP/1.1\r\nHost: a\r\nX-Padding: {'p' * 20_000}\r\n\r\n".encode()
    with connect(limited) as sock:
        size = len(raw) // pieces + 1
        try:
            for start in range(0, len(raw), size):
                sock.sendall(raw[start : start + size])
                time.sleep(0.005)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert_cloudinary_error(read_reply(sock), 400)


def test_content_length_together_with_chunked_is_refused_as_a_smuggling_attempt(limited):
    raw = (
        f"POST {SEARCH} HTTP/1.1\r\nHost: a\r\nAuthorization: {AUTH}\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
        "8\r\ntext=red\r\n0\r\n\r\n"
    )
    assert_cloudinary_error(exchange(limited, raw.encode()), 400)


def test_a_bad_chunk_size_is_a_json_400(limited):
    raw = f"POST {SEARCH} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n"
    assert_cloudinary_error(exchange(limited, raw.encode()), 400)


def test_a_non_ascii_file_url_signature_is_a_json_400_not_a_dropped_connection(limited):
    raw = b"GET /files/shoes/item-01.jpg?expires=1&signature=\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"
    assert_cloudinary_error(exchange(limited, raw), 400)


def test_a_declared_body_over_the_limit_is_a_413_before_authentication_and_before_reading(limited):
    with connect(limited) as sock:
        sock.sendall(
            f"POST {SEARCH} HTTP/1.1\r\nHost: a\r\nContent-Length: {BODY_LIMIT + 1}\r\n\r\n".encode()
        )
        reply = read_reply(sock, timeout=5)  # no body sent: answered from the head alone
        assert "too large" in assert_cloudinary_error(reply, 413)
        assert reply.headers["connection"] == "close"
        assert closed_within(sock, 2)


def test_a_chunked_body_is_refused_with_413_as_soon_as_it_passes_the_limit(limited):
    """Without a declared length: the server counts while reading and answers mid-stream, so a client
    sending 40 times the limit is cut off long before the end (unauthenticated, too)."""
    chunk = b"x" * 256 * 1024
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with connect(limited) as sock:
        sock.sendall(f"POST {SEARCH} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        try:
            while sent < 40 * BODY_LIMIT and not select.select([sock], [], [], 0)[0]:
                sock.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply = read_reply(sock)
    assert_cloudinary_error(reply, 413)
    assert sent < 10 * BODY_LIMIT


def test_a_chunked_body_is_read_whole_and_searched(limited):
    """Cloudinary's Node SDK uploads with Transfer-Encoding: chunked."""
    http = urllib3.PoolManager(retries=False, timeout=30)
    response = http.request(
        "POST",
        limited.url + SEARCH,
        body=iter([b"text=red", b"&max_results=", b"4"]),
        chunked=True,
        headers={"Authorization": AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200, response.data
    assert len(json.loads(response.data)["resources"]) == 4


# -- timeouts and caps


def test_an_idle_connection_that_never_sends_a_request_is_closed(limited):
    with connect(limited) as sock:
        assert closed_within(sock, LIMITS["server_header_timeout_s"] + 2)


def test_a_slowloris_head_dripped_a_byte_at_a_time_is_cut_off_at_the_head_deadline(limited):
    with connect(limited) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < LIMITS["server_header_timeout_s"] + 3:
            try:
                sock.sendall(b"X")  # one more byte of a header that never ends
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_within(sock, 0.1):
                closed = True
                break
            sock.setblocking(True)
    assert closed


def test_a_body_that_stops_arriving_is_a_408_at_the_body_deadline(limited):
    with connect(limited) as sock:
        sock.sendall(f"POST {SEARCH} HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\ntext=r".encode())
        reply = read_reply(sock, timeout=LIMITS["server_body_timeout_s"] + 3)
    assert_cloudinary_error(reply, 408)


def test_keep_alive_serves_several_requests_on_one_connection_then_closes_it_when_idle(limited):
    with connect(limited) as sock:
        for _ in range(3):
            sock.sendall(f"GET /health HTTP/1.1\r\nHost: a\r\nAuthorization: {AUTH}\r\n\r\n".encode())
            assert read_reply(sock).status == 200
        assert closed_within(sock, LIMITS["server_keep_alive_s"] + 2)


def test_connections_over_the_cap_are_answered_429_and_closed(limited):
    cap = LIMITS["server_max_connections"]
    held = [connect(limited) for _ in range(cap)]
    try:
        time.sleep(0.1)
        with connect(limited) as extra:
            reply = read_reply(extra, timeout=5)
            assert "connections" in assert_cloudinary_error(reply, 429)
            assert reply.headers["retry-after"]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)  # once they are closed, a new connection is served
    reply = exchange(limited, f"GET /health HTTP/1.1\r\nHost: a\r\nAuthorization: {AUTH}\r\n\r\n".encode())
    assert reply.status == 200


def test_requests_over_the_concurrency_cap_are_a_429_with_retry_after(limited, monkeypatch):
    inside, release = threading.Semaphore(0), threading.Event()
    check_credentials = Http.check_credentials

    def slow_check_credentials(self):
        check_credentials(self)
        inside.release()
        release.wait(10)

    monkeypatch.setattr(Http, "check_credentials", slow_check_credentials)
    http = urllib3.PoolManager(retries=False, timeout=30, maxsize=4)
    statuses: list[int] = []

    def health() -> None:
        statuses.append(http.request("GET", limited.url + "/health", headers={"Authorization": AUTH}).status)

    busy = [threading.Thread(target=health) for _ in range(LIMITS["server_max_concurrent_requests"])]
    for thread in busy:
        thread.start()
    for _ in busy:
        assert inside.acquire(timeout=10)
    try:
        over = http.request("GET", limited.url + "/health", headers={"Authorization": AUTH})
        assert over.status == 429
        assert over.headers["Retry-After"]
        assert json.loads(over.data)["error"]["message"]
    finally:
        release.set()
        for thread in busy:
            thread.join(10)
    assert statuses == [200] * len(busy)


# -- TLS


def test_tls_cert_and_key_serve_https_with_https_file_urls(services, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    server = LocalServer(services, "127.0.0.1", 0, tls_cert=cert, tls_key=key).start()
    try:
        assert server.url.startswith("https://")
        http = urllib3.PoolManager(retries=False, timeout=30, ca_certs=str(cert), assert_hostname="localhost")
        response = http.request(
            "GET",
            server.url + SEARCH,
            fields={"text": "shoe", "max_results": "1"},
            headers={"Authorization": AUTH},
        )
        assert response.status == 200
        url = json.loads(response.data)["resources"][0]["secure_url"]
        assert url.startswith(f"https://127.0.0.1:{server.port}/files/")
        assert http.request("GET", url).status == 200
        with pytest.raises(urllib3.exceptions.ProtocolError):  # plain HTTP on the TLS port gets nowhere
            urllib3.PoolManager(retries=False, timeout=5).request(
                "GET", f"http://127.0.0.1:{server.port}/health"
            )
    finally:
        server.stop()


def test_tls_handshake_uses_the_given_certificate(services, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    server = LocalServer(services, "127.0.0.1", 0, tls_cert=cert, tls_key=key).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        server.stop()


# -- shape of every answer


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "PUT", "PATCH", "TRACE", "BREW"])
@pytest.mark.parametrize("path", [SEARCH, "/", "/nowhere"])
def test_every_method_and_path_answers_json_without_a_version_banner(limited, method, path):
    reply = exchange(limited, f"{method} {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
    assert 400 <= reply.status < 500, reply.status
    assert reply.headers["content-type"].startswith("application/json")
    assert "server" not in reply.headers
    if method != "HEAD":
        assert set(reply.json()) == {"error"}


def test_no_response_names_the_server_software(limited):
    for raw in (
        f"GET /health HTTP/1.1\r\nHost: a\r\nAuthorization: {AUTH}\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
    ):
        assert "server" not in exchange(limited, raw.encode()).headers


# -- access log


def test_each_request_logs_one_line_with_method_path_status_ms_and_request_id_but_no_secrets(limited, caplog):
    caplog.set_level(logging.INFO, logger="visual_search.server.access")
    http = urllib3.PoolManager(retries=False, timeout=30)
    search = http.request(
        "GET",
        limited.url + SEARCH,
        fields={"text": "shoe", "max_results": "1"},
        headers={"Authorization": AUTH},
    )
    file_url = json.loads(search.data)["resources"][0]["secure_url"]
    signature = file_url.rsplit("signature=", 1)[1]
    opened = http.request("GET", file_url)
    leaked = http.request("GET", limited.url + SEARCH + "?text=x&api_secret=hunter2-secret")
    time.sleep(0.1)  # the line is written once the response has left
    everything = [r.getMessage() for r in caplog.records if r.name == "visual_search.server.access"]
    ids = [r.headers["X-Request-Id"] for r in (search, opened, leaked)]
    lines = [line for line in everything if line.rsplit(" ", 1)[-1] in ids]
    for line, response, status in zip(lines, (search, opened, leaked), (200, 200, 401), strict=True):
        method, _, logged_status, ms, request_id = line.split(" ")
        assert method == "GET"
        assert int(logged_status) == status == response.status
        assert ms.endswith("ms")
        assert float(ms[:-2]) >= 0
        assert request_id == response.headers["X-Request-Id"]
    assert lines[0].split(" ")[1].startswith(SEARCH + "?text=shoe")
    assert lines[1].split(" ")[1].startswith("/files/")
    assert "signature=***" in lines[1]
    assert signature not in "\n".join(everything)
    assert "hunter2-secret" not in "\n".join(everything)
    assert "api_secret=***" in lines[2]


# -- URLs handed out


def search_urls(server: LocalServer, host_header: bytes | None, version: str = "1.1") -> Reply:
    host = b"Host: " + host_header + b"\r\n" if host_header is not None else b""
    raw = (
        f"GET {SEARCH}?text=shoe&max_results=1 HTTP/{version}\r\n".encode()
        + host
        + f"Authorization: {AUTH}\r\nConnection: close\r\n\r\n".encode()
    )
    return exchange(server, raw)


@pytest.mark.parametrize("host", [b'evil"><x', b"evil.test/x?", b"a b", b"evil.test@x", b"[::1"])
def test_a_host_header_that_could_inject_into_urls_is_refused(limited, host):
    reply = search_urls(limited, host)
    assert_cloudinary_error(reply, 400)
    assert b"evil" not in reply.body


def test_file_urls_follow_a_well_formed_host_header(limited):
    reply = search_urls(limited, b"images.example.test:8443")
    assert reply.status == 200
    assert reply.json()["resources"][0]["secure_url"].startswith("http://images.example.test:8443/files/")


def test_without_a_host_header_file_urls_point_at_the_listening_address_and_port(limited):
    reply = search_urls(limited, None, version="1.0")
    assert reply.status == 200
    url = reply.json()["resources"][0]["secure_url"]
    assert url.startswith(f"http://127.0.0.1:{limited.port}/files/")
    assert urllib3.PoolManager(retries=False).request("GET", url).status == 200


def test_a_configured_public_base_url_wins_over_any_host_header(services):
    server = LocalServer(
        with_settings(services, public_base_url="https://img.example.test/base"), "127.0.0.1", 0
    ).start()
    try:
        reply = search_urls(server, b"other.example.test")
        assert reply.json()["resources"][0]["secure_url"].startswith("https://img.example.test/base/files/")
    finally:
        server.stop()


def test_a_client_cannot_claim_https_for_the_urls_of_a_plain_http_server(limited):
    raw = (
        f"GET {SEARCH}?text=shoe&max_results=1 HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-Proto: https\r\n"
        f"Authorization: {AUTH}\r\nConnection: close\r\n\r\n"
    )
    assert exchange(limited, raw.encode()).json()["resources"][0]["secure_url"].startswith("http://a.test/")


# -- one spelling per resource


def test_the_search_page_is_served_at_its_canonical_path(limited):
    reply = exchange(limited, b"GET /ui/index.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "path",
    [
        "//ui/index.html",
        "///ui/index.html",
        "/ui/index.html/",
        "/ui//index.html",
        "/./ui/index.html",
        "/ui/../ui/index.html",
        "/ui/%2e/index.html",
        "//ui/",
        f"{SEARCH}/",
    ],
)
def test_non_canonical_paths_are_404_never_the_page_under_another_base(limited, path):
    reply = exchange(limited, f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
    assert_cloudinary_error(reply, 404)


@pytest.mark.parametrize(("path", "location"), [("/", "ui/index.html"), ("/ui/", "index.html")])
def test_the_page_folders_redirect_to_the_page_relative_to_themselves(limited, path, location):
    reply = exchange(limited, f"GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".encode())
    assert reply.status == 302
    assert reply.headers["location"] == location


# -- the command line


def test_serve_with_tls_cert_and_key_serves_https_and_logs_each_request(tmp_path, tiny_model_dir):
    cert, key = self_signed_certificate(tmp_path)
    env = {
        **os.environ,
        "VS_DATA_DIR": str(tmp_path / "data"),
        "VS_MODEL_DIR": str(tiny_model_dir),
        "VS_API_SECRET": "cli-secret-123",
        "VS_CURSOR_SECRET": "cli-cursor-secret-0123456789abcdef",
    }
    command = [sys.executable, "-c", "from visual_search.cli import main; raise SystemExit(main())"]
    args = ["serve", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key)]
    process = subprocess.Popen([*command, *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        banner = next(line for line in process.stderr if line.startswith("Visual Search on "))
        assert banner.startswith("Visual Search on https://127.0.0.1:"), banner
        base = banner.split()[3].split("/v1_1/")[0]
        http = urllib3.PoolManager(retries=False, timeout=30, ca_certs=str(cert), assert_hostname="localhost")
        auth = "Basic " + base64.b64encode(b"visual-search:cli-secret-123").decode()
        response = http.request("GET", base + "/health?signature=s3cret", headers={"Authorization": auth})
        assert response.status == 200
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    logged = [line for line in err.splitlines() if "visual_search.server.access" in line]
    assert len(logged) == 1
    assert "GET /health?signature=*** 200 " in logged[0]
    assert logged[0].endswith(response.headers["X-Request-Id"])
    assert "s3cret" not in err
