"""What a stored object carries besides its bytes (S3 user metadata; a sidecar file in the local store):
its asset's id, its Cloudinary tags and context, so the ingest worker and a re-index (backfill) read them back
from the object itself, whoever wrote it.

An object without an id (written around the API: `aws s3 cp`, a file copied into the folder) keeps the
id derived from its store and key (`identity.derived_asset_id`), as every index written before ids
were stored holds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote, unquote

from visual_search.domain.context import Context, context_text, parse_context
from visual_search.domain.identity import ASSET_ID, AssetId, derived_asset_id

ASSET_ID_METADATA = "vs-asset-id"
TAGS_METADATA = "vs-tags"  # percent-encoded and comma-joined: metadata travels as HTTP headers, ASCII
CONTEXT_METADATA = "vs-context"  # Cloudinary's context text, percent-encoded


def object_metadata(
    asset_id: AssetId | None, tags: Sequence[str] = (), context: Context = ()
) -> dict[str, str]:
    """The metadata an object is stored with (a store may limit its size: S3 keeps 2 KB).

    >>> object_metadata(AssetId("0" * 32), ["a b", "c,d"])["vs-tags"]
    'a%20b,c%2Cd'
    >>> object_metadata(None, context=(("alt", "é|x"),))
    {'vs-context': 'alt%3D%C3%A9%5C%7Cx'}
    """
    metadata: dict[str, str] = {ASSET_ID_METADATA: asset_id} if asset_id else {}
    if tags:
        metadata[TAGS_METADATA] = ",".join(quote(t, safe="") for t in tags)
    if context:
        metadata[CONTEXT_METADATA] = quote(context_text(context), safe="")
    return metadata


def tags_from_metadata(metadata: Mapping[str, str]) -> tuple[str, ...]:
    value = metadata.get(TAGS_METADATA, "")
    return tuple(unquote(t) for t in value.split(",") if t)


def context_from_metadata(metadata: Mapping[str, str]) -> Context:
    return parse_context(unquote(metadata.get(CONTEXT_METADATA, "")))


def asset_id_from_metadata(store_name: str, key: str, metadata: Mapping[str, str] | None) -> AssetId:
    """The id stored with the object, or the one derived from its key where it has none (or one that is
    not an asset id: metadata anybody with bucket access can write).

    >>> asset_id_from_metadata("s3:b", "a.jpg", {"vs-asset-id": "f" * 32}) == "f" * 32
    True
    >>> asset_id_from_metadata("s3:b", "a.jpg", {}) == derived_asset_id("s3:b", "a.jpg")
    True
    """
    stored = (metadata or {}).get(ASSET_ID_METADATA, "")
    return AssetId(stored) if ASSET_ID.fullmatch(stored) else derived_asset_id(store_name, key)
