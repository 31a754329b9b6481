"""Benchmark of the embedded vector index, on one thread, against exact brute force in the same run.

    python bench/index.py                      # 100,000 x 512, both datasets
    python bench/index.py --n 10000 --data clustered
    nice python bench/index.py --n 1000000 --data clustered   # ~10 min here

Datasets (seeded, unit length, dimension 512):
* clustered: points scattered around a two-level hierarchy of centres, queries drawn the same way. Real
  CLIP embeddings have neighbourhoods like this; the bars are meant for it.
* uniform: independent Gaussian directions. Every point is about equally far from every other (top-10
  similarity ~0.19 against a spread of ~0.04), so no graph index can beat a scan here; it is the worst
  case, reported to show how the index degrades, not held to the recall bar.

Filters: every asset is in folder `gNN/fMM` (MM = n mod 100, NN = MM mod 20), so a filter on `g07` keeps 5%
and one on `g07/f07` keeps 1%.

Bulk insert is timed until the last upsert returned (each is committed and searchable by then); the graph,
built on the index's second thread, may still be catching up: the time it then takes is reported, as is
the rate counting it (`in_graph_per_s`), and a few queries answered meanwhile.

Reopening is measured in a separate process, twice: first "cold", with the index's files dropped from the
page cache beforehand (posix_fadvise DONTNEED on each: this container may not write
/proc/sys/vm/drop_caches), then warm. The warm probe also reports the index's own resident memory: its
resident set after opening and answering a query, minus the same process's before opening (the
interpreter, numpy and usearch loaded), next to the raw float32 vectors' size. This process's copies of
the dataset and of the ground truth are not the index's.

Prints a table and writes bench/results/index.json.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy loads its BLAS.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.fixtures, from a checkout
from tests.fixtures.clustered import clustered, unit
from tests.fixtures.documents import document
from visual_search.index.embedded import EmbeddedIndex, GraphParams
from visual_search.index.port import Filters, IndexedAsset

DIM = 512
QUERIES = 200
BATCH = 1000
BARS = {
    "insert_per_s": (">=", 5000.0),
    "query_p50_ms": ("<=", 5.0),
    "query_p99_ms": ("<=", 15.0),
    "recall_at_10": (">=", 0.99),
    "filtered_1pct_p50_ms": ("<=", 20.0),
    "reopen_s": ("<=", 3.0),
    "reopen_cold_s": ("<=", 3.0),
    "resident_vs_raw": ("<=", 1.5),
}
RESULTS = Path(__file__).resolve().parent / "results" / "index.json"


def dataset(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (n, DIM), queries (QUERIES, DIM)), float32 unit rows."""
    if kind == "uniform":
        rng = np.random.default_rng(seed)
        vectors = unit(rng.standard_normal((n + QUERIES, DIM), dtype=np.float32))
        return vectors[:n], vectors[n:]
    return clustered(n, QUERIES, DIM, seed)


def assets(vectors: np.ndarray, start: int) -> list[IndexedAsset]:
    return [
        IndexedAsset(
            f"{start + n:032x}",
            vector,
            document(f"{start + n:032x}", f"img{start + n}", folder=_folder(start + n)),
        )
        for n, vector in enumerate(vectors)
    ]


def _folder(number: int) -> str:
    leaf = number % 100
    return f"g{leaf % 20:02d}/f{leaf:02d}"


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int = 10) -> np.ndarray:
    scores = vectors @ query
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def run(kind: str, n: int, params: GraphParams, folder: Path, sweep: list[int]) -> dict[str, float]:
    vectors, queries = dataset(kind, n)
    path = folder / f"{kind}.sqlite3"
    index = EmbeddedIndex(path, DIM, params=params)
    insert_s, _ = timed(lambda: [index.upsert(assets(vectors[s : s + BATCH], s)) for s in range(0, n, BATCH)])
    # Every upsert returned once durable and searchable; the graph is built behind them on another thread.
    # A few queries while it catches up (exact over the rows it lacks), then the rest once it has.
    catching_up = [timed(lambda q=q: index.knn_page(q, 10))[0] for q in queries[:5]]
    graph_wait_s, _ = timed(index.wait_for_graph)

    exact_times, truth = [], []
    for query in queries:
        seconds, top = timed(lambda q=query: brute_force(vectors, q))
        exact_times.append(seconds)
        truth.append({f"{i:032x}" for i in top.tolist()})

    query_times, recall = _queries(index, queries, truth)
    swept = {}
    for expansion in sweep:
        index.set_expansion_search(expansion)
        times, swept[f"ef{expansion}_recall_at_10"] = _queries(index, queries, truth)
        swept[f"ef{expansion}_p50_ms"], swept[f"ef{expansion}_p99_ms"] = _ms(times, 50), _ms(times, 99)
    index.set_expansion_search(params.expansion_search)

    filtered = {}
    for name, only in (("5pct", Filters(folder="g07")), ("1pct", Filters(folder="g07/f07"))):
        times = [timed(lambda q=q, f=only: index.knn_page(q, 10, filters=f))[0] for q in queries]
        filtered[name] = _ms(times, 50)
    in_process = index.memory_usage()

    close_s, _ = timed(index.close)  # writes the snapshot, and lets go of the index's memory
    reopened_cold = _probe_in_another_process(path, params, cold=True)
    reopened = _probe_in_another_process(path, params)

    top_scores = np.sort(vectors[:20_000] @ queries[:20].T, axis=0)[::-1]
    return {
        "n": n,
        "dim": DIM,
        "bulk_insert_s": insert_s,
        "insert_per_s": n / insert_s,
        "graph_wait_after_insert_s": graph_wait_s,
        "in_graph_per_s": n / (insert_s + graph_wait_s),
        "query_while_graph_catches_up_ms": _ms(catching_up, 50),
        "query_p50_ms": _ms(query_times, 50),
        "query_p99_ms": _ms(query_times, 99),
        "recall_at_10": recall,
        "brute_force_p50_ms": _ms(exact_times, 50),
        "speedup_vs_brute_force": _ms(exact_times, 50) / _ms(query_times, 50),
        "filtered_5pct_p50_ms": filtered["5pct"],
        "filtered_1pct_p50_ms": filtered["1pct"],
        "close_with_snapshot_s": close_s,
        "reopen_s": reopen_s_of(reopened),
        "reopen_cold_s": reopen_s_of(reopened_cold),
        "resident_mb": reopened["resident_bytes"] / 2**20,
        "resident_peak_mb": reopened["resident_peak_bytes"] / 2**20,
        "raw_vectors_mb": vectors.nbytes / 2**20,
        "resident_vs_raw": reopened["resident_bytes"] / vectors.nbytes,
        "rows_mb": in_process["rows"] / 2**20,
        "graph_mb": in_process["graph"] / 2**20,
        "top10_similarity_in_20k": float(top_scores[9].mean()),
        "median_similarity": float(np.median(top_scores)),
        "load_average_1min": os.getloadavg()[0],  # the machine is shared: latencies are only as quiet as it
        **swept,
    }


