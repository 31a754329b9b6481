"""Bulk indexing into the local OpenSearch node: the ingest path against the backfill's bulk load, in one run.

    nice python bench/opensearch_bulk.py                      # 100,000 x 512 clustered (starts the node)
    nice python bench/opensearch_bulk.py --n 20000 --skip-upsert
    nice python bench/opensearch_bulk.py --n 100000 --sweep 1:1,1:2,2:2,4:2,2:3   # MB:threads, load only

* upsert: `OpenSearchIndex.upsert` in batches of 1,000 (as bench/opensearch.py and the ingest path write:
  one request at a time, `refresh=wait_for`), into an index with the configured refresh (1 s).
* bulk load: `OpenSearchIndex(reindex=True).bulk_load` (index/opensearch_bulk.py: parallel requests cut
  by bytes, refresh off, no replica, orjson), then `finish_load` (refresh, force merge to one segment,
  settings restored) and `activate`. Reported: the load's rate, the force merge's seconds and the rate
  counting everything up to the alias moving.

Also: what encoding a document costs this process (stdlib json as the ingest path writes it, and the
load's orjson), this process's CPU seconds during the load, the node's heap and JDK, and the machine's
load average before and after (the 2 cores are shared: other work slows the node). The node is
tests/opensearch_node.py's as it starts by default (512 MB heap, Lucene engine), single shard, no replica.

Prints a table and writes bench/results/opensearch_bulk.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from index import BATCH, DIM, assets, dataset  # noqa: E402  (bench/index.py)

from tests import opensearch_node  # noqa: E402
from visual_search.index.opensearch import OpenSearchIndex, connect  # noqa: E402
from visual_search.index.opensearch_bulk import BulkTuning, encode  # noqa: E402
from visual_search.index.opensearch_mapping import IndexOptions, to_source  # noqa: E402
from visual_search.index.port import IndexedAsset  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "opensearch_bulk.json"
OPTIONS = IndexOptions(engine=opensearch_node.ENGINE, replicas=0)  # type: ignore[arg-type]


def stream(vectors: np.ndarray) -> Iterator[IndexedAsset]:
    for start in range(0, len(vectors), BATCH):
        yield from assets(vectors[start : start + BATCH], start)


def adapter(url: str, alias: str, reindex: bool) -> OpenSearchIndex:
    client = connect(url, auth="none", timeout=120.0)
    return OpenSearchIndex(client, alias, DIM, "bench", options=OPTIONS, reindex=reindex, budget_s=120.0)


def drop(index: OpenSearchIndex) -> None:
    index._os.indices.delete(index=index.physical_name, ignore=[404])


def node_cpu_s() -> float:
    """CPU seconds the node's process has used (user + system), from /proc: unlike wall time, what the
    indexing costs whatever else runs on the machine."""
    pid = json.loads(opensearch_node.STATE.read_text())["pid"]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def encoding_us(vectors: np.ndarray) -> dict[str, float]:
    """Microseconds to encode one document, as the ingest path's client does and as the load does."""
    sample = list(stream(vectors[:2000]))
    started = time.perf_counter()
    for asset in sample:
        json.dumps(to_source(asset, asset.vector), separators=(",", ":"))
    stdlib = time.perf_counter() - started
    started = time.perf_counter()
    sizes = [len(encode(asset, asset.vector)) for asset in sample]
    fast = time.perf_counter() - started
    return {
        "stdlib_json_us": stdlib / len(sample) * 1e6,
        "orjson_us": fast / len(sample) * 1e6,
        "orjson_bytes": float(np.mean(sizes)),
    }


def by_upsert(url: str, vectors: np.ndarray) -> dict[str, float]:
    index = adapter(url, f"vs-bulkbench-{uuid.uuid4().hex[:6]}", reindex=False)
    try:
        cpu, node_cpu, started = time.process_time(), node_cpu_s(), time.perf_counter()
        for start in range(0, len(vectors), BATCH):
            index.upsert(assets(vectors[start : start + BATCH], start))
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        node_s = node_cpu_s() - node_cpu
        assert index.count() == len(vectors)
    finally:
        drop(index)
    return {"seconds": seconds, **throughput(len(vectors), seconds, cpu_s, node_s)}


def throughput(docs: int, seconds: float, client_cpu_s: float, node_cpu_s: float) -> dict[str, float]:
    """Documents per second, and what they cost in CPU on both sides with the rate that allows on this
    machine's cores with nothing else running (both sides busy all the time: an upper bound)."""
    return {
        "docs_per_s": docs / seconds,
        "client_cpu_s": client_cpu_s,
        "node_cpu_s": node_cpu_s,
        "cpu_ms_per_doc": (client_cpu_s + node_cpu_s) / docs * 1000,
        "docs_per_s_cpu_bound": docs / ((client_cpu_s + node_cpu_s) / (os.cpu_count() or 1)),
    }


