"""The embedded index and a real OpenSearch node, side by side on the same vectors, each in its steady
state, in one run.

    make bench-opensearch                                 # 100,000 x 512 clustered (starts the node)
    nice python bench/opensearch.py --n 1000000 --heap 4g # a million: ~1 h here
    nice python bench/opensearch.py --n 20000 --skip-duplicates

Steady state: the embedded index is measured once its graph holds every row (the time it took to catch
up after the last acknowledged write is reported: before that, a search scans the rows the graph lacks);
the node once the backfill path has loaded it (`OpenSearchIndex.bulk_load`: refresh off, no replica,
then restored, and a force merge), so both answer from their graphs alone.

For each engine: write throughput; page-1 (10 hits) p50/p99 and recall@10 against exact brute force; the
p50 of pages 2-5 of a walk; a 1% folder filter (p50/p99, and its recall against the exact filtered
top 10, so a filter that finds nothing cannot pass for a fast one); and over 10 pages of 10 and of 50,
the hits served twice (duplicates) and the skips - ids among the first 10 pages of a walk whose every
page asks for k = max_hits that the default walk (k growing with the page) never serves. On the node,
also the old behaviour (k = max_hits = 1,000 on every page, as before issue #22), an `ef_search` sweep
at page 1 (how the default was chosen), its resident memory and its index's size on disk.

The node is tests/opensearch_node.py's (Lucene engine: the Maven k-NN artifact ships no faiss
libraries; how faiss differs is in docs/scaling.md), single shard, no replica, on the same 2 cores as
this process; its heap is reported (`--heap` when this starts it; a running node is reused as it is).

Prints a table and writes bench/results/opensearch.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from index import BATCH, DIM, assets, dataset  # noqa: E402  (bench/index.py)

from tests import opensearch_node  # noqa: E402
from visual_search.index.embedded import EmbeddedIndex  # noqa: E402
from visual_search.index.opensearch import OpenSearchIndex, connect  # noqa: E402
from visual_search.index.opensearch_mapping import IndexOptions  # noqa: E402
from visual_search.index.port import Filters, Hit, SearchAfter, VectorIndex  # noqa: E402
from visual_search.search.duplicates import DuplicateFinder  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "opensearch.json"
ONE_PERCENT = Filters(folder="g07/f07")  # bench/index.py's folders: n mod 100 == 7
MAX_HITS = 1000
WALK_PAGES = 10
EF_SWEEP = (100, 256, 512, 1000)
K_SWEEP = ((50, 1.5), (100, 1.5), (100, 2.0), (100, 3.0), (200, 2.0))  # (k_floor, k_factor): skips


def ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def exact_top(
    vectors: np.ndarray, queries: np.ndarray, k: int, rows: np.ndarray | None = None
) -> list[set[str]]:
    """The ids of each query's exact top k (among `rows` when given), by float32 brute force in chunks."""
    candidates = np.arange(len(vectors)) if rows is None else rows
    best = np.full((len(queries), k), -np.inf, dtype=np.float32), np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(candidates), 200_000):
        chunk = candidates[start : start + 200_000]
        scores = queries @ vectors[chunk].T
        merged_scores = np.concatenate([best[0], scores], axis=1)
        merged_ids = np.concatenate([best[1], np.broadcast_to(chunk, scores.shape)], axis=1)
        top = np.argpartition(-merged_scores, k - 1, axis=1)[:, :k]
        best = np.take_along_axis(merged_scores, top, 1), np.take_along_axis(merged_ids, top, 1)
    return [{f"{i:032x}" for i in row.tolist()} for row in best[1]]


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def page_one(index: VectorIndex, queries: np.ndarray, truth: list[set[str]], filters: Filters | None = None):
    for query in queries[:20]:  # warm: the node's JIT and caches, so the order of configurations is moot
        index.knn_page(query, 10, filters=filters, max_hits=MAX_HITS)
    times, found, returned = [], 0, 0
    for query, expected in zip(queries, truth, strict=True):
        seconds, hits = timed(lambda q=query: index.knn_page(q, 10, filters=filters, max_hits=MAX_HITS))
        times.append(seconds)
        found += len(expected & {h.asset_id for h in hits})
        returned += len(hits)
    return {"p50_ms": ms(times, 50), "p99_ms": ms(times, 99), "recall_at_10": found / (10 * len(queries)),
            "hits_per_query": returned / len(queries)}  # fmt: skip


def walk(index: VectorIndex, query: np.ndarray, size: int) -> tuple[list[Hit], list[float], list[int]]:
    """Ten pages as the search service asks for them; the hits, each page's time and its hit count."""
    hits: list[Hit] = []
    times: list[float] = []
    counts: list[int] = []
    after = None
    for _ in range(WALK_PAGES):
        depth = len(hits)
        seconds, page = timed(
            lambda a=after, d=depth: index.knn_page(query, size, after=a, max_hits=MAX_HITS, depth=d)
        )
        times.append(seconds)
        counts.append(len(page))
        if not page:
            break
        hits += page
        after = SearchAfter(page[-1].score, page[-1].asset_id)
    return hits, times, counts


