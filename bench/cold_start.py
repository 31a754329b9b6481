"""Cold start of the search function as deployed, against the alternative that does not fit in Lambda.

The deployed search function holds the text tower in its layer and fetches the image tower from S3 on
the first image query (issue #6: both ViT-B/32 towers beside the deps exceed 250 MB). Each run is a fresh
interpreter, as a new execution environment is: import the handler (Lambda's init phase), first text
query, first image query, then a warm image query. Baseline in the same run: both towers on local disk.

S3 here is moto's server on loopback, so the fetch is a lower bound for Lambda's own S3 throughput;
the index is the embedded one (empty) because no OpenSearch runs here — neither changes the
model-loading part, which is what this measures.

    python bench/cold_start.py [--model .cache/models/vit-b-32] [--runs 3]

`--bytecode`: the search function from the x86_64 layers as Lambda runs it (the emulator tier's
harness, tests/emulator: the Runtime Interface Emulator, a clean CPython 3.12, byte code never written,
the template's environment, moto and the local OpenSearch node), a fresh execution environment per run,
with its `deps-bytecode` layer and without it, alternating in one run: the init phase (the cold import)
and the first request (a text search), as the emulator reports them.

    python bench/cold_start.py --bytecode [--runs 8]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

CHILD = r"""
import json, sys, time
started = time.perf_counter()
sys.path[:0] = ["functions/search", "src"]
import handler
from visual_search.server.events import lambda_context, to_proxy_event
imported = time.perf_counter()
auth = {"Authorization": "Basic dmlzdWFsLXNlYXJjaDpiZW5jaC1zZWNyZXQ="}  # visual-search:bench-secret

def call(event):
    begin = time.perf_counter()
    response = handler.handler(event, lambda_context())
    assert response["statusCode"] == 200, response
    return (time.perf_counter() - begin) * 1000

text = to_proxy_event("GET", "/v1_1/demo/resources/visual_search?text=a+red+shirt", auth, b"", "127.0.0.1")
from urllib3 import encode_multipart_formdata
body, content_type = encode_multipart_formdata({"image_file": ("q.jpg", open(sys.argv[1], "rb").read())})
multipart = {**auth, "Content-Type": content_type}
image = to_proxy_event("POST", "/v1_1/demo/resources/visual_search", multipart, body, "127.0.0.1")
result = {"init_ms": (imported - started) * 1000, "first_text_ms": call(text), "first_image_ms": call(image),
          "warm_image_ms": call(image)}
