"""What a writer asks of the one ledger-guarded pipeline (`ingest.objects.ObjectIngest`). Upload,
`visual-search add`, the S3 event parser and backfill all speak these, whoever stored the object."""

from __future__ import annotations

from dataclasses import dataclass

from visual_search.domain.context import Context
from visual_search.domain.identity import AssetId


@dataclass(frozen=True)
class IndexObject:
    """An object to index, as the asset `asset_id` when given. A writer that has just stored it sends its
    bytes; an S3 event or a bucket listing (backfill) only names it (`data` None), and the pipeline reads
    it, with the id, tags and context stored with it. The same bytes at the same key again (a change of
    tags or context) keep their vector: nothing is embedded again."""

    key: str
    data: bytes | None = None
    tags: tuple[str, ...] = ()
    opted_in: bool = False  # a writer's: stands for the S3 object tag visual_search=true (opt-in mode)
    asset_id: AssetId | None = None  # None: the id stored with the object, else derived from the key
    decoded: object | None = None  # the writer's own decode at the model's scale (a DecodedImage), reused
    # The change's place among its key's changes (compared as text within one key: `ingest.events`'s
    # order tokens); None for a writer's, which happens now.
    order: str | None = None
    version_id: str | None = None  # the object version an S3 event names
    written_at: str | None = None  # when the source says the object was written (ISO 8601)
    source: str = "IndexObject"  # who sent it, for logs: ObjectCreated:Put, Backfill, ...
    context: Context = ()


@dataclass(frozen=True)
class RemoveObject:
    """An object deleted from the store: remove its asset from the index (the asset last recorded at
    its key, when `asset_id` is None)."""

    key: str
    asset_id: AssetId | None = None
    order: str | None = None  # as IndexObject's
    source: str = "RemoveObject"


@dataclass(frozen=True)
class RenameObject:
    """An asset moved from one key to another (the Upload API's rename); it keeps its id, tags and
    context."""

    from_key: str
    to_key: str
    asset_id: AssetId
    tags: tuple[str, ...] = ()
    context: Context = ()


@dataclass(frozen=True)
class UpdateTags:
    """An asset's tags and context replaced (Cloudinary's tags, context, explicit and update calls), its
    file and vector unchanged."""

    key: str
    asset_id: AssetId
    tags: tuple[str, ...]
    context: Context = ()
