"""`make reliability`: every reliability and security check in one run, then a table of figures.

The checks are the test suites that prove the promises (each fails on a broken promise, so the table
only reports what passed and how long it took), plus the Locust load test for the figures that are
measurements rather than assertions (requests, errors, p50/p99, memory).

    python bench/reliability.py [--quick]     # --quick: a 1,000-request load run (what CI could afford)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
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
    "image_url SSRF and limits": ["tests/unit/test_remote_fetch.py"],
    "local server: framing, body limit, deadlines, caps, TLS, JSON answers, access log, resolver state": [
        "tests/functional/test_local_server.py",
        "tests/functional/test_concurrency.py",
    ],
    "fuzzing (Schemathesis, Hypothesis), auth on every route": ["tests/functional/test_api_fuzzing.py"],
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
                stdout=subprocess.DEVNULL,
                check=False,
            )
            suite = ET.parse(report.name).getroot()
            suite = suite if suite.tag == "testsuite" else suite[0]
            total = int(suite.get("tests", 0))
            failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            rows.append((name, total - failed, total, float(suite.get("time", 0))))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rows = run_checks()
    out = ROOT / "bench" / "results" / "load.json"
    requests = "1000" if args.quick else "5000"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--requests", requests, "--out", str(out)],
        check=False,
        stdout=subprocess.DEVNULL,
    )
    load = json.loads(out.read_text())
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
    ok = all(passed == total for _, passed, total, _ in rows) and not load["server_errors_5xx"]
    print("all promises held" if ok else "A PROMISE WAS BROKEN: see above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