def _queries(index: EmbeddedIndex, queries: np.ndarray, truth: list[set[str]]) -> tuple[list[float], float]:
    """Each query's seconds, and the recall@10 of them all."""
    times, found = [], 0
    for query, expected in zip(queries, truth, strict=True):
        seconds, hits = timed(lambda q=query: index.knn_page(q, 10))
        times.append(seconds)
        found += len(expected & {hit.asset_id for hit in hits})
    return times, found / (10 * len(queries))


def reopen_s_of(probe: dict[str, float]) -> float:
    return probe["open_s"] + probe["first_query_s"]


def _probe_in_another_process(path: Path, params: GraphParams, cold: bool = False) -> dict[str, float]:
    if cold:
        drop_from_page_cache(path.parent)
    command = [sys.executable, __file__, "--probe", str(path), "--params", json.dumps(asdict(params))]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def drop_from_page_cache(folder: Path) -> None:
    """Evict the files' pages from the page cache (written back first), so the next read is from disk."""
    for file in folder.iterdir():
        fd = os.open(file, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def probe(path: Path, params: GraphParams) -> dict[str, float]:
    """Open the index, answer one query; the time it took and the resident memory it added."""
    query = unit(np.random.default_rng(7).standard_normal((1, DIM), dtype=np.float32))[0]
    baseline = _status("VmRSS")
    open_s, index = timed(lambda: EmbeddedIndex(path, DIM, params=params))
    first_query_s, _ = timed(lambda: index.knn_page(query, 10))
    for _ in range(100):  # pages touched by searching count too
        index.knn_page(unit(np.random.default_rng().standard_normal((1, DIM), dtype=np.float32))[0], 10)
    result = {
        "open_s": open_s,
        "first_query_s": first_query_s,
        "resident_bytes": _status("VmRSS") - baseline,
        "resident_peak_bytes": _status("VmHWM") - baseline,
    }
    index.close()
    return result


def _status(field: str) -> int:
    """A field of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _ms(seconds: list[float], percentile: float) -> float:
    return float(np.percentile(seconds, percentile) * 1000)


def verdict(name: str, value: float) -> str:
    if name not in BARS:
        return ""
    op, bar = BARS[name]
    passed = value <= bar if op == "<=" else value >= bar
    return f"{op} {bar:g}  {'PASS' if passed else 'FAIL'}"


def print_table(results: dict[str, dict[str, float]]) -> None:
    kinds = list(results)
    print(f"{'metric':28}" + "".join(f"{kind:>30}" for kind in kinds))
    for name in results[kinds[0]]:
        cells = "".join(f"{results[k][name]:>12.4g} {verdict(name, results[k][name]):>17}" for k in kinds)
        print(f"{name:28}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="number of vectors (default 100,000)")
    parser.add_argument(
        "--data", nargs="+", choices=["clustered", "uniform"], default=["clustered", "uniform"]
    )
    parser.add_argument("--connectivity", type=int, default=GraphParams.connectivity)
    parser.add_argument("--expansion-add", type=int, default=GraphParams.expansion_add)
    parser.add_argument("--expansion-search", type=int, default=GraphParams.expansion_search)
    parser.add_argument("--dtype", default=GraphParams.dtype, choices=["f16", "f32", "bf16", "i8"])
    parser.add_argument(
        "--sweep", type=int, nargs="*", default=[], help="also measure at these expansion_search values"
    )
    parser.add_argument("--threads", type=int, default=GraphParams.threads, help="usearch's, when adding")
    parser.add_argument("--dir", type=Path, help="where to put the index files (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where to write the JSON ({RESULTS})")
    parser.add_argument("--keep", action="store_true", help="keep the index files in --dir (to probe again)")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)  # internal: see probe()
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, GraphParams(**json.loads(args.params)))))
        return
    params = GraphParams(
        connectivity=args.connectivity,
        expansion_add=args.expansion_add,
        expansion_search=args.expansion_search,
        threads=args.threads,
        dtype=args.dtype,
    )

    results = {}
    kept = contextlib.nullcontext(tempfile.mkdtemp(dir=args.dir)) if args.keep else None
    with kept or tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for kind in args.data:
            print(f"{kind}: {args.n} x {DIM} in {folder} ...", flush=True)
            results[kind] = run(kind, args.n, params, Path(folder), args.sweep)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", *sys.argv])
    args.out.write_text(
        json.dumps({"command": command, "params": asdict(params), "results": results}, indent=2) + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
