"""Finding an asset — by its id in the index, or the id of the object under a key — and the document an
image gets when it is indexed (`domain.document`)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from visual_search.domain.context import Context
from visual_search.domain.document import AssetDocument
from visual_search.domain.identity import AssetId, new_asset_id
from visual_search.domain.naming import public_id_for
from visual_search.domain.object_metadata import asset_id_from_metadata
from visual_search.embedding.decode import DecodedImage
from visual_search.errors import NotFound
from visual_search.index.port import IndexedAsset, VectorIndex
from visual_search.storage.port import ImageStore, InvalidKey, is_reserved


def find_asset(index: VectorIndex, asset_id: str) -> IndexedAsset:
    """The indexed asset with this id, or NotFound — also for a key under the reserved prefix, which
    holds Visual Search's own files and is never an asset (an index written before the prefix was
    guarded may still hold one)."""
    stored = index.get(asset_id)
    if stored is None or is_reserved(stored.document.key):
        raise NotFound(f"no asset with asset_id {asset_id[:64]}")
    return stored


def stored_asset_id(store: ImageStore, key: str) -> AssetId:
    """The id of the asset stored under `key`: the one stored with the object, else (an object written
    around the API, or none there) the one derived from the key. One metadata read (an S3 HEAD)."""
    return asset_id_from_metadata(store.name, key, store.metadata(key))


def keys_of(store: ImageStore, public_id: str) -> list[str]:
    """The stored keys whose public_id this is (one, unless written around the API): exactly the keys
    `public_id_for` maps to it, so no public_id reaches another's file. `vb/photo.jpg` is the key of
    `vb/photo` in JPEG, never a file of the public_id `vb/photo.jpg` (whose JPEG is `vb/photo.jpg.jpg`);
    a key without an extension is its own public_id's."""
    keys = [k for k in store.list(public_id + ".") if public_id_for(k) == public_id]
    if public_id_for(public_id) == public_id:
        try:
            if store.head(public_id) is not None:
                keys.append(public_id)
        except InvalidKey:  # a name no store can hold as a key is simply not there
            pass
    return keys


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
    context: Context = (),
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
        context=tuple(context),
        created_at=(created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model_id=model_id,
    )
