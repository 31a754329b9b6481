"""Listing the collection as Cloudinary's Admin API does (`resources`, `resources_by_tag`,
`resources_by_context`, `resources_by_ids`, `resources_by_asset_ids`, `resource`), and the bulk deletes
that select by prefix or tag.

The store is the list of what exists (an object the worker has not indexed yet, or one left out by the
opt-in rule, is still an asset); the index adds what only it knows (dimensions, tags, context). Pages
follow the keys' byte order, so a page resumes after the last key served whatever was added or deleted
since, and never repeats one. The cursor is the search cursor's signed envelope (`CursorCodec`) carrying
that key, bound to the listing's parameters. Every call is bounded: at most `MAX_RESULTS` resources per
page, and a tag or context filter reads at most `SCAN_LIMIT` keys per call before it hands back a cursor
to continue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from visual_search.assets import names
from visual_search.assets.identity import keys_of, stored_asset_id
from visual_search.domain.document import AssetDocument
from visual_search.domain.naming import format_for
from visual_search.errors import BadInput, NotFound
from visual_search.index.port import VectorIndex
from visual_search.search.cursor import CursorCodec, CursorState, query_key
from visual_search.search.lookup import find_asset
from visual_search.storage.port import ImageStore, ObjectInfo, is_reserved

MAX_RESULTS = 500  # Cloudinary's maximum for max_results
DEFAULT_RESULTS = 10  # Cloudinary's default
# Keys read per call when a tag filters them: each is one index lookup, and a call must answer well
# within the search function's 28 s (an OpenSearch GET takes milliseconds).
SCAN_LIMIT = 1000


@dataclass(frozen=True)
class Selection:
    """Which resources a listing keeps: those with `tag`, and with the context key `context_key` (set
    to `context_value` when given); nothing given keeps all."""

    tag: str | None = None
    context_key: str | None = None
    context_value: str | None = None

    def keeps(self, document: AssetDocument) -> bool:
        if self.tag is not None and self.tag not in document.tags:
            return False
        if self.context_key is None:
            return True
        context = dict(document.context)
        return self.context_key in context and self.context_value in (None, context[self.context_key])


EVERYTHING = Selection()


@dataclass(frozen=True)
class Page:
    documents: list[AssetDocument]
    next_cursor: str | None


class Listing:
    def __init__(self, store: ImageStore, index: VectorIndex, cursors: CursorCodec):
        self._store, self._index, self._cursors = store, index, cursors

    def page(
        self,
        prefix: str = "",
        selection: Selection = EVERYTHING,
        max_results: int = DEFAULT_RESULTS,
        next_cursor: str | None = None,
    ) -> Page:
        """Resources whose public_id starts with `prefix` (and that `selection` keeps), in key order."""
        prefix = names.normalise(prefix) if prefix else ""
        if prefix and is_reserved(prefix + "/"):
            raise names.ReservedName("the _vs/ prefix is reserved for Visual Search's own files")
        bound = {"listing": 1, "prefix": prefix, "tag": selection.tag}
        if selection.context_key is not None:  # absent otherwise: cursors given out before stay valid
            bound["context"] = [selection.context_key, selection.context_value]
        key = query_key(bound)
        after = self._cursors.decode(next_cursor, key).asset_id if next_cursor else None
        documents: list[AssetDocument] = []
        last, scanned = after, 0
        for info in self._store.scan(prefix, start_after=after):
            if is_reserved(info.key):
                continue
            if len(documents) == max_results or scanned == SCAN_LIMIT:
                return Page(documents, self._cursors.encode(CursorState(key, 0.0, last or "", 0)))
            scanned += 1
            last = info.key
            document = self.document(info)
            if selection.keeps(document):
                documents.append(document)
        return Page(documents, None)

    def matching(self, prefix: str = "", tag: str | None = None, limit: int = 1000) -> tuple[list[str], bool]:
        """Keys to delete by prefix or tag: at most `limit`, reading at most SCAN_LIMIT keys; and whether
        that was all of them."""
        keys: list[str] = []
        for scanned, info in enumerate(self._store.scan(prefix)):
            if len(keys) == limit or scanned == SCAN_LIMIT:
                return keys, False
            if is_reserved(info.key):
                continue
            if tag is None or Selection(tag).keeps(self.document(info)):
                keys.append(info.key)
        return keys, True

    def by_asset_id(self, asset_id: str) -> AssetDocument:
        """The indexed asset with this id (Visual Search's `resources/<asset_id>`), or NotFound."""
        return find_asset(self._index, asset_id).document

    def by_public_id(self, public_id: str) -> AssetDocument:
        """The resource of this public_id (Admin API resource), or NotFound."""
        keys = keys_of(self._store, names.existing_public_id(public_id))
        info = self._store.head(keys[0]) if keys else None
        if info is None:
            raise NotFound(f"Resource not found - {public_id[:255]}")
        return self.document(info)

    def by_asset_ids(self, asset_ids: list[str]) -> list[AssetDocument]:
        if len(asset_ids) > names.MAX_IDS_PER_CALL:
            raise BadInput(f"at most {names.MAX_IDS_PER_CALL} asset_ids per call, as Cloudinary allows")
        found = [self._index.get(a) for a in dict.fromkeys(asset_ids)]
        return [s.document for s in found if s is not None and not is_reserved(s.document.key)]

    def by_public_ids(self, public_ids: list[str]) -> list[AssetDocument]:
        """The resources of these public_ids that exist, in the order given (Admin API resources_by_ids)."""
        if len(public_ids) > names.MAX_IDS_PER_CALL:
            raise BadInput(f"at most {names.MAX_IDS_PER_CALL} public_ids per call")
        documents = []
        for public_id in dict.fromkeys(names.existing_public_id(p) for p in public_ids):
            keys = keys_of(self._store, public_id)
            if keys and (info := self._store.head(keys[0])) is not None:
                documents.append(self.document(info))
        return documents

    def document(self, info: ObjectInfo) -> AssetDocument:
        """The index's document for a stored object, or what the listing alone tells of it. Its id is
        read from the object's metadata: one more read per key (a HEAD on S3), as the index cannot be
        asked by key (existing OpenSearch indices do not index it)."""
        asset_id = stored_asset_id(self._store, info.key)
        stored = self._index.get(asset_id)
        if stored is not None:
            return stored.document
        modified = info.last_modified.astimezone(UTC) if info.last_modified.tzinfo else info.last_modified
        return AssetDocument(
            asset_id=asset_id,
            key=info.key,
            format=format_for(info.key),
            bytes=info.size,
            created_at=modified.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
