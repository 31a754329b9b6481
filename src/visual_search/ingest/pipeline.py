"""Indexing use case: images in, vectors and documents in the index out.

A pipeline of small stages — decode and validate, embed (in groups, the next group decoding while
this one is embedded where cores allow), upsert — where a bad image fails alone: it is reported as
refused with a stable reason and never blocks the others. An item whose bytes the index already holds
for its asset at its key (a change of tags or context, written again whole) keeps its vector and
rendition: only its document is written. Errors from the index (a dependency)
propagate, so the caller can retry or dead-letter the whole batch.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

import numpy as np

from visual_search.domain.context import Context
from visual_search.domain.document import AssetDocument
from visual_search.domain.identity import AssetId, derived_asset_id
from visual_search.embedding import Embedder
from visual_search.embedding.decode import DecodedImage, DecodeLimits, decode_image
from visual_search.embedding.preprocess import preprocess
from visual_search.errors import ImageRejected
from visual_search.index.port import DocIds, IndexedAsset, VectorIndex
from visual_search.ingest.documents import build_document
from visual_search.ingest.renditions import RenditionWriter
from visual_search.storage.port import RESERVED_PREFIX, is_reserved

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestItem:
    key: str
    data: bytes
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    decoded: DecodedImage | None = None  # already decoded by `Ingestor.decode` (an upload checks first)
    asset_id: str | None = None  # the id stored with the object; None: derived from the key
    context: Context = ()
    # The ledger has the asset indexed at this key: look for the same bytes in the index first.
    may_be_unchanged: bool = False


@dataclass(frozen=True)
class IngestResult:
    key: str
    asset_id: str
    status: Literal["indexed", "refused"]
    reason: str | None = None  # stable code for refused items (ImageRejected.reason)
    message: str | None = None
    doc_id: str | None = None  # the index's id for the document, where the index chose it


@dataclass
class StageTimings:
    """Seconds spent per stage by the calls it was handed to."""

    decode_s: float = 0.0
    embed_s: float = 0.0
    write_s: float = 0.0


@dataclass(frozen=True)
class _Prepared:
    """One image decoded and ready to embed, with what the write stage needs of it."""

    position: int
    pixels: np.ndarray  # float32 (3, S, S)
    document: AssetDocument
    rendition: bytes | None


# Images per model call: ViT-B/32 int8 on one thread costs about the same per image from 8 up, and a
# smaller call lets the next one's decoding start sooner.
EMBED_BATCH = 8


def overlap_workers(model_threads: int) -> int:
    """Threads decoding the next images while the model embeds these: one when the process may use more
    cores than the model's threads (Pillow and onnxruntime release the GIL), else none (a one-vCPU
    Lambda gains nothing from it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return 1 if cores > model_threads else 0


