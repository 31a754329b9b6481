"""A Hugging Face hub on 127.0.0.1 serving one model repo from a local folder, in the hub's own layout,
for `huggingface_hub` pointed at it with HF_ENDPOINT. Tests make it misbehave.

What `huggingface_hub` asks, and what the hub answers (https://huggingface.co/docs/hub/api):
- `GET /api/models/{repo}[/revision/{rev}]` (`?blobs=true` for file metadata): the commit `sha` and the
  `siblings` (rfilename, size, blobId, lfs {sha256, size});
- `GET /api/models/{repo}/tree/{commit}?recursive=...`: the same files as tree entries (path, size, oid,
  lfs {oid, size});
- `HEAD|GET /{repo}/resolve/{rev}/{file}`: the bytes, with `X-Repo-Commit`, `ETag` (the git blob id, or
  for LFS files `X-Linked-Etag`, the sha256) and `Content-Length` / `X-Linked-Size`; `Range` resumes.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
LFS_SUFFIXES = (".safetensors", ".bin")


@dataclass
class HubFile:
    name: str
    data: bytes
    lfs: bool

    @property
    def blob_id(self) -> str:
        return hashlib.sha1(b"blob %d\x00" % len(self.data) + self.data, usedforsecurity=False).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def etag(self) -> str:
        return self.sha256 if self.lfs else self.blob_id


@dataclass
class Misbehaviour:
    """What the hub does wrong; tests set these fields while it runs."""

    cut: dict[str, int] = field(default_factory=dict)  # file -> how many downloads stop half-way
    down_after_cut: bool = False  # after a cut, every request gets 503
    corrupt: set[str] = field(default_factory=set)  # files served with one byte changed (same size)
    down: bool = False  # every request gets 503


class FakeHub:
    def __init__(self, repo_id: str, folder: Path):
        self.repo_id = repo_id
        self.files = {
            p.name: HubFile(p.name, p.read_bytes(), p.suffix in LFS_SUFFIXES)
            for p in sorted(folder.iterdir())
            if p.is_file()
        }
        self.misbehave = Misbehaviour()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        repo = re.escape(repo_id)
        self.routes = (
            re.compile(rf"^/api/models/{repo}(?:/revision/(?P<rev>[^/]+))?$"),
            re.compile(rf"^/api/models/{repo}/tree/(?P<rev>[^/]+)$"),
            re.compile(rf"^/{repo}/resolve/(?P<rev>[^/]+)/(?P<name>.+)$"),
        )
        handler = type("Handler", (_HubHandler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def downloads(self, name: str) -> list[str | None]:
        """The Range header of every GET of file `name` (None: from the start)."""
        return [r for m, p, r in self.requests if m == "GET" and p.endswith(f"/resolve/{COMMIT}/{name}")]

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def model_info(self) -> dict:
        return {
            "id": self.repo_id,
            "modelId": self.repo_id,
            "sha": COMMIT,
            "private": False,
            "siblings": [
                {
                    "rfilename": f.name,
                    "size": len(f.data),
                    "blobId": f.blob_id,
                    **(
                        {"lfs": {"sha256": f.sha256, "size": len(f.data), "pointerSize": 134}}
                        if f.lfs
                        else {}
                    ),
                }
                for f in self.files.values()
            ],
        }

    def tree(self) -> list[dict]:
        return [
            {
                "type": "file",
                "path": f.name,
                "size": len(f.data),
                "oid": f.blob_id,
                **({"lfs": {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}} if f.lfs else {}),
            }
            for f in self.files.values()
        ]


class _HubHandler(BaseHTTPRequestHandler):
    hub: FakeHub  # set on the subclass each FakeHub makes
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet: tests read hub.requests instead
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        hub, path = self.hub, unquote(urlsplit(self.path).path)
        hub.requests.append((self.command, path, self.headers.get("Range")))
        if hub.misbehave.down:
            return self._send(503, b'{"error": "down for maintenance"}', "application/json", body)
        info, tree, resolve = (r.match(path) for r in hub.routes)
        if info and info["rev"] in (None, "main", COMMIT):
            return self._send(200, json.dumps(hub.model_info()).encode(), "application/json", body)
        if tree and tree["rev"] in ("main", COMMIT):
            return self._send(200, json.dumps(hub.tree()).encode(), "application/json", body)
        if resolve and resolve["rev"] in ("main", COMMIT) and resolve["name"] in hub.files:
            return self._file(hub.files[resolve["name"]], body)
        error = json.dumps({"error": "Repository not found"}).encode()
        self._send(404, error, "application/json", body, {"X-Error-Code": "RepoNotFound"})

    def _file(self, f: HubFile, body: bool) -> None:
        misbehave = self.hub.misbehave
        data = bytes([f.data[0] ^ 0xFF]) + f.data[1:] if f.name in misbehave.corrupt else f.data
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{f.blob_id}"', "Accept-Ranges": "bytes"}
        if f.lfs:
            headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(len(data))})
        start = 0
        if body and (m := re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")):
            start = int(m[1])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if body and misbehave.cut.get(f.name, 0) > 0 and start == 0:
            misbehave.cut[f.name] -= 1
            misbehave.down = misbehave.down_after_cut
            return self._cut(data, headers)
        self._send(206 if start else 200, data[start:], "application/octet-stream", body, headers)

    def _cut(self, data: bytes, headers: dict[str, str]) -> None:
        """Promise the whole file, send half, and close the connection."""
        self.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(data))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True

    def _send(self, status, data: bytes, kind: str, body: bool, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {
            **(headers or {}),
            "Content-Type": kind,
            "Content-Length": str(len(data)),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)
