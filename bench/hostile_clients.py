"""What unauthenticated clients can take from the local server, measured on a server in its own process
(default settings, tiny model), so its RSS is its own.

- slow bodies: 64 clients on 4 addresses each declare a 1,000-byte upload and send a byte every 2 s;
  meanwhile an authenticated ping every half second. Answered pings and their p50; how the slow
  clients ended (408 at the minimum rate, after the grace period).
- memory: 32 limit-sized bodies at once, from 32 addresses, three ways: 27 MB POSTs to /health (reads
  no body), 20.9 MB multipart uploads with a bad signature sent fields first (as every SDK sends them),
  and the same with the file first. Peak RSS growth over the warm server (VmHWM after clear_refs), and
  the RSS once they are answered.

    python bench/hostile_clients.py [--out bench/results/hostile_clients.json]

Linux only (/proc/PID/status and clear_refs; run as the server's user).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.fixtures.multipart import upload_body  # noqa: E402

TINY_MODEL = ROOT / "src" / "visual_search" / "models" / "tiny"
API_KEY, API_SECRET, CLOUD = "bench-key", "bench-secret-0123456789", "demo"
AUTH = "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
TARGET_GROWTH_MB = 600


def serve(data_dir: str) -> None:
    """The server process: prints its port, serves until killed."""
    from visual_search.bootstrap import build_services
    from visual_search.server import LocalServer
    from visual_search.settings import ServiceSettings

    settings = ServiceSettings(
        model_dir=TINY_MODEL,
        data_dir=Path(data_dir),
        cloud_name=CLOUD,
        api_key=API_KEY,
        api_secret=API_SECRET,
        cursor_secret="bench-cursor-secret-0123456789",
    )
    server = LocalServer(build_services(settings), "127.0.0.1", 0)
    print(server.port, flush=True)
    server.run()


class Server:
    def __init__(self, data_dir: str):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", data_dir], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self._wait_ready()

    def _wait_ready(self) -> None:
        for _ in range(200):
            try:
                if request(self.port, "GET", f"/v1_1/{CLOUD}/ping", auth=True)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not start")

    def status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(field)

    def reset_peak(self) -> float:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        return self.status_mb("VmRSS")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def request(
    port: int,
    method: str,
    path: str,
    auth: bool = False,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
    timeout: float = 120,
) -> tuple[int, float]:
    """One request on a fresh connection from `source`; (status, seconds). Status 0: the server closed
    the connection before answering (or reset it while the body was being sent)."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        if auth:
            head += f"Authorization: {AUTH}\r\n"
        try:
            sock.sendall(head.encode() + b"\r\n")
            view = memoryview(body)
            for start in range(0, len(body), 1 << 20):
                sock.sendall(view[start : start + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (or closed) before the whole body: read what was said
        return status_of(sock), time.perf_counter() - started


def status_of(sock: socket.socket) -> int:
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    line = data.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


def slow_bodies(port: int, clients: int = 64, seconds: float = 16.0) -> dict:
    ended: list[int] = []

    def trickle(address: str) -> None:
        try:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=30, source_address=(address, 0)
            ) as sock:
                sock.sendall(
                    f"POST /v1_1/{CLOUD}/image/upload HTTP/1.1\r\nHost: bench\r\n"
                    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n".encode()
                )
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    sock.sendall(b"a")
                    sock.settimeout(2.0)
                    try:
                        if sock.recv(1, socket.MSG_PEEK):
                            ended.append(status_of(sock))
                            return
                    except TimeoutError:
                        continue
                ended.append(-1)  # still open when the run ended
        except (BrokenPipeError, ConnectionResetError, ConnectionRefusedError):
            ended.append(0)

    threads = [threading.Thread(target=trickle, args=(f"127.0.1.{1 + i % 4}",)) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    pings: list[tuple[int, float]] = []
    deadline = time.monotonic() + seconds - 2
    while time.monotonic() < deadline:
        pings.append(request(port, "GET", f"/v1_1/{CLOUD}/ping", auth=True))
        time.sleep(0.5)
    for thread in threads:
        thread.join(seconds + 30)
    answered = [s for s, _ in pings if s == 200]
    return {
        "slow_clients": clients,
        "pings": len(pings),
        "pings_answered_200": len(answered),
        "ping_p50_ms": round(statistics.median(t for _, t in pings) * 1000, 1),
        "slow_clients_ended": {str(s): ended.count(s) for s in sorted(set(ended))},
    }


def multipart(file_first: bool, file_bytes: int) -> tuple[bytes, str]:
    fields = {"api_key": API_KEY, "timestamp": str(int(time.time())), "signature": "0" * 40}
    head, rest, boundary = upload_body(fields, os.urandom(file_bytes), file_first)
    return head + rest, f"multipart/form-data; boundary={boundary}"


def memory(
    server: Server, name: str, method: str, path: str, body: bytes, headers: dict, n: int = 32
) -> dict:
    time.sleep(1.0)
    baseline = server.reset_peak()
    statuses: list[int] = []

    def send(i: int) -> None:
        statuses.append(
            request(server.port, method, path, body=body, headers=headers, source=f"127.0.2.{1 + i}")[0]
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    peak = server.status_mb("VmHWM")
    time.sleep(2.0)
    after = server.status_mb("VmRSS")
    return {
        "load": name,
        "bodies": n,
        "body_mb": round(len(body) / 1e6, 1),
        "baseline_mb": round(baseline),
        "peak_growth_mb": round(peak - baseline),
        "after_growth_mb": round(after - baseline),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", metavar="DATA_DIR")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hostile_clients.json")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp)
        try:
            slow = slow_bodies(server.port)
            upload = f"/v1_1/{CLOUD}/image/upload"
            loads = [
                ("27 MB POST to /health", "POST", "/health", os.urandom(27_000_000), {}),
                (
                    "20.9 MB upload, bad signature, fields first",
                    "POST",
                    upload,
                    *multipart(False, 20_900_000),
                ),
                ("20.9 MB upload, bad signature, file first", "POST", upload, *multipart(True, 20_900_000)),
            ]
            figures = []
            for name, method, path, body, content_type in loads:
                headers = {"Content-Type": content_type} if isinstance(content_type, str) else content_type
                figures.append(memory(server, name, method, path, body, headers))
        finally:
            server.stop()
    result = {"slow_bodies": slow, "memory": figures}
    result["ok"] = (
        slow["pings_answered_200"] == slow["pings"]
        and all(f["peak_growth_mb"] <= TARGET_GROWTH_MB for f in figures)
        and all(not any(s.startswith("5") for s in f["statuses"]) for f in figures)
    )
    print(
        f"slow bodies: {slow['slow_clients']} clients trickling | authenticated pings answered "
        f"{slow['pings_answered_200']}/{slow['pings']}, p50 {slow['ping_p50_ms']} ms | slow clients ended: "
        f"{slow['slow_clients_ended']}"
    )
    for f in figures:
        print(
            f"memory, {f['bodies']} x {f['load']}: peak +{f['peak_growth_mb']} MB,"
            f" after +{f['after_growth_mb']} MB over {f['baseline_mb']} MB | statuses {f['statuses']}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
