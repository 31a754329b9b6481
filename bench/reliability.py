"""`make reliability`: every reliability and security check in one run, then a table of figures.

The checks are the test suites that prove the promises (each fails on a broken promise, so the table
only reports what passed and how long it took), plus the Locust load test for the figures that are
measurements rather than assertions (requests, errors, p50/p99, memory).

    python bench/reliability.py [--quick]     # --quick: a 1,000-request load run (what CI could afford)
    python bench/reliability.py --decode-only # the decoding rows alone
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = ROOT / "src" / "visual_search" / "models" / "tiny"
CHECKS = {
    "nothing lost: 1,000 uploads, injected faults (embedded, OpenSearch), DLQ, redrive": [
        "tests/functional/test_ingest_faults.py"
    ],
    "ordering and duplicates (sequencer, tombstones, versions)": ["tests/functional/test_ingest_ordering.py"],
    "kill -9 during bulk indexing": ["tests/functional/test_crash_safety.py"],
    "bad and odd images: ingest + search by file, time and memory": [
        "tests/functional/test_ingest_bad_images.py",
        "tests/functional/test_hostile_inputs.py",
    ],
    "image_url SSRF and limits": ["tests/functional/test_remote_fetch.py"],
    "local server: framing, body limit, deadlines, caps, TLS, JSON answers, access log, resolver state": [
        "tests/functional/test_local_server.py",
        "tests/functional/test_concurrency.py",
    ],
    "fuzzing (Schemathesis, Hypothesis), auth on every route": ["tests/functional/test_api_fuzzing.py"],
    "Unicode: every field of every route and transport valid or a 400 (fuzzer: 2,000 requests)": [
        "tests/functional/test_unicode_fields.py"
    ],
    "unauthenticated clients: slow bodies hold no slot, per-address caps, body budget, early refusal": [
        "tests/functional/test_server_budgets.py"
    ],
    "Upload API signatures as the SDKs sign (v2, SHA-1/256), one answer without the key oracle": [
        "tests/unit/test_upload_signature.py",
        "tests/functional/test_upload_signatures.py",
        "tests/functional/test_client_signatures.py",
    ],
    "upload_large staging: bounded, indexed by id, swept on a schedule, assembled exactly once": [
        "tests/functional/test_chunked_upload_bounds.py",
        "tests/functional/test_chunked_upload_races.py",
        "tests/unit/test_upload_staging.py",
    ],
    "stored files served by content (nosniff, sandbox CSP); kept-alive requests as fast as fresh ones": [
        "tests/functional/test_served_files.py",
        "tests/functional/test_keep_alive_latency.py",
    ],
    "decoding: every mode at the pixel limit, ordinary images unchanged, never a 500 on a corrupt image": [
        "tests/unit/test_decode.py",
        "tests/unit/test_decode_embeddings.py",
        "tests/functional/test_ingest_corrupt_images.py",
    ],
    "deployed stack: auth on every method, least privilege, encryption, cdk-nag": [
        "tests/infra/test_stack.py",
        "tests/infra/test_nag_and_layers.py",
    ],
}


def run_checks() -> list[tuple[str, int, int, float]]:
    rows = []
    for name, paths in CHECKS.items():
        with tempfile.NamedTemporaryFile(suffix=".xml") as report:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--junitxml={report.name}",
                    *paths,
                ],
                cwd=ROOT,
                env={**os.environ, "VS_UNICODE_FUZZ_EXAMPLES": "2000"},
                stdout=subprocess.DEVNULL,
                check=False,
            )
            suite = ET.parse(report.name).getroot()
            suite = suite if suite.tag == "testsuite" else suite[0]
            total = int(suite.get("tests", 0))
            failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            rows.append((name, total - failed, total, float(suite.get("time", 0))))
    return rows


FUZZ_EXAMPLES = 10_000


def probe(paths: list[Path]) -> dict:
    """tests/fixtures/decode_probe.py in a fresh process: peak RSS growth and time of searching the
    files by file, all at once."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.fixtures.decode_probe", str(TINY_MODEL), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def decode_figures() -> dict:
    """Every limit-sized image of the hostile corpus alone; the one with the largest growth three at
    once; then the image-bytes fuzzer with a larger budget than the test suite's."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures import images

    with tempfile.TemporaryDirectory() as tmp:
        alone = {}
        for name, make in images.LIMIT_CORPUS.items():
            path = Path(tmp) / name
            path.write_bytes(make())
            report = probe([path])
            alone[name] = (
                report["growth_mb"],
                report["requests"][0]["seconds"],
                report["requests"][0]["outcome"],
            )
        decoded = {n: v for n, v in alone.items() if v[2] == "ok"}
        worst = max(decoded, key=lambda n: decoded[n][0])
        three = probe([Path(tmp) / worst] * 3)
    with tempfile.NamedTemporaryFile(suffix=".count") as count:
        fuzz = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/unit/test_decode_fuzz.py",
            ],
            cwd=ROOT,
            env={**os.environ, "VS_FUZZ_EXAMPLES": str(FUZZ_EXAMPLES), "VS_FUZZ_COUNT_FILE": count.name},
            stdout=subprocess.DEVNULL,
            check=False,
        )
        inputs = len(Path(count.name).read_text().splitlines())
    return {
        "alone": alone,
        "worst": worst,
        "three_at_once": {
            "growth_mb": three["growth_mb"],
            "max_seconds": max(r["seconds"] for r in three["requests"]),
            "outcomes": [r["outcome"] for r in three["requests"]],
        },
        "fuzz_inputs": inputs,
        "fuzz_unhandled": 0 if fuzz.returncode == 0 else "FAILED (see tests/unit/test_decode_fuzz.py)",
    }


def print_decode(figures: dict) -> bool:
    worst = figures["worst"]
    growth, seconds, _ = figures["alone"][worst]
    three = figures["three_at_once"]
    refused = sorted(n for n, v in figures["alone"].items() if v[2] != "ok")
    print(
        f"decode at the 50 MP limit ({len(figures['alone'])} modes): worst {worst} alone +{growth} MB"
        f" {seconds:.1f} s | three at once +{three['growth_mb']} MB, slowest {three['max_seconds']:.1f} s"
        f" | refused by the decode budget: {', '.join(refused) or 'none'}"
    )
    unhandled = figures["fuzz_unhandled"]
    print(f"image fuzzer: {figures['fuzz_inputs']:,} mutated inputs, unhandled exceptions {unhandled}")
    worst_alone = max(v[0] for v in figures["alone"].values())
    slowest = max(v[1] for v in figures["alone"].values())
    return (
        worst_alone < 600
        and slowest < 10
        and three["growth_mb"] < 600
        and three["max_seconds"] < 10
        and three["outcomes"] == ["ok"] * 3
        and figures["fuzz_unhandled"] == 0
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--decode-only", action="store_true", help="only the decoding figures (~2 minutes)")
    args = parser.parse_args()
    if args.decode_only:
        return 0 if print_decode(decode_figures()) else 1
    rows = run_checks()
    decode = decode_figures()
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "decode.json").write_text(json.dumps(decode, indent=2))
    out = ROOT / "bench" / "results" / "load.json"
    requests = "1000" if args.quick else "5000"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--requests", requests, "--out", str(out)],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    load = json.loads(out.read_text())
    hostile = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hostile_clients.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    staging = json.loads(
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "upload_staging.py"), "--label", "reliability"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    width = max(len(name) for name in CHECKS)
    print(f"{'check':<{width}} {'passed':>9} {'seconds':>8}")
    for name, passed, total, seconds in rows:
        print(f"{name:<{width}} {passed:>4}/{total:<4} {seconds:>8.1f}")
    print()
    print(
        f"load: {load['requests']} requests, {load['users']} clients,"
        f" {load['uploads_indexed']} uploads meanwhile"
        f" | errors {load['failures']} | 5xx {load['server_errors_5xx']} | p50 {load['p50_ms']} ms"
        f" | p99 {load['p99_ms']} ms | RSS {load['rss_mb_after_warmup']} -> {load['rss_mb_end']} MB"
    )
    decode_ok = print_decode(decode)
    print(hostile.stdout.strip())
    empty, full = staging["empty"], staging["with_2000_stale"]
    print(
        f"upload_large staging: per part median {empty['median_ms']} ms with nothing staged,"
        f" {full['median_ms']} ms with 2,000 unfinished uploads staged"
        f" (p95 {empty['p95_ms']} / {full['p95_ms']} ms)"
    )
    ok = all(passed == total for _, passed, total, _ in rows) and not load["server_errors_5xx"] and decode_ok
    ok = ok and hostile.returncode == 0
    print("all promises held" if ok else "A PROMISE WAS BROKEN: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
