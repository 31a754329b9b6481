"""Which asset a stored object is: the id stored with it, the keys of a public_id, the id a public_id
keeps across its writes."""

from __future__ import annotations

from collections.abc import Sequence

from visual_search.domain.identity import AssetId, new_asset_id
from visual_search.domain.naming import public_id_for
from visual_search.domain.object_metadata import asset_id_from_metadata
from visual_search.storage.port import ImageStore, InvalidKey


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
