"""Benchmark of the embedded vector index, on one thread, against exact brute force in the same run.

    python bench/index.py                      # 100,000 x 512, both datasets
    python bench/index.py --n 10000 --data clustered

Datasets (seeded, unit length, dimension 512):
* clustered: points scattered around a two-level hierarchy of centres, queries drawn the same way. Real
  CLIP embeddings have neighbourhoods like this; the bars are meant for it.
* uniform: independent Gaussian directions. Every point is about equally far from every other (top-10
  similarity ~0.19 against a spread of ~0.04), so no graph index can beat a scan here; it is the worst
  case, reported to show how the index degrades, not held to the recall bar.

Prints a table and writes bench/results/index.json.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy loads its BLAS.
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["MKL_NUM_THREADS"] = "1"

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from visual_search.index.embedded import EmbeddedIndex, GraphParams
from visual_search.index.port import Filters, IndexedAsset

DIM = 512
QUERIES = 200
BATCH = 1000
FOLDERS = 20  # a one-folder filter matches ~5%
BARS = {"query_p50_ms": ("<=", 10.0), "recall_at_10": (">=", 0.99), "reopen_s": ("<=", 2.0)}
RESULTS = Path(__file__).resolve().parent / "results" / "index.json"


def unit(array: np.ndarray) -> np.ndarray:
    return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)


def dataset(kind: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (n, DIM), queries (QUERIES, DIM)), float32 unit rows."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        vectors = unit(rng.standard_normal((n + QUERIES, DIM), dtype=np.float32))
        return vectors[:n], vectors[n:]
    topics = unit(rng.standard_normal((50, DIM), dtype=np.float32))
    subtopics = unit(topics[rng.integers(0, 50, 2000)] + _noise(rng, 2000, 0.8))

    def draw(count: int) -> np.ndarray:
        return unit(subtopics[rng.integers(0, 2000, count)] + _noise(rng, count, 0.8))

    return draw(n), draw(QUERIES)


def _noise(rng: np.random.Generator, count: int, scale: float) -> np.ndarray:
    return rng.standard_normal((count, DIM), dtype=np.float32) * np.float32(scale / np.sqrt(DIM))


def assets(vectors: np.ndarray, start: int) -> list[IndexedAsset]:
    return [
        IndexedAsset(
            f"{start + n:032x}",
            vector,
            {"public_id": f"img{start + n}", "folder": f"f{(start + n) % FOLDERS:02d}", "format": "jpg"},
        )
        for n, vector in enumerate(vectors)
    ]


def brute_force(vectors: np.ndarray, query: np.ndarray, k: int = 10) -> np.ndarray:
    scores = vectors @ query
    top = np.argpartition(-scores, k)[:k]
    return top[np.argsort(-scores[top])]


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def run(kind: str, n: int, params: GraphParams, folder: Path) -> dict[str, float]:
    vectors, queries = dataset(kind, n)
    path = folder / f"{kind}.sqlite3"
    index = EmbeddedIndex(path, DIM, params=params)
    insert_s, _ = timed(lambda: [index.upsert(assets(vectors[s : s + BATCH], s)) for s in range(0, n, BATCH)])

    exact_times, truth = [], []
    for query in queries:
        seconds, top = timed(lambda q=query: brute_force(vectors, q))
        exact_times.append(seconds)
        truth.append({f"{i:032x}" for i in top.tolist()})

    query_times, found = [], 0
    for query, expected in zip(queries, truth, strict=True):
        seconds, hits = timed(lambda q=query: index.knn_page(q, 10))
        query_times.append(seconds)
        found += len(expected & {hit.asset_id for hit in hits})

    only_one_folder = Filters(folder="f07")
    filtered_times = [timed(lambda q=q: index.knn_page(q, 10, filters=only_one_folder))[0] for q in queries]

    index.close()
    reopen_s, _ = timed(lambda: _open_and_answer(path, params, queries[0]))

    top_scores = np.sort(vectors[:20_000] @ queries[:20].T, axis=0)[::-1]
    return {
        "n": n,
        "dim": DIM,
        "bulk_insert_s": insert_s,
        "insert_per_s": n / insert_s,
        "query_p50_ms": _ms(query_times, 50),
        "query_p99_ms": _ms(query_times, 99),
        "recall_at_10": found / (10 * len(queries)),
        "brute_force_p50_ms": _ms(exact_times, 50),
        "speedup_vs_brute_force": _ms(exact_times, 50) / _ms(query_times, 50),
        "filtered_5pct_p50_ms": _ms(filtered_times, 50),
        "reopen_s": reopen_s,
        "top10_similarity_in_20k": float(top_scores[9].mean()),
        "median_similarity": float(np.median(top_scores)),
    }


def _open_and_answer(path: Path, params: GraphParams, query: np.ndarray) -> None:
    with EmbeddedIndex(path, DIM, params=params) as index:
        index.knn_page(query, 10)


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
    parser.add_argument("--dir", type=Path, help="where to put the index files (default: a temporary folder)")
    args = parser.parse_args()
    params = GraphParams(args.connectivity, args.expansion_add, args.expansion_search, 1, args.dtype)

    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        for kind in args.data:
            print(f"{kind}: {args.n} x {DIM} ...", flush=True)
            results[kind] = run(kind, args.n, params, Path(folder))
    print_table(results)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"params": asdict(params), "results": results}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