def by_bulk_load(url: str, vectors: np.ndarray, tuning: BulkTuning, finish: bool = True) -> dict[str, float]:
    alias = f"vs-bulkbench-{uuid.uuid4().hex[:6]}"
    index = adapter(url, alias, reindex=True)
    try:
        cpu, node_cpu, started = time.process_time(), node_cpu_s(), time.perf_counter()
        written = index.bulk_load(stream(vectors), tuning)
        load_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        node_s = node_cpu_s() - node_cpu
        result = {
            "chunk_bytes": tuning.chunk_bytes,
            "threads": tuning.threads,
            "load_s": load_s,
            **throughput(written, load_s, cpu_s, node_s),
        }
        if finish:
            index._os.indices.refresh(index=index.physical_name, request_timeout=600)
            result["segments_before_merge"] = len(
                index._os.cat.segments(index=index.physical_name, format="json")
            )
            node_cpu = node_cpu_s()
            merge_s = index.finish_load()
            result["force_merge_node_cpu_s"] = node_cpu_s() - node_cpu
            index.activate(index.physical_name)
            total_s = time.perf_counter() - started
            assert index.count() == written == len(vectors)
            settings = index._os.indices.get_settings(index=index.physical_name)[index.physical_name]
            result |= {
                "force_merge_s": merge_s,
                "segments_after_merge": len(index._os.cat.segments(index=index.physical_name, format="json")),
                "docs_per_s_with_merge": written / total_s,
                "total_s": total_s,
                "refresh_interval_after": settings["settings"]["index"].get("refresh_interval", "default"),
            }
        return result
    finally:
        drop(index)


def node_facts(url: str) -> dict[str, object]:
    client = connect(url, auth="none", timeout=30.0)
    (node,) = client.nodes.info(metric="jvm")["nodes"].values()
    return {
        "heap_max_mb": node["jvm"]["mem"]["heap_max_in_bytes"] // 2**20,
        "jdk": node["jvm"]["version"],
        "cores": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--chunk-mb", type=float, default=BulkTuning().chunk_bytes / 1e6)
    parser.add_argument("--threads", type=int, default=BulkTuning().threads)
    parser.add_argument("--skip-upsert", action="store_true", help="only the bulk load")
    parser.add_argument("--sweep", help="MB:threads,... : bulk loads without the merge, to tune")
    args = parser.parse_args()

    vectors, _ = dataset("clustered", args.n)
    url = opensearch_node.running_url() or opensearch_node.start()
    record: dict[str, object] = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join(["python", "bench/opensearch_bulk.py", *sys.argv[1:]]),
        "n": args.n,
        "dim": DIM,
        "engine": opensearch_node.ENGINE,
        "opensearch": opensearch_node.VERSION,
        "node": node_facts(url),
        "load_average_before": os.getloadavg(),
        "encoding": encoding_us(vectors),
    }
    print(f"encoding one document: {record['encoding']}", flush=True)
    if args.sweep:
        sweep = []
        for spec in args.sweep.split(","):
            megabytes, threads = spec.split(":")
            tuning = BulkTuning(chunk_bytes=int(float(megabytes) * 1e6), threads=int(threads))
            result = by_bulk_load(url, vectors, tuning, finish=False) | {"load_average": os.getloadavg()[0]}
            rate, busy = result["docs_per_s"], result["load_average"]
            print(f"  {spec:>8}: {rate:8.0f} docs/s  (load average {busy:.1f})", flush=True)
            sweep.append(result)
        record["sweep"] = sweep
    else:
        tuning = BulkTuning(chunk_bytes=int(args.chunk_mb * 1e6), threads=args.threads)
        if not args.skip_upsert:
            print(f"upsert, batches of {BATCH}: {args.n:,} x {DIM} ...", flush=True)
            record["upsert"] = by_upsert(url, vectors)
        print(
            f"bulk load, {tuning.chunk_bytes / 1e6:g} MB x {tuning.threads} threads: {args.n:,} x {DIM} ...",
            flush=True,
        )
        record["bulk_load"] = by_bulk_load(url, vectors, tuning)
        for name in ("upsert", "bulk_load"):
            if name in record:
                print(
                    f"{name:10}"
                    + "".join(
                        f"  {k}={v:.4g}" if isinstance(v, float) else f"  {k}={v}"
                        for k, v in record[name].items()
                    )
                )  # type: ignore[union-attr]
        if "upsert" in record:
            ratio = record["bulk_load"]["docs_per_s"] / record["upsert"]["docs_per_s"]  # type: ignore[index]
            record["ratio"] = ratio
            print(f"bulk load / upsert: x{ratio:.2f}")
    record["load_average_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"load average before {record['load_average_before']}, after {record['load_average_after']}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
