"""What a writer asks of the one ledger-guarded pipeline (`ingest.objects.ObjectIngest`). Upload,
`visual-search add`, the S3 event parser and backfill all speak these, whoever stored the object."""

from __future__ import annotations

from dataclasses import dataclass

from visual_search.domain.identity import AssetId


@dataclass(frozen=True)
class IndexObject:
    """An object just stored (its bytes in hand): index it, as the asset `asset_id` when given."""

    key: str
    data: bytes
    tags: tuple[str, ...] = ()
    opted_in: bool = False  # stands for the S3 object tag visual_search=true (opt-in mode)
    asset_id: AssetId | None = None  # None: the id derived from the key (an object without one)
    decoded: object | None = None  # the writer's own decode at the model's scale (a DecodedImage), reused


@dataclass(frozen=True)
class RemoveObject:
    """An object just deleted from the store: remove its asset from the index."""

    key: str
    asset_id: AssetId | None = None


@dataclass(frozen=True)
class RenameObject:
    """An asset moved from one key to another; it keeps its id."""

    from_key: str
    to_key: str
    asset_id: AssetId


@dataclass(frozen=True)
class UpdateTags:
    """An asset's tags replaced, its file and vector unchanged."""

    key: str
    asset_id: AssetId
    tags: tuple[str, ...]
