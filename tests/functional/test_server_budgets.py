"""What unauthenticated clients can hold of the local server: slots, connections, body bytes, time.

Found from outside: 32 bodies trickling a byte every 4 s held every in-flight slot before any credential
was checked (an authenticated ping answered 429 for as long as they ran); 32 concurrent 27 MB bodies
sent to /health, which reads none, took the server from 651 to 2,994 MB; and each worker thread kept its
last request's event (a whole upload) until it served another. Raw sockets, as such a client sends."""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import urllib3

from tests.fixtures.multipart import upload_body
from tests.functional.conftest import CLOUD
from tests.functional.test_local_server import (
    AUTH,
    assert_cloudinary_error,
    closed_within,
    read_reply,
    with_settings,
)
from visual_search.api.http import Http
from visual_search.server import LocalServer

UPLOAD = f"/v1_1/{CLOUD}/image/upload"
PING = f"/v1_1/{CLOUD}/ping"
LIMITS = {
    "max_image_bytes": 512 * 1024,
    "server_max_connections": 40,
    "server_max_connections_per_client": 12,
    "server_max_concurrent_requests": 2,
    "server_max_concurrent_requests_per_client": 2,
    "server_body_budget_bytes": 1024 * 1024,  # below two bodies: the budget is two bodies of the limit
    "server_body_timeout_s": 20.0,
    "server_body_grace_s": 0.6,
    "server_body_min_rate": 200,
}


@pytest.fixture(scope="module")
def guarded(services) -> Iterator[LocalServer]:
    server = LocalServer(with_settings(services, **LIMITS), "127.0.0.1", 0).start()
    yield server
    server.stop()


def connect_from(server: LocalServer, address: str = "127.0.0.1") -> socket.socket:
    # Any 127.x.y.z is this machine: another loopback address is another client address.
    return socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(address, 0))


def ping(server: LocalServer, address: str = "127.0.0.1"):
    with connect_from(server, address) as sock:
        sock.sendall(f"GET {PING} HTTP/1.1\r\nHost: a\r\nAuthorization: {AUTH}\r\n\r\n".encode())
        return read_reply(sock)


def start_slow_upload(server: LocalServer, address: str, length: int = 1000) -> socket.socket:
    sock = connect_from(server, address)
    head = f"POST {UPLOAD} HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    sock.sendall(f"{head}Content-Length: {length}\r\n\r\na".encode())
    return sock


def test_bodies_still_trickling_in_do_not_take_the_slots_an_authenticated_request_needs(guarded):
    # Twice as many slow bodies as there are slots, from two addresses, inside their rate's grace.
    slow = [start_slow_upload(guarded, f"127.0.0.{2 + i % 2}") for i in range(4)]
    try:
        time.sleep(0.2)
        reply = ping(guarded)
        assert reply.status == 200, reply.body
    finally:
        for sock in slow:
            sock.close()


def test_a_body_slower_than_the_minimum_rate_is_cut_off_after_the_grace_period(guarded):
    started = time.monotonic()
    with start_slow_upload(guarded, "127.0.0.4") as sock:
        sock.setblocking(True)
        reply = None
        for _ in range(100):  # 10 bytes/s, far below 200, and far within the 20 s deadline
            try:
                sock.sendall(b"x")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
            sock.settimeout(0.01)
            try:
                reply = read_reply(sock, timeout=0.01)
                break
            except TimeoutError:
                continue
        if reply is None:
            reply = read_reply(sock)
    elapsed = time.monotonic() - started
    assert "slower than" in assert_cloudinary_error(reply, 408)
    assert elapsed < LIMITS["server_body_timeout_s"] / 2


def test_connections_per_client_address_are_capped_while_other_addresses_are_served(guarded):
    cap = LIMITS["server_max_connections_per_client"]
    held = [connect_from(guarded, "127.0.0.5") for _ in range(cap)]
    try:
        time.sleep(0.1)
        with connect_from(guarded, "127.0.0.5") as extra:
            reply = read_reply(extra, timeout=5)
        assert "this client" in assert_cloudinary_error(reply, 429)
        assert reply.headers["retry-after"]
        assert ping(guarded, "127.0.0.6").status == 200
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert ping(guarded, "127.0.0.5").status == 200  # its connections closed, the address is served again


def test_requests_being_resolved_per_client_address_are_capped(services, monkeypatch):
    limits = {**LIMITS, "server_max_concurrent_requests": 4, "server_max_concurrent_requests_per_client": 1}
    server = LocalServer(with_settings(services, **limits), "127.0.0.1", 0).start()
    inside, release = threading.Semaphore(0), threading.Event()
    check_credentials = Http.check_credentials

    def slow_check_credentials(self):
        check_credentials(self)
        if self.app.current_event.request_context.identity.source_ip == "127.0.0.7":
            inside.release()
            release.wait(10)

    monkeypatch.setattr(Http, "check_credentials", slow_check_credentials)
    busy = threading.Thread(target=ping, args=(server, "127.0.0.7"))
    busy.start()
    try:
        assert inside.acquire(timeout=10)
        over = ping(server, "127.0.0.7")
        assert "this client" in assert_cloudinary_error(over, 429)
        assert ping(server, "127.0.0.8").status == 200
    finally:
        release.set()
        busy.join(10)
        server.stop()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/health", "/ui/index.html", "/docs", "/files/x.jpg?expires=1&signature=x"])
