"""`visual-search add --server URL`: adding files through a running server's Upload API, so a served
data folder grows without downtime. The server stays the index's only writer (the embedded index has one
writer per file, and the server keeps it in memory): each file becomes a signed upload, as Cloudinary's
SDKs send one, under the public_id its path gives. Resumable: a file whose public_id already holds the
same bytes (the Admin API's `etag`, an MD5) is skipped."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import urllib3

from visual_search.api.upload_signature import sign
from visual_search.errors import ConfigurationError, DependencyUnavailable, Unauthorized

TIMEOUT = urllib3.Timeout(connect=5, read=120)


@dataclass(frozen=True)
class RemoteResult:
    status: str  # "indexed", "unchanged" or "refused"
    message: str = ""


class UploadClient:
    def __init__(self, base_url: str, cloud_name: str, api_key: str, api_secret: str):
        self._base = f"{base_url.rstrip('/')}/v1_1/{quote(cloud_name, safe='')}"
        self._key, self._secret = api_key, api_secret
        self._http = urllib3.PoolManager(timeout=TIMEOUT, retries=urllib3.Retry(3, backoff_factor=0.5))
        self._auth = urllib3.make_headers(basic_auth=f"{api_key}:{api_secret}")

    def check(self) -> None:
        """The server answers, knows the cloud name and accepts the credentials (Admin API ping)."""
        status, body = self._call("GET", "/ping")
        if status != 200:
            message = body.get("error", {}).get("message", f"HTTP {status}")
            raise ConfigurationError(f"the server at {self._base} refused the ping: {message}")

    def add(self, key: str, data: bytes) -> RemoteResult:
        public_id = str(PurePosixPath(key).with_suffix("")) if PurePosixPath(key).suffix else key
        status, body = self._call("GET", f"/resources/image/upload/{quote(public_id, safe='/')}")
        if status == 200 and body.get("etag") == hashlib.md5(data, usedforsecurity=False).hexdigest():
            return RemoteResult("unchanged")
        fields = {"public_id": public_id, "timestamp": str(int(time.time()))}
        fields |= {"signature": sign(fields, self._secret), "api_key": self._key}
        form: dict[str, Any] = {**fields, "file": (PurePosixPath(key).name, data, "application/octet-stream")}
        status, body = self._call("POST", "/image/upload", fields=form)
        if status == 200:
            return RemoteResult("indexed")
        return RemoteResult("refused", body.get("error", {}).get("message", f"HTTP {status}"))

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        headers = self._auth if method == "GET" else {}
        try:
            response = self._http.request(method, self._base + path, headers=headers, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise DependencyUnavailable(f"the server at {self._base} cannot be reached: {exc}") from None
        try:
            body = json.loads(response.data or b"{}")
        except ValueError:
            body = {}
        if response.status == 401:
            raise Unauthorized(f"the server refused the credentials: {body.get('error', {}).get('message')}")
        if response.status == 429 or response.status >= 500:
            raise DependencyUnavailable(f"the server answered {response.status}; try again later")
        return response.status, body if isinstance(body, dict) else {}
