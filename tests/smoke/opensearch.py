"""Smoke test for a real OpenSearch cluster: `make smoke-opensearch OPENSEARCH_URL=https://...`.

Creates a throw-away alias and index (`vs-smoke-<random>`), writes 200 random unit vectors through the
adapter, pages through a filtered k-NN search with search_after, checks deletes and counts, swaps the
alias to a second index, and removes everything it created. Auth: OPENSEARCH_AUTH=sigv4 (default; the
AWS credentials of the shell, OPENSEARCH_MODE=serverless for a collection, with OPENSEARCH_GENERATION
nextgen or classic), basic (OPENSEARCH_USERNAME,
OPENSEARCH_PASSWORD) or none. OPENSEARCH_ENGINE (faiss by default; lucene where faiss's native libraries are
missing, as on the local node of `make smoke-opensearch-local`) and OPENSEARCH_REPLICAS (1) set the index.

On Serverless, writes become searchable only after the collection's refresh (AWS: 60 s on Classic
collections, 10 s on NextGen): the test polls for up to SERVERLESS_REFRESH_S instead of waiting a fixed
time.
"""

from __future__ import annotations

import os
import secrets
import sys
import time

import numpy as np

from tests.fixtures.documents import document
from visual_search.index.opensearch import OpenSearchIndex, connect
from visual_search.index.opensearch_mapping import IndexOptions
from visual_search.index.port import Filters, IndexedAsset, SearchAfter

DIM = 32
SERVERLESS_REFRESH_S = 60.0


def main() -> int:
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        print("set OPENSEARCH_URL=https://your-domain-or-collection-endpoint", file=sys.stderr)
        return 2
    mode = os.environ.get("OPENSEARCH_MODE", "managed")
    client = connect(
        url,
        auth=os.environ.get("OPENSEARCH_AUTH", "sigv4"),  # type: ignore[arg-type]
        mode=mode,  # type: ignore[arg-type]
        region=os.environ.get("AWS_REGION"),
        username=os.environ.get("OPENSEARCH_USERNAME"),
        password=os.environ.get("OPENSEARCH_PASSWORD"),
    )
    alias = f"vs-smoke-{secrets.token_hex(4)}"
    options = IndexOptions(
        engine=os.environ.get("OPENSEARCH_ENGINE", "faiss"),  # type: ignore[arg-type]
        replicas=int(os.environ.get("OPENSEARCH_REPLICAS", "1")),
    )
    generation = os.environ.get("OPENSEARCH_GENERATION", "nextgen")
    index = OpenSearchIndex(
        client,
        alias,
        DIM,
        "smoke-model",
        mode=mode,
        options=options,
        generation=generation,  # type: ignore[arg-type]
    )
    try:
        run(index, mode)
    finally:
        for name in (index.physical_name, f"{alias}-next"):
            client.indices.delete(index=name, ignore=[404])
    print("smoke test passed")
    return 0


def settled(check, mode: str, within_s: float = SERVERLESS_REFRESH_S) -> bool:
    """True once `check()` holds; on Serverless, polled until its refresh has made writes visible."""
    deadline = time.monotonic() + (within_s if mode == "serverless" else 0.0)
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(1.0)
    return True


def run(index: OpenSearchIndex, mode: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((200, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assets = [
        IndexedAsset(f"{n:032x}", vectors[n], document(f"{n:032x}", f"p{n}", folder="a" if n % 2 else "b"))
        for n in range(200)
    ]
    index.upsert(assets)
    assert settled(lambda: index.count() == 200, mode), index.count()
    pages, after = [], None
    while True:
        page = index.knn_page(vectors[0], 25, after=after, filters=Filters(folder="a"), max_hits=100)
        if not page:
            break
        pages += page
        after = SearchAfter(page[-1].score, page[-1].asset_id)
    assert len(pages) == len({h.asset_id for h in pages}) == 100, len(pages)
    assert all(h.document.folder == "a" for h in pages)
    print(f"paged {len(pages)} filtered hits without repeats; best score {pages[0].score:.4f}")
    index.delete([a.asset_id for a in assets[:10]])
    assert settled(lambda: index.count() == 190, mode), index.count()
    index.create_physical(f"{index.alias}-next")
    index.activate(f"{index.alias}-next")
    assert index.count() == 0
    print("alias swapped to an empty index")


if __name__ == "__main__":
    sys.exit(main())
