"""A search by image_url fetches and embeds the image once: its next pages reuse the query vector kept
under the cursor's query key, so they cost an index lookup only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fixtures import images


class CountingImageServer:
    """Serves one JPEG at /query.jpg on 127.0.0.1 and counts the fetches."""

    def __init__(self):
        self.fetches = 0
        body = images.jpeg(300, 200, seed=7)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/query.jpg"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def image_server() -> Iterator[CountingImageServer]:
    server = CountingImageServer()
    yield server
    server.close()


def page(api, **params) -> dict:
    status, body, _ = api.search(**params)
    assert status == 200, body
    return body


def test_page_two_of_an_image_url_search_makes_no_fetch(api, image_server):
    first = page(api, image_url=image_server.url, max_results="5")
    fetched_for_page_one = image_server.fetches
    second = page(api, image_url=image_server.url, max_results="5", next_cursor=first["next_cursor"])
    third = page(api, image_url=image_server.url, max_results="5", next_cursor=second["next_cursor"])

    assert fetched_for_page_one == 1
    assert image_server.fetches == 1
    ids = [r["asset_id"] for body in (first, second, third) for r in body["resources"]]
    assert len(ids) == 15
    assert len(set(ids)) == 15  # the kept vector continues the same result list


def test_pages_continue_the_list_page_one_began_as_if_computed_again(api, services, image_server):
    first = page(api, image_url=image_server.url, max_results="4")
    kept = page(api, image_url=image_server.url, max_results="4", next_cursor=first["next_cursor"])
    services.search._vectors.clear()  # evicted (or past its time to live): computed again from the URL
    recomputed = page(api, image_url=image_server.url, max_results="4", next_cursor=first["next_cursor"])

    assert image_server.fetches == 2
    assert [r["asset_id"] for r in kept["resources"]] == [r["asset_id"] for r in recomputed["resources"]]


def test_another_query_on_the_same_url_fetches_it_again(api, image_server):
    first = page(api, image_url=image_server.url, max_results="5")
    page(api, image_url=image_server.url, max_results="5", next_cursor=first["next_cursor"])
    page(api, image_url=image_server.url, max_results="5", folder="shoes")

    assert image_server.fetches == 2
