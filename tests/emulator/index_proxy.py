"""The functions' OpenSearch endpoint in the emulator tier: a loopback proxy to the local node.

* It refuses to create an index on the faiss engine, which the deployed functions ask for: the local
  node's k-NN plugin has no native libraries, and a faiss index kills the node (tests/opensearch_node.py)
  that other tests and benchmarks share. The tier makes the functions' index itself, on Lucene, first.
* `down` makes it refuse connections, as a domain that cannot be reached: the cold start under test.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAISS = b'"faiss"'


class IndexProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, node_url: str):
        self.node = urlsplit(node_url)
        self.down = False
        self.forwarded = 0
        self.refused_faiss = 0
        super().__init__(("127.0.0.1", 0), _Forward)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def verify_request(self, request, client_address) -> bool:
        return not self.down  # False: the connection is closed before a byte is read


class _Forward(BaseHTTPRequestHandler):
    server: IndexProxy
    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.command == "PUT" and body and FAISS in body:
            self.server.refused_faiss += 1
            self._answer(400, b'{"error": "the emulator tier refuses faiss indices on the shared node"}', {})
            return
        node = http.client.HTTPConnection(self.server.node.hostname, self.server.node.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        node.request(self.command, self.path, body=body, headers=headers)
        answer = node.getresponse()
        data = answer.read()
        self.server.forwarded += 1
        self._answer(answer.status, data, dict(answer.getheaders()))
        node.close()

    def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server's names)

    def log_message(self, format, *args) -> None:
        """Quiet: the functions' own logs say what they asked."""
