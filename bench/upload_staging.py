"""Per-part latency of upload_large with many unfinished uploads staged (issue 21, finding 4).

Before the fix every part listed all of `_vs/uploads/` to expire old parts, so a part got slower as
staging filled (the review saw 10 ms -> 196 ms at 2,331 staged parts). This stages `--stale` unfinished
uploads straight into the store, starts the local server, then sends `--parts` first parts of new
uploads over HTTP, one at a time, as signed uploads with X-Unique-Upload-Id and Content-Range, and
prints the per-part latency (median, p95, max) with and without the stale uploads. Only the wire is
used, so the same script measures any version of the code: put its `src` first on PYTHONPATH.

    PYTHONPATH=src python bench/upload_staging.py [--stale 2000] [--parts 200] [--label after]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import urllib3

import visual_search
from visual_search.api.upload_signature import sign
from visual_search.bootstrap import build_services
from visual_search.server import LocalServer
from visual_search.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
KEY, SECRET, CLOUD = "bench-key", "bench-secret", "bench"
PART = b"p" * 4096


def per_part_ms(stale: int, parts: int) -> list[float]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = ServiceSettings(
            model_dir=Path(visual_search.__file__).parent / "models" / "tiny",
            data_dir=Path(data_dir),
            cloud_name=CLOUD,
            api_key=KEY,
            api_secret=SECRET,
            cursor_secret="bench-cursor-secret-0123456789abcdef",
        )
        services = build_services(settings)
        for i in range(stale):  # what abandoned uploads leave: a first part of a known total
            services.store.put(f"_vs/uploads/stale-{i:05d}/{0:012d}-{4095:012d}-{8192:012d}", PART)
        server = LocalServer(services, "127.0.0.1", 0).start()
        http = urllib3.PoolManager(retries=False, timeout=60)
        timings = []
        try:
            for i in range(parts):
                fields = {"timestamp": str(int(time.time())), "public_id": f"bench/{i}"}
                fields |= {"api_key": KEY, "signature": sign(fields, SECRET)}
                headers = {"X-Unique-Upload-Id": f"new-{i:05d}", "Content-Range": "bytes 0-4095/8192"}
                started = time.perf_counter()
                response = http.request(
                    "POST",
                    f"{server.url}/v1_1/{CLOUD}/image/upload",
                    fields={**fields, "file": ("part.bin", PART, "application/octet-stream")},
                    headers=headers,
                )
                timings.append((time.perf_counter() - started) * 1000)
                if response.status != 200:
                    raise SystemExit(f"part {i}: {response.status} {response.data[:200]!r}")
        finally:
            server.stop()
            services.close()
        return timings


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stale", type=int, default=2000, help="unfinished uploads staged beforehand")
    parser.add_argument("--parts", type=int, default=200, help="parts timed")
    parser.add_argument("--label", default="run", help="names the JSON file in bench/results/")
    args = parser.parse_args()
    result = {
        "label": args.label,
        "parts": args.parts,
        "empty": summary(per_part_ms(0, args.parts)),
        f"with_{args.stale}_stale": summary(per_part_ms(args.stale, args.parts)),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"upload_staging_{args.label}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
