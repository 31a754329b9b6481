"""Indexing, the one write path: every writer — S3 object events, backfill, and on one machine the API's
upload and destroy and `visual-search add` (`index_object` / `remove_object`) — goes through here, so the
ledger orders every change the same way and each call returns its own `IngestReport`.

Two stages, so that one SQS batch is embedded in one model call while a bad record still fails alone:

* `stage(command, report)` per command (IndexObject, RemoveObject: what a writer sends, or what an S3
  event or a listing is, `events.command_for`) — filter (prefix, extension, opt-in tag), check the
  ledger (a duplicate or an older change than the state already applied at that key is dropped), fetch
  the object (bounded) with the id, tags and context stored as its metadata, unless the writer sent
  its bytes;
* `apply(staged, report)` per batch — removals, then decode + embed + upsert through the shared
  Ingestor (bytes already indexed at their key keep their vector: a change of tags or context embeds
  nothing), then the ledger records what was applied.

A writer that has just stored an object (one machine) calls `index_objects` / `remove_object`: the same
stages, with an order token from the write time ("t" + time, as where S3 gives no sequencer), so a
later backfill of the same file ("b" + modification time) never overrides it. The extension filter is
for named objects only: a writer holds the bytes, and decoding refuses a non-image with its reason.

Errors are sorted by what a retry can do. Bad images (not an image, a bomb, too large) are *refused*:
recorded in the ledger with their reason and never retried. Dependencies failing (index, store,
ledger) raise, so the message returns to the queue and ends in the dead-letter queue after the
configured attempts, from where `visual-search redrive` re-feeds it.

Document ids: where the index generates them (a Classic Serverless collection), the ledger records the
id of each asset's document and hands it back to the index on the next replace or removal, which
deletes by id what a search may not find yet (Serverless makes writes searchable only after its own
refresh).

Ordering: the S3 `sequencer` is the order token when present (S3 and EventBridge carry it; moto does
not, and there the event time stands in). A window remains between the ledger check and the ledger
write in which two concurrent workers could both write an asset to the OpenSearch index, and the last
write wins whatever its order token: nothing closes it (the adapter sends no document version), it is
only narrow. The embedded index has a single writer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Literal

from visual_search.domain.commands import IndexObject, RemoveObject
from visual_search.domain.context import Context
from visual_search.domain.identity import derived_asset_id
from visual_search.domain.object_metadata import (
    asset_id_from_metadata,
    context_from_metadata,
    tags_from_metadata,
)
from visual_search.embedding.decode import DecodedImage
from visual_search.errors import ImageRejected
from visual_search.ingest.events import Kind
from visual_search.ingest.pipeline import IngestItem, Ingestor, IngestResult, StageTimings
from visual_search.ledger.port import AssetLedger, KeyMark, LedgerEntry
from visual_search.storage.port import RESERVED_PREFIX, ImageStore, ObjectNotFound

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
OPT_IN_TAG = "visual_search"  # Cloudinary's per-asset opt-in, as an S3 object tag: visual_search=true


@dataclass(frozen=True)
class IngestPolicy:
    prefix: str = ""
    opt_in: bool = False  # False: index everything; True: only objects tagged visual_search=true


@dataclass(frozen=True)
class Staged:
    """A command ready to apply: its asset found, its object read."""

    kind: Kind
    key: str
    asset_id: str
    order: str
    source: str = ""  # who sent the command, for logs
    written_at: str | None = None  # the document's created_at (ISO 8601), where the source tells
    data: bytes | None = None  # the object, for created events
    tags: tuple[str, ...] = ()
    context: Context = ()
    decoded: DecodedImage | None = None  # already decoded by the writer (an upload): not decoded again
    # When the object was written (created events read from the store); None for a writer's own write,
    # the newest by definition. Of two keys holding one asset (a rename's copy), the later one is its.
    modified: datetime | None = None
    # The ledger has this asset indexed at this very key: if the bytes are the same, its vector is kept.
    indexed_here: bool = False


@dataclass
class IngestReport:
    """What one call did: outcome counts, the images refused (with their reason) and seconds per stage
    (fetch is summed over threads: time spent fetching, not wall time)."""

    counts: Counter = field(default_factory=Counter)
    refused: list[IngestResult] = field(default_factory=list)
    fetch_s: float = 0.0
    timings: StageTimings = field(default_factory=StageTimings)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: str, n: int = 1) -> None:
        if n:
            with self._lock:  # messages of one batch are staged on several threads
                self.counts[outcome] += n

    def add_seconds(self, seconds: float) -> None:
        with self._lock:
            self.fetch_s += seconds

    def refuse(self, result: IngestResult) -> None:
        with self._lock:
            self.counts["refused"] += 1
            self.refused.append(result)

    def merge(self, other: IngestReport) -> None:
        with self._lock:
            self.counts.update(other.counts)
            self.refused.extend(other.refused)
            self.fetch_s += other.fetch_s
            for name in ("decode_s", "embed_s", "write_s"):
                setattr(self.timings, name, getattr(self.timings, name) + getattr(other.timings, name))

    def stage_seconds(self) -> dict[str, float]:
        t = self.timings
        return {"fetch": self.fetch_s, "decode": t.decode_s, "embed": t.embed_s, "write": t.write_s}


class ObjectIngest:
    def __init__(
        self,
        store: ImageStore,
        ingestor: Ingestor,
        ledger: AssetLedger,
        policy: IngestPolicy,
    ):
        self._store, self._ingestor, self._ledger = store, ingestor, ledger
        self._policy = policy
        self._clock_lock = threading.Lock()
        self._last_write = ""

    # -- writers that change the store themselves (one machine): the change is applied now
    def index_objects(self, writes: Sequence[IndexObject]) -> IngestReport:
        """Index objects just written to the store, with their tags, embedded together; the same rules
        as S3 events (prefix, opt-in: `opted_in` stands for the object's visual_search=true tag)."""
        report = IngestReport()
        staged = [item for write in writes if (item := self.stage(write, report)) is not None]
        return self.apply(staged, report)

    def remove_object(self, command: RemoveObject) -> IngestReport:
        """Remove the asset of an object just deleted from the store (and its rendition)."""
        report = IngestReport()
        staged = self.stage(command, report)
        return self.apply([staged] if staged is not None else [], report)

    def _write_time(self) -> str:
        # Fixed width, so it compares as text; strictly increasing within the process, so two writes
        # of one key in the same microsecond still order.
        with self._clock_lock:
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self._last_write = now if now > self._last_write else self._last_write + "+"
            return self._last_write

    # -- stage 1: per command
    def stage(self, command: IndexObject | RemoveObject, report: IngestReport) -> Staged | None:
        """Decide whether the command applies and fetch what it needs; None when it is dropped."""
        kind: Kind = "removed" if isinstance(command, RemoveObject) else "created"
        held = isinstance(command, IndexObject) and command.data is not None  # a writer's bytes
        # The extension rule spares S3 fetches of what cannot be an image; a writer holds the bytes,
        # so decoding decides, and a non-image is refused with its reason rather than ignored.
        if reason := self._ignored(command.key, kind, check_extension=not held):
            log.info("ignored %s: %s", command.key, reason, extra={"key": command.key})
            report.add("skipped")
            return None
        order = command.order or "t" + self._write_time()
        # Order tokens compare within one key (S3's sequencers do): a change no newer than the last one
        # applied at its key is stale, whichever asset that key holds now.
        mark = self._at_key(command.key)
        if mark is not None and order <= mark.order:
            log.info(
                "dropped %s: not newer than the state already applied",
                command.source,
                extra={"key": command.key, "asset_id": mark.asset_id},
            )
            report.add("skipped")
            return None
        if isinstance(command, IndexObject) and command.data is not None:
            return self._held(command, order, report)
        started = time.perf_counter()
        try:
            return self._fetch(command, order, mark, report)
        finally:
            report.add_seconds(time.perf_counter() - started)

    def _held(self, write: IndexObject, order: str, report: IngestReport) -> Staged | None:
        """A writer's object, its bytes in hand: nothing to read."""
        asset_id = write.asset_id or derived_asset_id(self._store.name, write.key)
        staged = Staged(
            "created", write.key, asset_id, order, write.source, None, write.data, write.tags, write.context
        )
        if self._policy.opt_in and not write.opted_in:
            return self._not_opted_in(staged, report)
        decoded = write.decoded if isinstance(write.decoded, DecodedImage) else None
        return replace(staged, decoded=decoded)

    def _at_key(self, key: str) -> KeyMark | None:
        """The ledger's mark for this key; for an entry recorded before keys had marks, its own (then
        every asset id was derived from its key)."""
        mark = self._ledger.at_key(key)
        if mark is None:
            entry = self._ledger.get(derived_asset_id(self._store.name, key))
            mark = KeyMark(entry.asset_id, entry.order) if entry is not None and entry.key == key else None
        return mark

    def _asset_at(self, key: str, mark: KeyMark | None) -> str:
        """The asset a removed object was (a removal carries no id): the one last recorded at its key."""
        return mark.asset_id if mark is not None else derived_asset_id(self._store.name, key)

    def _fetch(
        self,
        command: IndexObject | RemoveObject,
        order: str,
        mark: KeyMark | None,
        report: IngestReport,
    ) -> Staged | None:
        key = command.key
        asset_id = command.asset_id or self._asset_at(key, mark)
        written_at = getattr(command, "written_at", None)
        base = Staged("created", key, asset_id, order, command.source, written_at)
        version_id = command.version_id if isinstance(command, IndexObject) else None
        # A removal while the bucket still holds an object under the key (a non-current version was
        # deleted, or the key was written again since) reads it: the index follows the bucket's state.
        if isinstance(command, RemoveObject) and self._store.head(key) is None:
            return replace(base, kind="removed")
        try:
            if self._policy.opt_in and self._store.tags(key).get(OPT_IN_TAG, "").lower() != "true":
                if (metadata := self._store.metadata(key)) is None:
                    raise ObjectNotFound(key)
                asset_id = asset_id_from_metadata(self._store.name, key, metadata)
                return self._not_opted_in(replace(base, asset_id=asset_id), report)
            obj = self._store.get(key, version_id)
        except ObjectNotFound:
            # Deleted or replaced since: its own removal/creation event carries the newer state.
            log.info("dropped created event for %s: the object is gone", key)
            report.add("skipped")
            return None
        except ImageRejected as exc:
            self._refuse(base, exc.reason, str(exc), report)
            return None
        return replace(
            base,
            asset_id=asset_id_from_metadata(self._store.name, key, obj.metadata),
            data=obj.data,
            tags=tags_from_metadata(obj.metadata),
            context=context_from_metadata(obj.metadata),
            modified=obj.last_modified,
        )

    def _not_opted_in(self, staged: Staged, report: IngestReport) -> Staged | None:
        """Untagged in opt-in mode: never indexed, or removed if it was (the tag went away)."""
        entry = self._ledger.get(staged.asset_id)
        if entry is not None and entry.state == "indexed":
            log.info("removing %s: no longer opted in (tag %s=true)", staged.key, OPT_IN_TAG)
            return replace(staged, kind="removed", data=None)
        log.info("ignored %s: not opted in (tag %s=true)", staged.key, OPT_IN_TAG)
        report.add("skipped")
        return None

    def _ignored(self, key: str, kind: Kind, check_extension: bool = True) -> str | None:
        if key.startswith(RESERVED_PREFIX):
            return "Visual Search's own object (a rendition)"
        if not key.startswith(self._policy.prefix):
            return f"outside the prefix {self._policy.prefix!r}"
        if (
            check_extension
            and kind == "created"
            and PurePosixPath(key).suffix.lower() not in IMAGE_EXTENSIONS
        ):
            return "not an image extension"
        return None

    # -- stage 2: per batch
    def apply(self, staged: Sequence[Staged], report: IngestReport | None = None) -> IngestReport:
        """Apply a batch; returns `report` (a new one when none is given) with this batch's outcomes.
        Raises on a dependency failure (the caller retries the batch's messages)."""
        report = report if report is not None else IngestReport()
        staged, moved, known = self._newest_per_asset(staged, report)
        removals = [s for s in staged if s.kind == "removed"]
        if removals or moved:
            # The renditions of every removed object go, also of those whose asset lives on elsewhere.
            keys = [s.key for s in removals + moved]
            self._ingestor.remove([s.asset_id for s in removals], keys, known)
            for s in removals:
                self._record(s, "removed", report)
        creations = [s for s in staged if s.kind == "created"]
        if not creations:
            return report
        items = [
            IngestItem(
                s.key,
                s.data or b"",
                s.tags,
                created_at=_parse_time(s.written_at) if s.written_at else None,
                decoded=s.decoded,
                asset_id=s.asset_id,
                context=s.context,
                may_be_unchanged=s.indexed_here,
            )
            for s in creations
        ]
        results = self._ingestor.ingest(items, report.timings, known)
        with self._ledger.batch():  # one commit (one fsync) for the batch, not one per image
            for s, result in zip(creations, results, strict=True):
                if result.status == "indexed":
                    self._record(s, "indexed", report, result.doc_id)
                else:
                    self._refuse(s, result.reason or "refused", result.message, report)
        return report

    def removals_for_missing(self, present: set[str], prefix: str = "") -> list[Staged]:
        """Removals for indexed assets under the prefix whose object is gone (for a backfill's prune).
        Each removal orders just after the entry it replaces, so any later real event still wins."""
        removals = []
        for entry in self._ledger.entries("indexed"):
            if (
                entry.key.startswith(prefix)
                and entry.key not in present
                and self._store.head(entry.key) is None
            ):
                removals.append(Staged("removed", entry.key, entry.asset_id, entry.order + "~", "Prune"))
        return removals

    def _newest_per_asset(
        self, staged: Sequence[Staged], report: IngestReport
    ) -> tuple[list[Staged], list[Staged], dict[str, str]]:
        """One batch may hold several events of one asset (an overwrite burst, a rename's copy and
        delete): only the newest counts, and only if nothing newer was applied since it was staged (a
        retry, another worker). Returns the events to apply; the removals of objects whose asset lives on
        under another key (a rename or a change of format: only their renditions go); and the document
        ids the ledger holds for the assets kept (asset id -> doc id), for the index to replace or delete
        by id what it may not find by search yet."""
        newest: dict[str, Staged] = {}
        moved: list[Staged] = []
        known: dict[str, str] = {}
        for item in staged:
            entry = self._ledger.get(item.asset_id)
            if entry is not None and not self._applies(item, entry):
                if item.kind == "removed" and entry.key != item.key:
                    moved.append(item)
                continue
            if entry is not None and entry.doc_id:
                known[item.asset_id] = entry.doc_id
            if entry is not None and entry.state == "indexed" and entry.key == item.key:
                item = replace(item, indexed_here=True)
            kept = newest.get(item.asset_id)
            if kept is None or _later(item, kept):
                if kept is not None and kept.kind == "removed" and kept.key != item.key:
                    moved.append(kept)
                newest[item.asset_id] = item
            elif item.kind == "removed" and item.key != kept.key:
                moved.append(item)
        report.add("skipped", len(staged) - len(newest))
        return list(newest.values()), moved, known

    def _applies(self, item: Staged, entry: LedgerEntry) -> bool:
        """Whether an event changes an asset the ledger knows: within one key, if it is newer. At another
        key, a creation moves the asset there (a rename's copy, an overwrite in another format) unless
        the key it is at holds a later copy of it (a late first delivery of the older key's creation);
        a removal of a key the asset has left changes nothing."""
        if entry.key == item.key:
            return item.order > entry.order
        if item.kind == "removed":
            return False
        if item.modified is None or entry.state != "indexed":
            return True
        current = self._store.head(entry.key)
        return current is None or current.last_modified <= item.modified

    def _record(
        self,
        staged: Staged,
        state: Literal["indexed", "removed"],
        report: IngestReport,
        doc_id: str | None = None,
    ) -> None:
        applied = self._ledger.record(
            LedgerEntry(staged.asset_id, staged.key, staged.order, state, doc_id, None, _now())
        )
        report.add(state if applied else "skipped")

    def _refuse(self, staged: Staged, reason: str, message: str | None, report: IngestReport) -> None:
        log.warning("refused %s: %s", staged.key, reason)
        # A refused version leaves the asset's previous document in the index: keep its id, so a later
        # removal still deletes it by id.
        previous = self._ledger.get(staged.asset_id)
        doc_id = previous.doc_id if previous is not None else None
        self._ledger.record(
            LedgerEntry(staged.asset_id, staged.key, staged.order, "refused", doc_id, reason, _now())
        )
        report.refuse(IngestResult(staged.key, staged.asset_id, "refused", reason, message))


def _later(item: Staged, kept: Staged) -> bool:
    """Of two events of one asset in one batch: within one key the newer; across keys a creation over
    a removal (the asset moved), and of two creations the later written (a tie: the later in the batch)."""
    if item.key == kept.key:
        return item.order > kept.order
    if item.kind != kept.kind:
        return item.kind == "created"
    if item.modified is None or kept.modified is None:
        return item.modified is None
    return item.modified >= kept.modified


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
