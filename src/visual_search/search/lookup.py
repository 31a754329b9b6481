"""An indexed asset found by its id, as a search by image_asset_id and the Admin API's resource read it."""

from __future__ import annotations

from visual_search.errors import NotFound
from visual_search.index.port import IndexedAsset, VectorIndex
from visual_search.storage.port import is_reserved


def find_asset(index: VectorIndex, asset_id: str) -> IndexedAsset:
    """The indexed asset with this id, or NotFound — also for a key under the reserved prefix, which
    holds Visual Search's own files and is never an asset (an index written before the prefix was
    guarded may still hold one)."""
    stored = index.get(asset_id)
    if stored is None or is_reserved(stored.document.key):
        raise NotFound(f"no asset with asset_id {asset_id[:64]}")
    return stored
