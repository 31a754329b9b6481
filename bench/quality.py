"""Search quality of a model folder's int8 towers against its own fp32 towers, on real photos.

On a corpus of >= 1,000 photos (`photo_corpus.py`: scikit-image's photos, its 200 faces, and crops,
flips and re-encodes of the photos), each photo is embedded by both precisions and reported:
- the cosine between its int8 and its fp32 embedding (mean, 1st percentile, min);
- top-10 overlap: with each photo as the query, the share of its 10 nearest neighbours among the other
  photos (by cosine) that int8 embeddings find and fp32 embeddings find alike, averaged over queries.
With `--labels`, text->image recall@1/5/10 of each precision on a labelled set (meaningful with real
weights only): a JSON list of {"image": path, "text": caption}, paths relative to the JSON file; each
caption ranks all the labelled images and is a hit when its own image is in the top k.

    python bench/quality.py .cache/models/vit-b-32 [--n 1000] [--labels set.json] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from visual_search.embedding import Embedder, Manifest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_corpus import corpus  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOP_K = 10
BATCH = 16


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two (N, D) arrays of unit rows."""
    return np.sum(a * b, axis=1)


def top_k_overlap(reference: np.ndarray, candidate: np.ndarray, k: int = TOP_K) -> float:
    """Mean over queries of |top-k by reference ∩ top-k by candidate| / k; each row of the (N, D) unit
    arrays queries all the other rows of the same array."""
    return float(
        np.mean([len(a & b) / k for a, b in zip(_top_k(reference, k), _top_k(candidate, k), strict=True)])
    )


def recall_at(texts: np.ndarray, images: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Text i's own image is image i; (N, D) unit rows each. Share of texts whose image ranks in the top k."""
    ranks = np.argsort(-(texts @ images.T), axis=1)
    own = np.argmax(ranks == np.arange(len(texts))[:, None], axis=1)
    return {f"recall@{k}": float(np.mean(own < k)) for k in ks}


def _top_k(vectors: np.ndarray, k: int) -> list[set[int]]:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return [set(row) for row in np.argpartition(-sims, k, axis=1)[:, :k].tolist()]


def embed_all(embedder: Embedder, photos: list[bytes]) -> np.ndarray:
    return np.concatenate(
        [embedder.embed_images(photos[i : i + BATCH]) for i in range(0, len(photos), BATCH)]
    )


def labelled_recall(model: Path, precisions: list[str], labels: Path) -> dict[str, dict[str, float]]:
    pairs = json.loads(labels.read_text())
    images = [(labels.parent / p["image"]).read_bytes() for p in pairs]
    texts = [p["text"] for p in pairs]
    result = {}
    for precision in precisions:
        embedder = Embedder.from_dir(model, precision=precision, threads=1)
        result[precision] = recall_at(embedder.embed_texts(texts), embed_all(embedder, images))
    return result | {"pairs": len(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a model folder made by visual-search build-model")
    parser.add_argument("--n", type=int, default=1000, help="corpus size (>= 1,000 for the issue's bar)")
    parser.add_argument("--labels", type=Path, help="JSON list of {image, text} for text->image recall")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "quality.json")
    args = parser.parse_args()
    towers = Manifest.load(args.model).towers["image"]
    if not {"fp32", "int8"} <= set(towers):
        raise SystemExit(
            f"{args.model} has no fp32 and int8 image towers to compare (has {', '.join(towers)})"
        )
    started = time.perf_counter()
    photos = [data for _, data in corpus(args.n)]
    vectors = {}
    for precision in ("fp32", "int8"):
        t = time.perf_counter()
        vectors[precision] = embed_all(Embedder.from_dir(args.model, precision=precision, threads=1), photos)
        print(f"embedded {len(photos)} photos with {precision} in {time.perf_counter() - t:.1f}s")
    cos = cosine_rows(vectors["fp32"], vectors["int8"])
    result = {
        "model": str(args.model),
        "family": Manifest.load(args.model).family,
        "photos": len(photos),
        "int8_vs_fp32": {
            "cosine_mean": float(cos.mean()),
            "cosine_p1": float(np.percentile(cos, 1)),
            "cosine_min": float(cos.min()),
            f"top{TOP_K}_overlap": top_k_overlap(vectors["fp32"], vectors["int8"]),
        },
    }
    if args.labels:
        result["text_to_image"] = labelled_recall(args.model, ["fp32", "int8"], args.labels)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
