"""Finding an asset — by its id in the index, or the id of the object under a key — and the document an
image gets when it is indexed (`domain.document`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from visual_search.domain.document import AssetDocument
from visual_search.domain.identity import AssetId, new_asset_id
from visual_search.domain.object_metadata import asset_id_from_metadata
from visual_search.embedding.decode import DecodedImage
from visual_search.errors import NotFound
from visual_search.index.port import IndexedAsset, VectorIndex
from visual_search.storage.port import ImageStore, is_reserved


def find_asset(index: VectorIndex, asset_id: str) -> IndexedAsset:
    """The indexed asset with this id, or NotFound — also for a key under the reserved prefix, which
    holds Visual Search's own files and is never an asset (an index written before the prefix was
    guarded may still hold one)."""
    stored = index.get(asset_id)
    if stored is None or is_reserved(str(stored.document.get("key", ""))):
        raise NotFound(f"no asset with asset_id {asset_id[:64]}")
    return stored


def stored_asset_id(store: ImageStore, key: str) -> AssetId:
    """The id of the asset stored under `key`: the one stored with the object, else (an object written
    around the API, or none there) the one derived from the key. One metadata read (an S3 HEAD)."""
    return asset_id_from_metadata(store.name, key, store.metadata(key))


def kept_asset_id(store: ImageStore, keys: Sequence[str]) -> AssetId:
    """The id of the asset these stored keys are files of (the first one stored), or a new one where
    none is: an asset's id is made at its first write and kept by every later one, in any format."""
    for key in keys:
        if (metadata := store.metadata(key)) is not None:
            return asset_id_from_metadata(store.name, key, metadata)
    return new_asset_id()


def build_document(
    *,
    asset_id: AssetId,
    key: str,
    image: DecodedImage,
    data: bytes,
    model_id: str,
    tags: tuple[str, ...] = (),
    created_at: datetime | None = None,
) -> AssetDocument:
    """The fields search results show (Cloudinary's resource fields) plus what we need ourselves."""
    return AssetDocument(
        asset_id=asset_id,
        key=key,
        format=image.format,
        width=image.width,
        height=image.height,
        bytes=len(data),
        etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),  # exact-duplicate detection, like S3's
        tags=tuple(tags),
        created_at=(created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model_id=model_id,
    )
