"""Indexing use case: images in, vectors and documents in the index out.

A pipeline of small stages — decode and validate, embed (one batch), upsert — where a bad image fails
alone: it is reported as refused with a stable reason and never blocks the others. Errors from the
index (a dependency) propagate, so the caller can retry or dead-letter the whole batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from visual_search.assets.identity import asset_id_for, build_document
from visual_search.assets.renditions import RenditionWriter
from visual_search.embedding import Embedder
from visual_search.embedding.decode import DecodedImage, DecodeLimits, decode_image
from visual_search.embedding.preprocess import preprocess
from visual_search.errors import ImageRejected
from visual_search.index.port import DocIds, IndexedAsset, VectorIndex
from visual_search.storage.port import RESERVED_PREFIX, is_reserved

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestItem:
    key: str
    data: bytes
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    decoded: DecodedImage | None = None  # already decoded by `Ingestor.decode` (an upload checks first)


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


class Ingestor:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        store_name: str,
        limits: DecodeLimits,
        renditions: RenditionWriter | None = None,
    ):
        self._embedder = embedder
        self._index = index
        self._store_name = store_name
        self._limits = limits
        self._renditions = renditions

    def decode(self, data: bytes) -> DecodedImage:
        """Decode as indexing does: the model's scale, this process's limits and decoding budget."""
        return decode_image(data, self._limits, min_side=self._embedder.manifest.image.resize_to)

    def ingest(
        self, items: Sequence[IngestItem], timings: StageTimings | None = None, known: DocIds | None = None
    ) -> list[IngestResult]:
        """Index a batch; one result per item, in order. `timings`, when given, gets this call's seconds
        per stage added (the caller owns it, so nothing here accumulates across calls). `known`: the
        document ids the ledger holds for these assets (see `VectorIndex.upsert`)."""
        timings = timings if timings is not None else StageTimings()
        results: dict[int, IngestResult] = {}
        pixels, documents, positions, decoded_images = [], [], [], []
        started = time.perf_counter()
        spec = self._embedder.manifest.image
        for i, item in enumerate(items):
            asset_id = asset_id_for(self._store_name, item.key)
            if is_reserved(item.key):  # every caller filters these; this is the last line of defence
                message = f"{RESERVED_PREFIX} holds Visual Search's own files, never assets"
                results[i] = IngestResult(item.key, asset_id, "refused", "reserved_name", message)
                continue
            try:
                decoded = item.decoded or self.decode(item.data)
            except ImageRejected as exc:
                log.info("refused %s: %s (%s)", item.key, exc.reason, exc)
                results[i] = IngestResult(item.key, asset_id, "refused", exc.reason, str(exc))
                continue
            pixels.append(preprocess(decoded.image, spec))
            decoded_images.append(decoded.image)
            documents.append(
                build_document(
                    store_name=self._store_name,
                    key=item.key,
                    image=decoded,
                    data=item.data,
                    model_id=self._embedder.model_id,
                    tags=item.tags,
                    created_at=item.created_at,
                )
            )
            positions.append(i)
        decoded_at = time.perf_counter()
        if pixels:
            vectors = self._embedder.embed_pixels(np.stack(pixels))
            embedded_at = time.perf_counter()
            assets = [IndexedAsset(d["asset_id"], v, d) for d, v in zip(documents, vectors, strict=True)]
            doc_ids = self._index.upsert(assets, known)
            if self._renditions is not None:
                for doc, image in zip(documents, decoded_images, strict=True):
                    self._renditions.write(doc["key"], image)
            written_at = time.perf_counter()
            timings.embed_s += embedded_at - decoded_at
            timings.write_s += written_at - embedded_at
            for pos, doc in zip(positions, documents, strict=True):
                doc_id = doc_ids.get(doc["asset_id"])
                results[pos] = IngestResult(items[pos].key, doc["asset_id"], "indexed", doc_id=doc_id)
        timings.decode_s += decoded_at - started
        return [results[i] for i in range(len(items))]

    def remove(self, keys: Sequence[str], known: DocIds | None = None) -> list[str]:
        """Delete the assets of these keys from the index (and their renditions); returns their ids.
        `known`: the document ids the ledger holds for them (see `VectorIndex.delete`)."""
        ids = [asset_id_for(self._store_name, k) for k in keys]
        self._index.delete(ids, known)
        if self._renditions is not None:
            for key in keys:
                self._renditions.delete(key)
        return ids