def reference_walks(reference: VectorIndex, queries: np.ndarray) -> dict[int, list[set[str]]]:
    """Per page size, each query's ids over 10 pages of a walk with k = max_hits on every page."""
    return {size: [{h.asset_id for h in walk(reference, q, size)[0]} for q in queries] for size in (10, 50)}


def walks(
    index: VectorIndex, queries: np.ndarray, wide: dict[int, list[set[str]]] | None
) -> dict[str, float]:
    """Pages 2-5 latency, duplicates and skips over 10 pages of 10 and of 50, against the `wide` walks
    (none where there is no k to choose: the embedded index)."""
    result: dict[str, float] = {}
    for size in (10, 50):
        later, duplicates, skips, served, short = [], 0, 0, 0, []
        for n, query in enumerate(queries):
            hits, times, counts = walk(index, query, size)
            later += times[1:5]
            served_ids = [h.asset_id for h in hits]
            duplicates += len(served_ids) - len(set(served_ids))
            skips += len(wide[size][n] - set(served_ids)) if wide else 0
            served += len(served_ids)
            if len(hits) < WALK_PAGES * size:  # a page came back short: say where, to explain it
                short.append({"query": n, "page_hits": counts})
        result |= {f"pages_2_5_p50_ms_size{size}": ms(later, 50), f"duplicates_size{size}": duplicates,
                   f"skips_size{size}": skips, f"served_size{size}": served,
                   f"short_walks_size{size}": short}  # fmt: skip
    return result


def measure(index: VectorIndex, wide, queries: np.ndarray, truth, filtered_truth, walk_n):
    first = page_one(index, queries, truth)
    one_percent = page_one(index, queries, filtered_truth, ONE_PERCENT)
    result = {
        "page1_p50_ms": first["p50_ms"],
        "page1_p99_ms": first["p99_ms"],
        "recall_at_10": first["recall_at_10"],
        "filter_1pct_p50_ms": one_percent["p50_ms"],
        "filter_1pct_p99_ms": one_percent["p99_ms"],
        "filter_1pct_recall_at_10": one_percent["recall_at_10"],
    }
    return result | walks(index, queries[:walk_n], wide)


def node_stats(url: str, index: str) -> dict[str, float]:
    import requests

    store = requests.get(f"{url}/{index}/_stats/store,segments", timeout=30).json()["_all"]["primaries"]
    jvm = next(iter(requests.get(f"{url}/_nodes/stats/jvm", timeout=30).json()["nodes"].values()))["jvm"]
    return {
        "disk_mb": store["store"]["size_in_bytes"] / 2**20,
        "segments": store["segments"]["count"],
        "heap_max_mb": jvm["mem"]["heap_max_in_bytes"] / 2**20,
        "node_rss_mb": node_rss_mb(),
    }


def node_rss_mb() -> float:
    """Resident memory of the node's processes (its process group), from /proc."""
    state = json.loads(opensearch_node.STATE.read_text())
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) != state["pid"]:
                    continue
                status = (entry / "status").read_text()
            except (OSError, ProcessLookupError):
                continue
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    return total / 1024


def on_node(url: str, alias: str, reindex: bool = False, **options: Any) -> OpenSearchIndex:
    chosen = IndexOptions(engine=opensearch_node.ENGINE, replicas=0, **options)  # type: ignore[arg-type]
    client = connect(url, auth="none", timeout=600.0)
    return OpenSearchIndex(client, alias, DIM, "bench", options=chosen, reindex=reindex)


def load_node(url: str, alias: str, vectors: np.ndarray) -> tuple[OpenSearchIndex, dict[str, float]]:
    """Backfill into a new index as `visual-search backfill` does (`bulk_load`, then `activate`, which
    refreshes, force-merges and restores the settings before the alias moves)."""
    index = on_node(url, alias, reindex=True)
    stream = (
        a for start in range(0, len(vectors), BATCH) for a in assets(vectors[start : start + BATCH], start)
    )
    load_s, written = timed(lambda: index.bulk_load(stream))
    assert written == len(vectors), (written, len(vectors))
    segments = node_stats(url, index.physical_name)["segments"]
    merge_s = index.finish_load()
    index.activate(index.physical_name)
    return on_node(url, alias), {
        "index_per_s": len(vectors) / load_s,
        "segments_before_merge": segments,
        "force_merge_s": merge_s,
        "index_per_s_with_merge": len(vectors) / (load_s + merge_s),
    }


