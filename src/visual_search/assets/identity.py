"""Asset identity and the document stored beside each vector.

`asset_id` is stable for a (store, key) pair: 32 lowercase hex characters like Cloudinary's, so the
same object re-uploaded keeps its id, and the same key in another store is another asset.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from visual_search.embedding.decode import DecodedImage
from visual_search.errors import NotFound
from visual_search.index.port import IndexedAsset, VectorIndex
from visual_search.storage.port import is_reserved


def asset_id_for(store_name: str, key: str) -> str:
    """>>> asset_id_for("local", "shoes/red.jpg")  # doctest: +ELLIPSIS
    '...'"""
    return hashlib.sha256(f"{store_name}\x00{key}".encode()).hexdigest()[:32]


def find_asset(index: VectorIndex, asset_id: str) -> IndexedAsset:
    """The indexed asset with this id, or NotFound — also for a key under the reserved prefix, which
    holds Visual Search's own files and is never an asset (an index written before the prefix was
    guarded may still hold one)."""
    stored = index.get(asset_id)
    if stored is None or is_reserved(str(stored.document.get("key", ""))):
        raise NotFound(f"no asset with asset_id {asset_id[:64]}")
    return stored


def public_id_for(key: str) -> str:
    """Cloudinary's public_id: the key without its file extension ("shoes/red.jpg" -> "shoes/red")."""
    path = PurePosixPath(key)
    return str(path.with_suffix("")) if path.suffix else key


def folder_for(key: str) -> str:
    parent = PurePosixPath(key).parent.as_posix()
    return "" if parent == "." else parent


def build_document(
    *,
    store_name: str,
    key: str,
    image: DecodedImage,
    data: bytes,
    model_id: str,
    tags: tuple[str, ...] = (),
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The fields search results show (Cloudinary's resource fields) plus what we need ourselves."""
    return {
        "asset_id": asset_id_for(store_name, key),
        "key": key,
        "public_id": public_id_for(key),
        "folder": folder_for(key),
        "format": image.format,
        "width": image.width,
        "height": image.height,
        "bytes": len(data),
        "etag": hashlib.md5(data, usedforsecurity=False).hexdigest(),  # exact-duplicate detection, like S3's
        "tags": sorted(set(tags)),
        "created_at": (created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model_id": model_id,
    }
