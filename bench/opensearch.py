"""The embedded index and a real OpenSearch node, side by side on the same vectors, in one run.

    make bench-opensearch                         # 100,000 x 512 clustered (starts the local node)
    nice python bench/opensearch.py --n 20000     # smaller
    nice python bench/opensearch.py --skip-duplicates

For each engine: bulk index throughput (batches of 1,000 through the adapter, as ingest writes), query
latency p50/p99 for a page of 10 unfiltered and with a selective folder filter (~5%), recall@10 against
exact brute force. On the node, queries are timed as the search service sends them (k = max_hits = 1,000,
which drives the HNSW beam to >= 1,000 whatever ef_search says) and with k = 10, to show what that costs.
Then the collection duplicates report (one k-NN query per asset) is timed at `--duplicates-n` assets on
the node. The node is tests/opensearch_node.py's (Lucene engine: the Maven k-NN artifact ships no faiss
libraries), single shard, no replica, 1 GB heap, on the same 2 cores as this process.

Prints a table and writes bench/results/opensearch.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from index import BATCH, DIM, assets, brute_force, dataset  # noqa: E402  (bench/index.py)

from tests import opensearch_node  # noqa: E402
from visual_search.index.embedded import EmbeddedIndex  # noqa: E402
from visual_search.index.opensearch import OpenSearchIndex, connect  # noqa: E402
from visual_search.index.opensearch_mapping import IndexOptions  # noqa: E402
from visual_search.index.port import Filters, VectorIndex  # noqa: E402
from visual_search.search.duplicates import DuplicateFinder  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "opensearch.json"
SELECTIVE = Filters(folder="f07")  # one folder of 20: ~5%


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def index_all(index: VectorIndex, vectors: np.ndarray) -> float:
    started = time.perf_counter()
    for start in range(0, len(vectors), BATCH):
        index.upsert(assets(vectors[start : start + BATCH], start))
    return time.perf_counter() - started


def measure(index: VectorIndex, vectors: np.ndarray, queries: np.ndarray, max_hits: int) -> dict[str, float]:
    truth = [{f"{i:032x}" for i in brute_force(vectors, q).tolist()} for q in queries]
    times, found = [], 0
    for query, expected in zip(queries, truth, strict=True):
        started = time.perf_counter()
        hits = index.knn_page(query, 10, max_hits=max_hits)
        times.append(time.perf_counter() - started)
        found += len(expected & {h.asset_id for h in hits})
    filtered = []
    for query in queries:
        started = time.perf_counter()
        index.knn_page(query, 10, filters=SELECTIVE, max_hits=max_hits)
        filtered.append(time.perf_counter() - started)
    return {
        "query_p50_ms": percentile_ms(times, 50),
        "query_p99_ms": percentile_ms(times, 99),
        "filtered_5pct_p50_ms": percentile_ms(filtered, 50),
        "filtered_5pct_p99_ms": percentile_ms(filtered, 99),
        "recall_at_10": found / (10 * len(queries)),
    }


def on_node(url: str, alias: str) -> OpenSearchIndex:
    options = IndexOptions(engine=opensearch_node.ENGINE, replicas=0)  # type: ignore[arg-type]
    return OpenSearchIndex(connect(url, auth="none", timeout=60.0), alias, DIM, "bench", options=options)


def duplicates_report(url: str, vectors: np.ndarray) -> dict[str, float]:
    index = on_node(url, f"vs-bench-dup-{uuid.uuid4().hex[:6]}")
    try:
        index_all(index, vectors)
        finder = DuplicateFinder(index, near_threshold=0.95, similar_threshold=0.9)
        started, groups = time.perf_counter(), 0
        for item in finder.report(index.iter_assets()):
            groups += not isinstance(item, str)
        seconds = time.perf_counter() - started
    finally:
        index._os.indices.delete(index=index.physical_name, ignore=[404])
    return {"assets": len(vectors), "report_s": seconds, "per_asset_ms": seconds / len(vectors) * 1000,
            "groups": groups}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--duplicates-n", type=int, default=10_000)
    parser.add_argument("--skip-duplicates", action="store_true")
    args = parser.parse_args()

    vectors, queries = dataset("clustered", args.n)
    queries = queries[: args.queries]
    url = opensearch_node.running_url() or opensearch_node.start(heap="1g")
    results: dict[str, dict[str, float]] = {}

    with tempfile.TemporaryDirectory() as folder:
        embedded = EmbeddedIndex(Path(folder) / "bench.sqlite3", DIM)
        print(f"embedded: indexing {args.n} x {DIM} ...", flush=True)
        seconds = index_all(embedded, vectors)
        results["embedded"] = {"index_per_s": args.n / seconds, **measure(embedded, vectors, queries, 1000)}
        embedded.close()

    node = on_node(url, f"vs-bench-{uuid.uuid4().hex[:6]}")
    try:
        print(f"OpenSearch node: indexing {args.n} x {DIM} ...", flush=True)
        seconds = index_all(node, vectors)
        rate = args.n / seconds
        results["opensearch k=1000"] = {"index_per_s": rate, **measure(node, vectors, queries, 1000)}
        results["opensearch k=10"] = {"index_per_s": rate, **measure(node, vectors, queries, 10)}
    finally:
        node._os.indices.delete(index=node.physical_name, ignore=[404])

    duplicates = None
    if not args.skip_duplicates:
        print(f"duplicates report over {args.duplicates_n} assets on the node ...", flush=True)
        duplicates = duplicates_report(url, vectors[: args.duplicates_n])

    names = list(results)
    print(f"\n{'clustered, n=' + format(args.n, ','):28}" + "".join(f"{n:>20}" for n in names))
    for metric in results[names[0]]:
        print(f"{metric:28}" + "".join(f"{results[n][metric]:>20.4g}" for n in names))
    if duplicates:
        print(f"duplicates report: {duplicates}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.date.today().isoformat(),
        "n": args.n,
        "dim": DIM,
        "engine": opensearch_node.ENGINE,
        "opensearch": opensearch_node.VERSION,
        "results": results,
        "duplicates": duplicates,
    }
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