def duplicates_report(url: str, vectors: np.ndarray) -> dict[str, float]:
    alias = f"vs-bench-dup-{uuid.uuid4().hex[:6]}"
    index, _ = load_node(url, alias, vectors)
    try:
        finder = DuplicateFinder(index, near_threshold=0.95, similar_threshold=0.9)
        seconds, items = timed(lambda: list(finder.report(index.iter_assets())))
    finally:
        index._os.indices.delete(index=index.physical_name, ignore=[404])
    groups = sum(not isinstance(item, str) for item in items)
    return {"assets": len(vectors), "report_s": seconds, "per_asset_ms": seconds / len(vectors) * 1000,
            "groups": groups}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--walk-queries", type=int, default=100, help="queries walked over 10 pages")
    parser.add_argument("--heap", default="2g", help="the node's heap, when this starts it")
    parser.add_argument("--duplicates-n", type=int, default=10_000)
    parser.add_argument("--skip-duplicates", action="store_true")
    parser.add_argument("--skip-embedded", action="store_true")
    parser.add_argument("--k-sweep", nargs="*", default=[f"{f}:{x}" for f, x in K_SWEEP],
                        help="k_floor:k_factor[:ef_search] to count skips for")  # fmt: skip
    parser.add_argument("--ef-sweep", nargs="*", type=int, default=list(EF_SWEEP))
    args = parser.parse_args()

    started = time.perf_counter()
    vectors, queries = dataset("clustered", args.n)
    queries = queries[: args.queries]
    truth = exact_top(vectors, queries, 10)
    in_filter = np.flatnonzero(np.arange(args.n) % 100 == 7)
    filtered_truth = exact_top(vectors, queries, 10, rows=in_filter)
    url = opensearch_node.running_url() or opensearch_node.start(heap=args.heap)
    results: dict[str, dict[str, float]] = {}

    if not args.skip_embedded:
        with tempfile.TemporaryDirectory() as folder:
            embedded = EmbeddedIndex(Path(folder) / "bench.sqlite3", DIM)
            print(f"embedded: indexing {args.n} x {DIM} ...", flush=True)
            write_s, _ = timed(
                lambda: [embedded.upsert(assets(vectors[s : s + BATCH], s)) for s in range(0, args.n, BATCH)]
            )
            catch_up_s, _ = timed(embedded.wait_for_graph)
            results["embedded"] = {
                "index_per_s": args.n / write_s,
                "graph_catch_up_s": catch_up_s,
                "in_graph_per_s": args.n / (write_s + catch_up_s),
                **measure(embedded, None, queries, truth, filtered_truth, args.walk_queries),
            }
            embedded.close()
            print(f"embedded: {results['embedded']}", flush=True)

    alias = f"vs-bench-{uuid.uuid4().hex[:6]}"
    print(f"OpenSearch node: bulk-loading {args.n} x {DIM} ...", flush=True)
    node, loaded = load_node(url, alias, vectors)
    print(f"OpenSearch node: {loaded}", flush=True)
    try:
        old = on_node(url, alias, k_floor=MAX_HITS)  # k = max_hits on every page, as before issue #22
        print("OpenSearch node: measuring ...", flush=True)
        wide = reference_walks(old, queries[: args.walk_queries])
        measured = measure(node, wide, queries, truth, filtered_truth, args.walk_queries)
        results["opensearch"] = {**loaded, **measured, **node_stats(url, node.physical_name)}
        first = page_one(old, queries, truth)
        results["opensearch k=max_hits"] = {f"page1_{k}": v for k, v in first.items()}
        for floor, factor, *beam in (pair.split(":") for pair in args.k_sweep):
            ef = {"ef_search": int(beam[0])} if beam else {}
            swept = on_node(url, alias, k_floor=int(floor), k_factor=float(factor), **ef)
            name = f"opensearch k_floor={floor} k_factor={factor}" + (f" ef_search={beam[0]}" if beam else "")
            results[name] = walks(swept, queries[: args.walk_queries], wide)
        for ef in args.ef_sweep:
            # k_floor 10: on Lucene the beam is max(k, ef_search), so this measures the beam alone
            swept = page_one(on_node(url, alias, ef_search=ef, k_floor=10), queries, truth)
            results[f"opensearch beam ef_search={ef}"] = {f"page1_{k}": v for k, v in swept.items()}
    finally:
        node._os.indices.delete(index=node.physical_name, ignore=[404])

    duplicates = None
    if not args.skip_duplicates:
        print(f"duplicates report over {args.duplicates_n} assets on the node ...", flush=True)
        duplicates = duplicates_report(url, vectors[: args.duplicates_n])

    print(f"\nclustered, n={args.n:,} x {DIM}; defaults {IndexOptions()}")
    for name, row in results.items():
        print(f"\n{name}")
        for metric, value in row.items():
            shown = f"{value:>14.4g}" if isinstance(value, int | float) else f"  {value}"
            print(f"  {metric:32}{shown}")
    if duplicates:
        print(f"\nduplicates report: {duplicates}")
    total_s = time.perf_counter() - started
    print(f"\n{total_s / 60:.1f} min in all")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.date.today().isoformat(),
        "n": args.n,
        "dim": DIM,
        "engine": opensearch_node.ENGINE,
        "opensearch": opensearch_node.VERSION,
        "defaults": dataclasses.asdict(IndexOptions()),
        "results": results,
        "duplicates": duplicates,
        "minutes": total_s / 60,
    }
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
