"""image_url fetching: refusals happen before any connection; limits hold against hostile servers.

Every server here is started by the test on 127.0.0.1. Tests that must reach one use allow_private
(which lifts only the address check); refusal tests prove no request arrived."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.fixtures import images
from visual_search.deadline import within
from visual_search.errors import DependencyUnavailable, RemoteFetchFailed, RemoteFetchRefused
from visual_search.search.remote_fetch import FetchLimits, RemoteFetcher, is_public_address, system_resolver

PNG = images.png(40, 30)


class _Handler(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        route = self.path.split("?")[0]
        if route.startswith("/hop/"):
            left = int(route.rsplit("/", 1)[1])
            return self._redirect("/img.png" if left == 0 else f"/hop/{left - 1}")
        return ROUTES.get(route, lambda h: h._send(500, b"?", "text/plain"))(self)

    def _endless(self):
        self.send_response(200)
        self.end_headers()
        with contextlib.suppress(OSError):
            while True:
                self.wfile.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 65536)

    def _slow(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(1000):
                self.wfile.write(b"\x89")
                self.wfile.flush()
                time.sleep(0.2)

    def _declares_too_much(self):
        self.send_response(200)
        self.send_header("Content-Length", str(10_000_000))
        self.end_headers()

    def _send(self, status, body, ctype):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ROUTES = {
    "/img.png": lambda h: h._send(200, PNG, "image/png"),
    "/page.html": lambda h: h._send(200, b"<html>hi</html>", "image/png"),  # lies about its type
    "/svg": lambda h: h._send(200, images.svg(), "image/svg+xml"),
    "/missing": lambda h: h._send(404, b"no", "text/plain"),
    "/relative": lambda h: h._redirect("img.png"),
    "/to-private": lambda h: h._redirect("http://10.0.0.1/x.png"),
    "/too-big-declared": _Handler._declares_too_much,
    "/endless": _Handler._endless,
    "/slow": _Handler._slow,
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()


@pytest.fixture
def hits():
    _Handler.hits = []
    return _Handler.hits


def local(**limits) -> RemoteFetcher:
    return RemoteFetcher(FetchLimits(allow_private=True, **limits))


def strict(resolve=system_resolver, **limits) -> RemoteFetcher:
    return RemoteFetcher(FetchLimits(**limits), resolve=resolve)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",
        "::",
    ],
)
def test_non_public_addresses_are_not_public(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "93.184.216.34"])
def test_public_addresses_are_public(address):
    assert is_public_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost/x.png",
        "http://2130706433/x.png",
        "http://0177.0.0.1/x.png",
        "http://0x7f.1/x.png",
        "http://127.1/x.png",
        "http://[::1]/x.png",
        "http://[::ffff:127.0.0.1]/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/x.png",
    ],
)
def test_loopback_metadata_and_odd_ip_spellings_are_refused_before_connecting(url, server, hits):
    with pytest.raises(RemoteFetchRefused, match="not a public address"):
        strict().fetch(url)
    assert hits == []


def test_a_name_resolving_to_a_private_address_is_refused(hits):
    with pytest.raises(RemoteFetchRefused):
        strict(resolve=lambda host, port: ["10.0.0.7"]).fetch("http://images.example.test/a.png")


def test_a_name_resolving_to_one_public_and_one_private_address_is_refused():
    with pytest.raises(RemoteFetchRefused):
        strict(resolve=lambda host, port: ["93.184.216.34", "192.168.0.2"]).fetch(
            "http://mixed.example.test/"
        )


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "gopher://example.com/",
        "data:image/png;base64,AA==",
        "javascript:alert(1)",
        "//example.com/a.png",
        "http://user:pass@example.com/a.png",
        "http://:80/",
    ],
)
def test_non_http_schemes_credentials_and_hostless_urls_are_refused(url):
    with pytest.raises(RemoteFetchRefused):
        strict(resolve=lambda host, port: ["93.184.216.34"]).fetch(url)


def test_a_redirect_to_a_private_address_is_refused_without_following_it(server, hits):
    # Only the test server's own address counts as allowed, so the first hop is fetched and the
    # redirect's target (10.0.0.1) must be judged again, and refused, before any connection.
    only_test_server = RemoteFetcher(FetchLimits(), address_allowed=lambda address: address == "127.0.0.1")
    with pytest.raises(RemoteFetchRefused, match="not a public address"):
        only_test_server.fetch(f"{server}/to-private")
    assert hits == ["/to-private"]


def test_a_good_image_arrives_intact(server):
    fetched = local().fetch(f"{server}/img.png")
    assert fetched.data == PNG
    assert fetched.content_type == "image/png"


def test_redirect_chains_up_to_the_limit_are_followed(server):
    assert local(max_redirects=3).fetch(f"{server}/hop/2").data == PNG


def test_relative_redirects_are_resolved(server):
    assert local().fetch(f"{server}/relative").final_url.endswith("/img.png")


def test_too_many_redirects_are_refused(server):
    with pytest.raises(RemoteFetchRefused, match="redirects"):
        local(max_redirects=3).fetch(f"{server}/hop/3")


@pytest.mark.parametrize("path", ["/page.html", "/svg"])
def test_html_and_svg_are_not_images_whatever_the_content_type(server, path):
    with pytest.raises(RemoteFetchFailed, match="did not return an image"):
        local().fetch(server + path)


def test_an_http_error_status_is_reported(server):
    with pytest.raises(RemoteFetchFailed, match="HTTP 404"):
        local().fetch(f"{server}/missing")


def test_a_declared_length_over_the_limit_is_refused_before_reading(server):
    with pytest.raises(RemoteFetchFailed, match="limit"):
        local(max_bytes=1_000_000).fetch(f"{server}/too-big-declared")


def test_an_endless_body_is_cut_at_the_byte_limit(server):
    started = time.monotonic()
    with pytest.raises(RemoteFetchFailed, match="larger than"):
        local(max_bytes=500_000).fetch(f"{server}/endless")
    assert time.monotonic() - started < 5


def test_a_slow_loris_server_is_cut_off_at_the_deadline(server):
    started = time.monotonic()
    with pytest.raises(RemoteFetchFailed, match="longer than"):
        local(total_timeout=1.5).fetch(f"{server}/slow")
    assert time.monotonic() - started < 1.5 + 1.2


# -- the request's deadline (visual_search.deadline) over this slow server


def test_an_image_url_fetch_cut_short_by_the_request_deadline_is_a_429_not_the_urls_fault(server):
    started = time.monotonic()
    with within(0.5), pytest.raises(DependencyUnavailable, match="ran out of time"):
        local(total_timeout=10.0).fetch(f"{server}/slow")
    assert time.monotonic() - started < 2.5


def test_an_image_url_slower_than_its_own_bound_is_still_the_urls_fault(server):
    with within(30.0), pytest.raises(RemoteFetchFailed, match=r"longer than 0\.5 s"):
        local(total_timeout=0.5).fetch(f"{server}/slow")