def test_a_route_that_reads_no_body_refuses_one_before_reading_it(guarded, method, path):
    with connect_from(guarded, "127.0.0.9") as sock:
        # Declared, never sent: an answer that comes means nothing waited for the body.
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: a\r\nContent-Length: 400000\r\n\r\n".encode())
        reply = read_reply(sock, timeout=5)
        assert "no request body" in assert_cloudinary_error(reply, 413)
        assert closed_within(sock, 2)


def test_bodies_held_at_once_never_exceed_the_budget_and_every_one_is_answered(guarded):
    app = guarded.app
    body_limit = app.limits.max_body_bytes
    statuses: list[int] = []

    file = b"\xff" * (LIMITS["max_image_bytes"] - 1024)
    head, rest, boundary = upload_body({"api_key": "nobody"}, file)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    def unsigned_upload(address: str) -> None:
        http = urllib3.PoolManager(retries=False, timeout=30, source_address=(address, 0))
        statuses.append(http.request("POST", guarded.url + UPLOAD, body=head + rest, headers=headers).status)

    # Three client addresses, so bodies from more than one are held at once.
    threads = [threading.Thread(target=unsigned_upload, args=(f"127.0.0.{10 + i % 3}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [401] * 8
    assert app.limits.body_budget_bytes < 3 * body_limit  # the bound the test leans on
    assert len(head + rest) <= app.bodies.peak <= app.limits.body_budget_bytes
    assert app.bodies.held == 0


def test_no_request_is_kept_in_memory_once_answered(guarded):
    http = urllib3.PoolManager(retries=False, timeout=30)
    response = http.request(
        "POST", guarded.url + UPLOAD, fields={"api_key": "nobody", "file": ("a", b"x" * 50_000)}
    )
    assert response.status == 401
    request_id = response.headers["X-Request-Id"]
    time.sleep(0.1)
    gc.collect()
    # Plain dicts only, as events are: isinstance would ask lazy modules' objects (torch's warns).
    kept = [o for o in gc.get_objects() if type(o) is dict and _is_event_of(o, request_id)]
    assert kept == []


def _is_event_of(candidate: dict, request_id: str) -> bool:
    context = candidate.get("requestContext")
    return isinstance(context, dict) and context.get("requestId") == request_id


# -- an upload's signature judged from the fields before its file


def signed(**params: str) -> dict[str, str]:
    from cloudinary.utils import api_sign_request

    from tests.functional.conftest import API_KEY, API_SECRET

    params = {"timestamp": str(int(time.time())), **params}
    return {**params, "api_key": API_KEY, "signature": api_sign_request(params, API_SECRET)}


@pytest.mark.parametrize("credentials", ["bad signature", "unknown key"])
def test_an_upload_whose_fields_before_the_file_fail_keeps_none_of_its_file(guarded, credentials):
    fields = signed(public_id="gate/refused")
    if credentials == "bad signature":
        fields["signature"] = "0" * 40
    else:
        fields["api_key"] = "nobody"
    head, rest, boundary = upload_body(fields, b"\xff" * 400_000)
    with connect_from(guarded, "127.0.0.20") as sock:
        sock.sendall(
            f"POST {UPLOAD} HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(head) + len(rest)}\r\n\r\n".encode()
            + head
            + rest[:1000]
        )
        time.sleep(0.3)
        # Judged from the fields: the budget is given back while the file is still arriving.
        assert guarded.app.bodies.held == 0
        # The answer comes once the body is in, as HTTP/1.1 clients (Java's SDK) read it only then.
        sock.sendall(rest[1000:])
        reply = read_reply(sock, timeout=5)
        assert "Invalid Signature" in assert_cloudinary_error(reply, 401)
        assert "www-authenticate" not in reply.headers
        assert closed_within(sock, 2)


@pytest.mark.parametrize("file_first", [False, True])
def test_a_signed_upload_is_accepted_whether_its_file_comes_before_or_after_its_fields(guarded, file_first):
    from tests.fixtures import images

    fields = signed(public_id=f"gate/accepted-{int(file_first)}")
    head, rest, boundary = upload_body(fields, images.jpeg(64, 48), file_first)
    http = urllib3.PoolManager(retries=False, timeout=30)
    response = http.request(
        "POST",
        guarded.url + UPLOAD,
        body=head + rest,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 200, response.data
