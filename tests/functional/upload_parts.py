"""upload_large as the SDKs send it: each part one signed upload to the local server, carrying
`X-Unique-Upload-Id` and `Content-Range`. Shared by the staging tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings
from visual_search.api.upload_signature import sign
from visual_search.assets.chunked_uploads import STAGING
from visual_search.bootstrap import Services, build_services
from visual_search.server import LocalServer
from visual_search.storage.port import ImageStore

UPLOAD = f"/v1_1/{CLOUD}/image/upload"


class PartSender:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.http = urllib3.PoolManager(maxsize=16, retries=False, timeout=60)

    def send(
        self, upload_id: str, content_range: str, data: bytes, public_id: str | None = None
    ) -> tuple[int, dict[str, Any], Any]:
        fields = {"timestamp": str(int(time.time()))} | ({"public_id": public_id} if public_id else {})
        fields |= {"api_key": API_KEY, "signature": sign(fields, API_SECRET)}
        response = self.http.request(
            "POST",
            self.base_url + UPLOAD,
            fields={**fields, "file": ("part.bin", data, "application/octet-stream")},
            headers={"X-Unique-Upload-Id": upload_id, "Content-Range": content_range},
        )
        return response.status, json.loads(response.data or b"null"), response.headers


@contextmanager
def served(data_dir: Path, model_dir: Path, **settings: Any) -> Iterator[tuple[Services, PartSender]]:
    """Services built with these settings, behind a local server on a free port."""
    services = build_services(make_settings(data_dir, model_dir, **settings))
    server = LocalServer(services, "127.0.0.1", 0).start()
    try:
        yield services, PartSender(server.url)
    finally:
        server.stop()
        services.close()


@dataclass(frozen=True)
class LargeUpload:
    """One file, sent in `parts` parts of one upload id."""

    sender: PartSender
    upload_id: str
    data: bytes
    public_id: str
    parts: int

    def send(self, index: int) -> tuple[int, dict[str, Any], Any]:
        step = -(-len(self.data) // self.parts)
        start, end = index * step, min((index + 1) * step, len(self.data)) - 1
        content_range = f"bytes {start}-{end}/{len(self.data)}"
        return self.sender.send(self.upload_id, content_range, self.data[start : end + 1], self.public_id)


def at_once(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run the calls on threads released together by a barrier; their results, in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def staged(store: ImageStore, upload_id: str | None = None) -> dict[str, int]:
    """Staged objects (parts and markers) and their sizes, of one upload or of all."""
    prefix = STAGING + (f"{upload_id}/" if upload_id else "")
    return {info.key: info.size for info in store.scan(prefix)}
