"""How a change to the collection reaches the index: the two ways a writer (upload, destroy, `visual-search
add`) stores an image, chosen once by the composition root.

Either way the object is stored with its metadata (`domain.object_metadata`: its asset's id, tags and
context),
which a re-index (backfill) and the ingest worker read back.

* `InlineIndexing` (one machine, a local folder): nothing watches the folder, so the writer indexes the
  object itself, through the same ledger-guarded pipeline as S3 events (`ObjectIngest.index_objects`).
* `BucketEvents` (S3): the bucket's object events index it in the ingest worker (at least once: a
  redelivered event finds its change already in the ledger and changes nothing); the writer
  only stores the object with what the worker must read back — the metadata, and the opt-in as the
  `visual_search=true` object tag. An upload and a plain `aws s3 cp` then end in the same state, and so
  do a destroy and an `aws s3 rm`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from visual_search.domain.commands import IndexObject, RemoveObject, RenameObject, UpdateTags
from visual_search.domain.object_metadata import object_metadata
from visual_search.ingest.objects import OPT_IN_TAG, IngestReport, ObjectIngest
from visual_search.storage.port import ImageStore


class IndexWriter(Protocol):
    indexes_now: bool  # True: the index holds the change when `put`/`delete` return

    def put(self, key: str, data: bytes, tags: Sequence[str] = (), opted_in: bool = False) -> IngestReport:
        """Store the object; its report says what indexing did (empty when events will do it)."""
        ...

    def put_many(self, writes: Sequence[IndexObject]) -> IngestReport:
        """`put` for several objects (embedded in one model call where indexing is inline)."""
        ...

    def delete(self, key: str) -> IngestReport: ...

    def rename(self, command: RenameObject) -> IngestReport:
        """Store the object under its new key with its id, tags and context, then delete the old key:
        the asset moves (on S3 a copy and a delete, whose events move it, in either order)."""
        ...

    def update(self, command: UpdateTags) -> IngestReport:
        """Store the object again with its new tags and context: the same bytes at the same key, which
        the pipeline indexes without embedding them again (their vector is kept)."""
        ...


class InlineIndexing:
    indexes_now = True

    def __init__(self, store: ImageStore, pipeline: ObjectIngest):
        self._store, self._pipeline = store, pipeline

    def put(self, key: str, data: bytes, tags: Sequence[str] = (), opted_in: bool = False) -> IngestReport:
        return self.put_many([IndexObject(key, data, tuple(tags), opted_in)])

    def put_many(self, writes: Sequence[IndexObject]) -> IngestReport:
        for write in writes:
            metadata = object_metadata(write.asset_id, write.tags, write.context)
            self._store.put(write.key, _bytes(write), metadata=metadata)
        return self._pipeline.index_objects(writes)

    def delete(self, key: str) -> IngestReport:
        self._store.delete(key)
        return self._pipeline.remove_object(RemoveObject(key))

    def rename(self, command: RenameObject) -> IngestReport:
        # Indexed again from its bytes under the new key (one write path, as an S3 event would): a folder
        # keeps no object tags, so the opt-in it had is not known here, and the asset stays opted in.
        data = self._store.get(command.from_key).data
        moved = IndexObject(
            command.to_key, data, command.tags, True, command.asset_id, context=command.context
        )
        report = self.put_many([moved])
        # Refused under its new key (it may never have been indexed): the rename is undone; else the old
        # key goes, whose removal changes nothing but its rendition (the asset has moved on).
        self.delete(command.to_key if report.refused else command.from_key)
        return report

    def update(self, command: UpdateTags) -> IngestReport:
        # As in rename: a folder keeps no object tags, and an asset given tags is opted in.
        data = self._store.get(command.key).data
        return self.put_many([_updated(command, data, opted_in=True)])


class BucketEvents:
    indexes_now = False

    def __init__(self, store: ImageStore):
        self._store = store

    def put(self, key: str, data: bytes, tags: Sequence[str] = (), opted_in: bool = False) -> IngestReport:
        return self.put_many([IndexObject(key, data, tuple(tags), opted_in)])

    def put_many(self, writes: Sequence[IndexObject]) -> IngestReport:
        for write in writes:
            self._store.put(
                write.key,
                _bytes(write),
                metadata=object_metadata(write.asset_id, write.tags, write.context),
                object_tags={OPT_IN_TAG: "true"} if write.opted_in else None,
            )
        return IngestReport()

    def delete(self, key: str) -> IngestReport:
        self._store.delete(key)
        return IngestReport()

    def rename(self, command: RenameObject) -> IngestReport:
        data = self._store.get(command.from_key).data
        opted_in = self._opted_in(command.from_key)
        moved = IndexObject(
            command.to_key, data, command.tags, opted_in, command.asset_id, context=command.context
        )
        self.put_many([moved])
        return self.delete(command.from_key)

    def update(self, command: UpdateTags) -> IngestReport:
        # Written again whole (S3 has no metadata-only change): its created event reaches the worker,
        # which keeps the vector of bytes it has indexed at that key.
        data = self._store.get(command.key).data
        return self.put_many([_updated(command, data, self._opted_in(command.key))])

    def _opted_in(self, key: str) -> bool:
        return self._store.tags(key).get(OPT_IN_TAG, "").lower() == "true"


def _updated(command: UpdateTags, data: bytes, opted_in: bool) -> IndexObject:
    return IndexObject(command.key, data, command.tags, opted_in, command.asset_id, context=command.context)


def _bytes(write: IndexObject) -> bytes:
    if write.data is None:  # a command naming a stored object (an event's) is the pipeline's, not a writer's
        raise ValueError(f"a writer stores the bytes it is sent; none for {write.key!r}")
    return write.data