class Ingestor:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        store_name: str,
        limits: DecodeLimits,
        renditions: RenditionWriter | None = None,
        decode_workers: int | None = None,
    ):
        self._embedder = embedder
        self._index = index
        self._store_name = store_name
        self._limits = limits
        self._renditions = renditions
        workers = overlap_workers(embedder.threads) if decode_workers is None else decode_workers
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="decode") if workers > 0 else None

    def decode(self, data: bytes) -> DecodedImage:
        """Decode as indexing does: the model's scale, this process's limits and decoding budget."""
        return decode_image(data, self._limits, min_side=self._embedder.manifest.image.resize_to)

    def ingest(
        self, items: Sequence[IngestItem], timings: StageTimings | None = None, known: DocIds | None = None
    ) -> list[IngestResult]:
        """Index a batch; one result per item, in order. `timings`, when given, gets this call's seconds
        per stage added (the caller owns it, so nothing here accumulates across calls; decode is summed
        over threads: with a decode worker it overlaps embedding, and the stages add up to more than
        the wall time). `known`: the document ids the ledger holds for these assets (see
        `VectorIndex.upsert`).

        Images are embedded `EMBED_BATCH` at a time; with a decode worker, the next group decodes while
        this one is embedded. The index gets one upsert (one transaction) for the whole batch, then the
        renditions are stored."""
        timings = timings if timings is not None else StageTimings()
        results: dict[int, IngestResult] = {}
        prepared: list[_Prepared] = []
        vectors: list[np.ndarray] = []
        kept = self._unchanged(items)
        groups = _groups([i for i in range(len(items)) if i not in kept], EMBED_BATCH)
        pending: Future | None = None
        try:
            for n, group in enumerate(groups):
                if pending is not None:
                    ready, seconds = pending.result()
                else:
                    ready, seconds = self._prepare(items, group, results)
                timings.decode_s += seconds
                pending = None
                if self._pool is not None and n + 1 < len(groups):
                    pending = self._pool.submit(self._prepare, items, groups[n + 1], results)
                if ready:
                    started = time.perf_counter()
                    vectors.extend(self._embedder.embed_pixels(np.stack([p.pixels for p in ready])))
                    timings.embed_s += time.perf_counter() - started
                    prepared.extend(ready)
        finally:
            if pending is not None:  # an error above: let the next group's decode finish, unseen
                wait([pending])
        if prepared or kept:
            started = time.perf_counter()
            doc_ids = self._index.upsert(
                [
                    IndexedAsset(p.document.asset_id, v, p.document)
                    for p, v in zip(prepared, vectors, strict=True)
                ]
                + list(kept.values()),
                known,
            )
            if self._renditions is not None:
                for p in prepared:
                    self._renditions.put(p.document.key, p.rendition)
            timings.write_s += time.perf_counter() - started
            for i in [p.position for p in prepared] + list(kept):
                asset_id = self._asset_id(items[i])
                results[i] = IngestResult(items[i].key, asset_id, "indexed", doc_id=doc_ids.get(asset_id))
        return [results[i] for i in range(len(items))]

    def _unchanged(self, items: Sequence[IngestItem]) -> dict[int, IndexedAsset]:
        """The items whose bytes the index already holds for their asset at their key, by position, as
        they are written again: their vector, their document with the item's tags and context."""
        kept: dict[int, IndexedAsset] = {}
        for i, item in enumerate(items):
            if not item.may_be_unchanged or not item.data:
                continue
            stored = self._index.get(self._asset_id(item))
            if stored is None:
                continue
            document = stored.document
            if (
                document.key == item.key
                and document.model_id == self._embedder.model_id
                and document.etag == hashlib.md5(item.data, usedforsecurity=False).hexdigest()
            ):
                relabelled = replace(document, tags=tuple(item.tags), context=tuple(item.context))
                kept[i] = IndexedAsset(stored.asset_id, stored.vector, relabelled)
        return kept

    def _asset_id(self, item: IngestItem) -> AssetId:
        return AssetId(item.asset_id) if item.asset_id else derived_asset_id(self._store_name, item.key)

    def _prepare(
        self, items: Sequence[IngestItem], positions: Sequence[int], refused: dict[int, IngestResult]
    ) -> tuple[list[_Prepared], float]:
        """Decode, preprocess and describe the items at `positions`; refusals go to `refused` (each
        position is written by one call only). Returns the images ready to embed and the seconds taken."""
        started = time.perf_counter()
        spec = self._embedder.manifest.image
        ready = []
        for i in positions:
            item = items[i]
            asset_id = self._asset_id(item)
            if is_reserved(item.key):  # every caller filters these; this is the last line of defence
                message = f"{RESERVED_PREFIX} holds Visual Search's own files, never assets"
                refused[i] = IngestResult(item.key, asset_id, "refused", "reserved_name", message)
                continue
            try:
                decoded = item.decoded or self.decode(item.data)
            except ImageRejected as exc:
                log.info("refused %s: %s (%s)", item.key, exc.reason, exc)
                refused[i] = IngestResult(item.key, asset_id, "refused", exc.reason, str(exc))
                continue
            document = build_document(
                asset_id=asset_id,
                key=item.key,
                image=decoded,
                data=item.data,
                model_id=self._embedder.model_id,
                tags=item.tags,
                context=item.context,
                created_at=item.created_at,
            )
            # The rendition is made here, from the image already decoded (no second decode), so that
            # with a decode worker its encoding overlaps the embedding too; it is stored once indexed.
            rendition = self._renditions.make(item.key, decoded.image) if self._renditions else None
            ready.append(_Prepared(i, preprocess(decoded.image, spec), document, rendition))
        return ready, time.perf_counter() - started

    def remove(self, asset_ids: Sequence[str], keys: Sequence[str], known: DocIds | None = None) -> None:
        """Delete these assets from the index, and the renditions of these keys (the removed objects':
        also those whose asset lives on under another key). `known`: the document ids the ledger holds
        for the assets (see `VectorIndex.delete`)."""
        if asset_ids:
            self._index.delete(asset_ids, known)
        if self._renditions is not None:
            for key in keys:
                self._renditions.delete(key)


def _groups(positions: Sequence[int], most: int) -> list[Sequence[int]]:
    """`positions` cut into the fewest groups of at most `most`, of near-equal sizes (10 -> 5 + 5, not
    8 + 2: a model call of 2 costs more per image)."""
    n = len(positions)
    if n == 0:
        return []
    count = -(-n // most)
    bounds = [round(k * n / count) for k in range(count + 1)]
    return [positions[a:b] for a, b in itertools.pairwise(bounds)]
