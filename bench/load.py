"""Load test with Locust against the local server, loopback only, bounded: 20 concurrent clients send
5,000 mixed requests (text, asset id, file, paging with next_cursor) while uploads are being indexed.
Prints and writes: requests, failures, 5xx, p50/p99, throughput, and the server's RSS over the run
(first sample after warm-up vs last, to show memory is stable).

    python bench/load.py [--requests 5000] [--users 20] [--model src/visual_search/models/tiny]
        [--out bench/results/load.json]
"""

from __future__ import annotations

import gevent.monkey

gevent.monkey.patch_all()  # Locust runs on gevent; patch before anything opens sockets

import argparse  # noqa: E402
import base64  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import numpy as np  # noqa: E402
from locust import FastHttpUser, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLOUD, KEY, SECRET = "load", "load-key", "load-secret-0123456789"
WORDS = ["red", "blue", "green", "circle", "square", "stripes", "shoe", "shirt", "dog", "a photo of"]
AUTH = {"Authorization": "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()}
SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"


def jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8))
    out = io.BytesIO()
    small.resize(size, Image.Resampling.BICUBIC).save(out, "JPEG", quality=85)
    return out.getvalue()


QUERY_IMAGES = [jpeg(10_000 + i) for i in range(8)]
ASSET_IDS: list[str] = []


class Client(FastHttpUser):
    wait_time = constant(0)

    def _check(self, response) -> dict | None:
        if response.status_code >= 500:
            response.failure(f"5xx: {response.status_code}")
            return None
        if response.status_code != 200:
            response.failure(f"{response.status_code}: {response.text[:120]}")
            return None
        return response.json()

    @task(4)
    def text(self) -> None:
        query = " ".join(random.sample(WORDS, 2))
        with self.client.get(
            SEARCH, params={"text": query, "max_results": 20}, headers=AUTH, name="text", catch_response=True
        ) as response:
            body = self._check(response)
            if body:
                ASSET_IDS.extend(r["asset_id"] for r in body["resources"][:2])
                del ASSET_IDS[:-500]

    @task(2)
    def asset(self) -> None:
        if not ASSET_IDS:
            return self.text()
        params = {"image_asset_id": random.choice(ASSET_IDS), "max_results": 20}
        with self.client.get(SEARCH, params=params, headers=AUTH, name="asset", catch_response=True) as r:
            self._check(r)

    @task(2)
    def file(self) -> None:
        files = {"image_file": ("q.jpg", random.choice(QUERY_IMAGES), "image/jpeg")}
        with self.client.post(SEARCH, files=files, headers=AUTH, name="file", catch_response=True) as r:
            self._check(r)

    @task(2)
    def paging(self) -> None:
        params = {"text": random.choice(WORDS), "max_results": 10}
        with self.client.get(SEARCH, params=params, headers=AUTH, name="page 1", catch_response=True) as r:
            body = self._check(r)
        if body and body.get("next_cursor"):
            params["next_cursor"] = body["next_cursor"]
            with self.client.get(
                SEARCH, params=params, headers=AUTH, name="page 2", catch_response=True
            ) as r:
                self._check(r)


def upload_continuously(host: str, count: int, done: list[int]) -> None:
    """Indexing while searching: Cloudinary signed uploads, one after another."""
    import urllib3

    http = urllib3.PoolManager(timeout=30)
    for i in range(count):
        fields = {"public_id": f"load/upload-{i:04d}", "timestamp": str(int(time.time()))}
        to_sign = "&".join(f"{k}={v}" for k, v in sorted(fields.items()))
        fields |= {"api_key": KEY, "signature": hashlib.sha1((to_sign + SECRET).encode()).hexdigest()}
        response = http.request(
            "POST", f"{host}/v1_1/{CLOUD}/image/upload", fields={**fields, "file": ("u.jpg", jpeg(i))}
        )
        if response.status == 200:
            done.append(i)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_server(data_dir: Path, model: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "VS_DATA_DIR": str(data_dir),
        "VS_MODEL_DIR": str(model),
        "VS_CLOUD_NAME": CLOUD,
        "VS_API_KEY": KEY,
        "VS_API_SECRET": SECRET,
        "VS_CURSOR_SECRET": "load-cursor-secret-0123456789abcdef",
    }
    binary = Path(sys.executable).parent / "visual-search"
    server = subprocess.Popen(
        [str(binary), "serve", "--with-samples", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start")


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server, host = start_server(Path(tmp), args.model)
        try:
            return load(server, host, args)
        finally:
            server.terminate()
            server.wait(timeout=30)


def load(server: subprocess.Popen, host: str, args: argparse.Namespace) -> dict:
    env = Environment(user_classes=[Client], host=host)
    runner = env.create_local_runner()
    uploads: list[int] = []
    rss: list[float] = []
    uploader = gevent.spawn(upload_continuously, host, args.uploads, uploads)
    started = time.monotonic()
    runner.start(args.users, spawn_rate=args.users)
    while env.stats.total.num_requests < args.requests and time.monotonic() - started < args.max_seconds:
        rss.append(rss_mb(server.pid))
        gevent.sleep(0.5)
    runner.quit()
    uploader.join(timeout=60)
    elapsed = time.monotonic() - started
    total = env.stats.total
    server_errors = sum(e.occurrences for e in env.stats.errors.values() if str(e.error).startswith("5xx"))
    steady = rss[len(rss) // 5 :] or rss  # after warm-up: sessions loaded, caches filled
    return {
        "requests": total.num_requests,
        "failures": total.num_failures,
        "server_errors_5xx": server_errors,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "requests_per_s": total.num_requests / elapsed,
        "uploads_indexed": len(uploads),
        "rss_mb_after_warmup": round(steady[0], 1),
        "rss_mb_end": round(rss[-1], 1),
        "rss_mb_peak": round(max(rss), 1),
        "per_task": {
            name: {
                "requests": entry.num_requests,
                "p50_ms": entry.get_response_time_percentile(0.5),
                "p99_ms": entry.get_response_time_percentile(0.99),
            }
            for (name, _method), entry in env.stats.entries.items()
        },
        "errors": {str(e.error): e.occurrences for e in env.stats.errors.values()},
        "users": args.users,
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--model", type=Path, default=ROOT / "src" / "visual_search" / "models" / "tiny")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    result = run(args)
    print(
        f"{result['requests']} requests from {result['users']} clients in {result['seconds']} s "
        f"({result['requests_per_s']:.0f}/s): failures {result['failures']}, "
        f"5xx {result['server_errors_5xx']}, "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; {result['uploads_indexed']} uploads indexed "
        f"meanwhile; server RSS {result['rss_mb_after_warmup']} -> {result['rss_mb_end']} MB "
        f"(peak {result['rss_mb_peak']})"
    )
    for name, entry in sorted(result["per_task"].items()):
        print(
            f"  {name:>7}: {entry['requests']:5d} requests,"
            f" p50 {entry['p50_ms']} ms, p99 {entry['p99_ms']} ms"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 1 if result["server_errors_5xx"] else 0


if __name__ == "__main__":
    sys.exit(main())
