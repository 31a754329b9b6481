"""Search use case: a query (text, image URL, image bytes or an indexed asset) -> one page of hits.

Pages are cut with `search_after` on (score desc, asset_id asc) and carried in a signed cursor bound
to the query, so paging never repeats or skips a hit while the index is unchanged. A query can walk
at most `max_hits_per_query` hits (the documented ceiling, below OpenSearch's k limit).

A search by `image_asset_id` reuses the stored vector (no model call) and leaves the asset itself out
of its results: "more like this" should not answer with the same picture. Hits and stored vectors
another model made (their document names it: an index a model switch moved under this process) are
refused with ModelSwitched, never ranked with this model's query.

The query vector of a search that has a next page is kept (a bounded LRU with a time to live, keyed by
the cursor's query key), so the next pages cost an index lookup only: an `image_url` is not fetched and
embedded again for every page. Past the TTL or evicted, the page computes it again, as page 1 did.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cachetools import TTLCache

from visual_search.defaults import DEFAULT_MAX_RESULTS
from visual_search.domain.document import AssetDocument
from visual_search.embedding import Embedder
from visual_search.embedding.decode import DecodeLimits, decode_image
from visual_search.embedding.preprocess import preprocess
from visual_search.embedding.score import api_score, min_cosine
from visual_search.errors import BadInput, InvalidCursor, ModelSwitched
from visual_search.index.port import Filters, Hit, SearchAfter, VectorIndex
from visual_search.search.cursor import CursorCodec, CursorState, ForeignCursor, query_key
from visual_search.search.lookup import find_asset


@dataclass(frozen=True)
class SearchQuery:
    """Exactly one of text, image_url, image_bytes, asset_id (`source` checks it)."""

    text: str | None = None
    image_url: str | None = None
    image_bytes: bytes | None = None
    asset_id: str | None = None
    max_results: int = DEFAULT_MAX_RESULTS
    next_cursor: str | None = None
    threshold: float = 0.0
    filters: Filters = field(default_factory=Filters)

    def source(self) -> tuple[str, Any]:
        given = [
            (name, value)
            for name, value in (
                ("text", self.text),
                ("image_url", self.image_url),
                ("image_file", self.image_bytes),
                ("image_asset_id", self.asset_id),
            )
            if value is not None
        ]
        if len(given) != 1:
            names = ", ".join(n for n, _ in given) or "none"
            raise BadInput(
                f"exactly one of text, image_url, image_file or image_asset_id is required (got {names})"
            )
        return given[0]


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]  # each with its raw cosine, which the cursor carries
    next_cursor: str | None
    took_ms: int
    scores: list[float] = field(default_factory=list)  # each hit's `score`, as `embedding.score.api_score`


class SearchService:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        codec: CursorCodec,
        fetch_image: Callable[[str], bytes],
        limits: DecodeLimits,
        max_hits: int,
        max_text_chars: int,
        kept_vectors: int = 256,
        kept_vectors_ttl_s: float = 600.0,
    ):
        self._embedder = embedder
        self._index = index
        self._codec = codec
        self._fetch_image = fetch_image
        self._limits = limits
        self._max_hits = max_hits
        self._max_text_chars = max_text_chars
        # A few KB each; the local server answers from several threads and TTLCache is not thread-safe.
        self._vectors: TTLCache[str, np.ndarray] = TTLCache(kept_vectors, kept_vectors_ttl_s)
        self._vectors_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """The model queries are embedded with."""
        return self._embedder.model_id

    def indexed(self) -> int:
        """How many assets the index holds."""
        return self._index.count()

    def search(self, query: SearchQuery) -> SearchPage:
        started = time.perf_counter()
        kind, value = query.source()
        if kind == "text":
            value = normalise_text(value)
        key = query_key(self._identity(query, kind, value))
        after, served, snapshot = None, 0, None
        if query.next_cursor:
            try:
                state = self._codec.decode(query.next_cursor, key)
            except ForeignCursor:
                # The key binds the model (`_identity`): after a model switch, the very parameters the
                # cursor came with make another key, and only a new search can go on.
                raise InvalidCursor(
                    "next_cursor belongs to a different query or model: pass the parameters it came "
                    "with, or start the search again"
                ) from None
            after, served, snapshot = SearchAfter(state.score, state.asset_id), state.served, state.snapshot
        exclude = query.asset_id
        vector = self._kept_vector(key) if query.next_cursor else None
        if vector is None:
            vector = self._query_vector(kind, value)
        remaining = self._max_hits - served
        size = min(query.max_results, remaining)
        hits: list[Hit] = []
        if size > 0:
            raw = self._index.knn_page(
                vector,
                size + (1 if exclude else 0),
                after=after,
                filters=query.filters,
                min_score=min_cosine(self._embedder.manifest.score, query.threshold, kind == "text"),
                max_hits=self._max_hits + (1 if exclude else 0),
                snapshot=snapshot,
                depth=served,
            )
            self._made_by_this_model(hit.document for hit in raw)
            hits = [h for h in raw if h.asset_id != exclude][:size]
        served += len(hits)
        cursor = None
        if hits and len(hits) == size and served < self._max_hits:
            # A point in time is scarce (OpenSearch allows 300 per node): only a search that has a next
            # page opens one, after its first page; the next pages read it.
            if snapshot is None and not query.next_cursor:
                snapshot = self._index.open_snapshot()
            last = hits[-1]
            cursor = self._codec.encode(CursorState(key, last.score, last.asset_id, served, snapshot))
            if kind != "image_asset_id":  # that one is an index lookup already
                with self._vectors_lock:
                    self._vectors[key] = vector
        elif snapshot is not None:
            self._index.close_snapshot(snapshot)  # the walk ends here
        spec = self._embedder.manifest.score
        scores = [api_score(spec, hit.score, kind == "text") for hit in hits]
        return SearchPage(hits, cursor, int((time.perf_counter() - started) * 1000), scores)

    def _kept_vector(self, key: str) -> np.ndarray | None:
        with self._vectors_lock:
            return self._vectors.get(key)

    def _query_vector(self, kind: str, value: Any) -> np.ndarray:
        if kind == "text":
            if not value:
                raise BadInput("text must not be empty")
            if len(value) > self._max_text_chars:
                raise BadInput(f"text is longer than {self._max_text_chars} characters")
            return self._embedder.embed_texts([value])[0]
        if kind == "image_asset_id":
            stored = find_asset(self._index, value)
            self._made_by_this_model([stored.document])
            return stored.vector
        data = self._fetch_image(value) if kind == "image_url" else value
        decoded = decode_image(data, self._limits, min_side=self._embedder.manifest.image.resize_to)
        pixels = preprocess(decoded.image, self._embedder.manifest.image)
        return self._embedder.embed_pixels(pixels[None])[0]

    def _made_by_this_model(self, documents: Iterable[AssetDocument]) -> None:
        """Refuse vectors another model made (their documents name it): a model switch moved the index
        under this process, whose query vectors mean nothing against them, whatever their dimension."""
        running = self._embedder.model_id
        for document in documents:
            if document.model_id and document.model_id != running:
                raise ModelSwitched(document.model_id, running)

    def _identity(self, query: SearchQuery, kind: str, value: Any) -> dict[str, Any]:
        """What defines the result list (the cursor is bound to it); uploaded bytes by their hash."""
        if kind == "image_file":
            value = hashlib.sha256(value).hexdigest()
        return {
            "kind": kind,
            "value": value,
            "threshold": query.threshold,
            "filters": [query.filters.folder, list(query.filters.labels()), list(query.filters.formats)],
            "model": self._embedder.model_id,
        }


def normalise_text(text: str) -> str:
    """NFC, whitespace runs folded to one space, ends trimmed — as the CLIP tokenizer cleans text anyway,
    so spellings that embed identically are one query, and a cursor from one serves the other.

    >>> normalise_text("  red\t shoe ")
    'red shoe'
    """
    return " ".join(unicodedata.normalize("NFC", text).split())


def decode_data_uri(value: str, max_bytes: int) -> bytes:
    """`data:<mime>;base64,<payload>` -> bytes (how the SDKs send image_file as a string)."""
    header, sep, payload = value.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise BadInput("image_file as a string must be a data:<mime>;base64,... URI or an http(s) URL")
    if len(payload) > (max_bytes * 4) // 3 + 4:
        raise BadInput(f"image_file is larger than {max_bytes:,} bytes")
    try:
        return base64.b64decode(payload, validate=True)
    except ValueError:
        raise BadInput("image_file data URI is not valid base64") from None