print(json.dumps(result))
"""


def query_image() -> Path:
    from PIL import Image

    path = Path(tempfile.mkdtemp()) / "query.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 40, 40)).save(buffer, format="JPEG", quality=90)
    path.write_bytes(buffer.getvalue())
    return path


def run_child(env: dict[str, str], image: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(image)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bytecode(runs: int) -> int:
    """The search function's cold start with and without the compiled byte code, alternating."""
    sys.path.insert(0, str(ROOT))
    from layers.build import BYTECODE
    from tests import opensearch_node
    from tests.emulator import stack
    from tests.emulator.calls import answer, basic, text_search

    build = stack.lambda_build()
    node = opensearch_node.running_url()
    started_node = node is None
    node = node or opensearch_node.start()
    work = Path(tempfile.mkdtemp(prefix="cold-start-bytecode-"))
    variants = {"with byte code (deployed)": (), "without (sources only)": (BYTECODE,)}
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    try:
        with (
            stack.moto_server(work / "moto.log") as endpoint,
            stack.local_world(build, endpoint, node) as world,
        ):
            search = text_search(basic(world.api_key, world.api_secret))
            for run in range(runs):
                order = list(variants) if run % 2 == 0 else list(reversed(variants))  # no position bias
                for name in order:
                    function = stack.start_function(
                        "search", build, world, work / f"run{run}-{len(figures[name])}-{name[:4]}",
                        without=variants[name],
                    )  # fmt: skip
                    try:
                        first = function.invoke(search)
                        assert answer(first.payload)[0] == 200, first.payload
                        figures[name].append(
                            {"init_ms": first.init_ms or 0.0, "first_request_ms": first.duration_ms,
                             "peak_rss_mb": function.peak_rss_mb()}
                        )  # fmt: skip
                    finally:
                        function.stop()
    finally:
        if started_node:
            opensearch_node.stop()
    medians = {
        name: {key: round(statistics.median(r[key] for r in rows), 1) for key in rows[0]}
        for name, rows in figures.items()
    }
    print(
        f"{'search function, x86_64 layers':<32} {'init':>8} {'1st request':>12} {'sum':>8} {'peak RSS':>9}"
    )
    for name, m in medians.items():
        total = m["init_ms"] + m["first_request_ms"]
        print(f"{name:<32} {m['init_ms']:6.0f} ms {m['first_request_ms']:9.0f} ms {total:5.0f} ms "
              f"{m['peak_rss_mb']:6.0f} MB")  # fmt: skip
    print(f"(median of {runs} cold starts each, alternating; {time.strftime('%Y-%m-%d')})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d"), "runs": runs, "medians": medians, "each": figures}
    (RESULTS / "cold_start_bytecode.json").write_text(json.dumps(report, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "models" / "vit-b-32")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bytecode", action="store_true", help="with and without the compiled byte code")
    args = parser.parse_args()
    if args.bytecode:
        return bytecode(args.runs)
    if not (args.model / "manifest.json").is_file():
        raise SystemExit(
            f"no model in {args.model}: run `make model-vit` (or pass --model src/visual_search/models/tiny)"
        )

    import boto3
    from moto.server import ThreadedMotoServer

    manifest = json.loads((args.model / "manifest.json").read_text())
    image_tower = manifest["towers"]["image"]["int8"]
    work = Path(tempfile.mkdtemp(prefix="cold-start-"))
    text_only = work / "model-text"  # what the search function's model layer holds
    text_only.mkdir()
    for name in ("manifest.json", manifest["tokenizer"], manifest["towers"]["text"]["int8"]):
        shutil.copy2(args.model / name, text_only / name)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    server = ThreadedMotoServer(port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    aws = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in aws.items() if "KEY" in k})
    s3.create_bucket(Bucket="images")
    s3.upload_file(str(args.model / image_tower), "images", f"_vs/models/current/{image_tower}")

    base = {
        **os.environ, **aws, "AWS_ENDPOINT_URL_S3": endpoint, "VS_API_SECRET": "bench-secret",
        "VS_CURSOR_SECRET": "bench-cursor-secret", "POWERTOOLS_LOG_LEVEL": "WARNING",
    }  # fmt: skip
    image = query_image()
    variants = {
        "both_towers_local (does not fit in 250 MB)": {"VS_MODEL_DIR": str(args.model)},
        "deployed: text tower local, image tower from S3": {
            "VS_MODEL_DIR": str(text_only),
            "VS_MODEL_REMOTE_URL": "s3://images/_vs/models/current/",
        },
    }
    results: dict[str, dict[str, float]] = {}
    for name, extra in variants.items():
        runs = []
        for _ in range(args.runs):
            cache = work / "cache"
            shutil.rmtree(cache, ignore_errors=True)  # a new execution environment has an empty /tmp
            data = work / "data"
            shutil.rmtree(data, ignore_errors=True)
            env = {**base, **extra, "VS_MODEL_CACHE_DIR": str(cache), "VS_DATA_DIR": str(data)}
            runs.append(run_child(env, image))
        results[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    server.stop()

    baseline, deployed = results.values()
    local_text, deployed_text = (r["init_ms"] + r["first_text_ms"] for r in results.values())
    report = {
        "model": manifest.get("model_id"),
        "image_tower_mb": round((args.model / image_tower).stat().st_size / 1e6, 1),
        "runs": args.runs,
        "variants": results,
        "first_image_query_ratio_deployed_vs_local": round(
            deployed["first_image_ms"] / baseline["first_image_ms"], 2
        ),
        "init_plus_first_text_ratio_deployed_vs_local": round(deployed_text / local_text, 2),
    }  # fmt: skip
    print(f"{'variant':<50} {'init':>8} {'1st text':>9} {'1st image':>10} {'warm image':>11}  (ms, median)")
    for name, r in results.items():
        print(
            f"{name:<50} {r['init_ms']:8.0f} {r['first_text_ms']:9.0f} {r['first_image_ms']:10.0f} "
            f"{r['warm_image_ms']:11.0f}"
        )
    print(f"first image query, deployed / local: {report['first_image_query_ratio_deployed_vs_local']}x")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cold_start.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
