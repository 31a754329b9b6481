"""Keeping the index equal to the bucket: S3 object events in, index and ledger changes out.

Two stages, so that one SQS batch is embedded in one model call while a bad record still fails alone:

* `stage(event)` per record — filter (prefix, extension, opt-in tag), check the ledger (a duplicate or
  an older event than the state already applied is dropped), fetch the object (bounded);
* `apply(staged)` per batch — removals, then decode + embed + upsert through the shared Ingestor, then
  the ledger records what was applied.

Errors are sorted by what a retry can do. Bad images (not an image, a bomb, too large) are *refused*:
recorded in the ledger with their reason and never retried. Dependencies failing (index, store,
ledger) raise, so the message returns to the queue and ends in the dead-letter queue after the
configured attempts, from where `visual-search redrive` re-feeds it.

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
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Literal

from visual_search.assets import asset_id_for
from visual_search.errors import ImageRejected
from visual_search.ingest import IngestItem, Ingestor
from visual_search.ingest_events import ObjectEvent, sequencer_sort_key
from visual_search.ledger.port import AssetLedger, LedgerEntry
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
    event: ObjectEvent
    asset_id: str
    order: str
    data: bytes | None = None  # the object, for created events


Outcome = Literal["indexed", "removed", "refused", "skipped"]


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=dict)
    fetch_s: float = 0.0  # summed over threads: time spent fetching, not wall time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: str, n: int = 1) -> None:
        if n:
            with self._lock:  # messages of one batch are staged on several threads
                self.counts[outcome] = self.counts.get(outcome, 0) + n

    def add_seconds(self, seconds: float) -> None:
        with self._lock:
            self.fetch_s += seconds


def order_token(event: ObjectEvent) -> str:
    """A string whose `<` orders the events of one object.

    "s" + padded sequencer when S3 gave one (always, on AWS). "b" + modification time for a listing
    (backfill): below every sequencer, so a live event always wins over what a backfill saw. "t" +
    event time where no sequencer exists (moto, some S3-compatible stores).
    """
    if event.listed:
        return "b" + event.event_time
    if event.sequencer:
        return "s" + sequencer_sort_key(event.sequencer)
    return "t" + event.event_time


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
        self.tally = Tally()

    def stage_seconds(self) -> dict[str, float]:
        """Cumulative seconds per stage (fetch here; decode, embed, write in the Ingestor)."""
        t = self._ingestor.timings
        return {"fetch": self.tally.fetch_s, "decode": t.decode_s, "embed": t.embed_s, "write": t.write_s}

    # -- stage 1: per record
    def stage(self, event: ObjectEvent) -> Staged | None:
        """Decide whether the event applies and fetch what it needs; None when it is dropped."""
        reason = self._ignored(event)
        if reason:
            log.info("ignored %s: %s", event.key, reason, extra={"key": event.key})
            self.tally.add("skipped")
            return None
        asset_id = asset_id_for(self._store.name, event.key)
        order = order_token(event)
        if not self._ledger.is_newer(asset_id, order):
            log.info(
                "dropped %s: not newer than the state already applied",
                event.name or event.kind,
                extra={"key": event.key, "asset_id": asset_id},
            )
            self.tally.add("skipped")
            return None
        started = time.perf_counter()
        try:
            return self._fetch(event, asset_id, order)
        finally:
            self.tally.add_seconds(time.perf_counter() - started)

    def _fetch(self, event: ObjectEvent, asset_id: str, order: str) -> Staged | None:
        if event.kind == "removed":
            if self._store.head(event.key) is None:
                return Staged(event, asset_id, order)
            # A non-current version was deleted, or the key was written again since: the bucket still
            # holds an object under this key, so the index follows the bucket's current state.
            event = replace(event, kind="created", version_id=None)
        try:
            if self._policy.opt_in and self._store.tags(event.key).get(OPT_IN_TAG, "").lower() != "true":
                return self._not_opted_in(event, asset_id, order)
            obj = self._store.get(event.key, event.version_id)
        except ObjectNotFound:
            # Deleted or replaced since: its own removal/creation event carries the newer state.
            log.info("dropped created event for %s: the object is gone", event.key)
            self.tally.add("skipped")
            return None
        except ImageRejected as exc:
            self._refuse(Staged(event, asset_id, order), exc.reason)
            return None
        return Staged(event, asset_id, order, obj.data)

    def _not_opted_in(self, event: ObjectEvent, asset_id: str, order: str) -> Staged | None:
        """Untagged in opt-in mode: never indexed, or removed if it was (the tag went away)."""
        entry = self._ledger.get(asset_id)
        if entry is not None and entry.state == "indexed":
            log.info("removing %s: no longer opted in (tag %s=true)", event.key, OPT_IN_TAG)
            return Staged(replace(event, kind="removed"), asset_id, order)
        log.info("ignored %s: not opted in (tag %s=true)", event.key, OPT_IN_TAG)
        self.tally.add("skipped")
        return None

    def _ignored(self, event: ObjectEvent) -> str | None:
        if event.key.startswith(RESERVED_PREFIX):
            return "Visual Search's own object (a rendition)"
        if not event.key.startswith(self._policy.prefix):
            return f"outside the prefix {self._policy.prefix!r}"
        if event.kind == "created" and PurePosixPath(event.key).suffix.lower() not in IMAGE_EXTENSIONS:
            return "not an image extension"
        return None

    # -- stage 2: per batch
    def apply(self, staged: Sequence[Staged]) -> None:
        """Apply a batch. Raises on a dependency failure (the caller retries the batch's messages)."""
        staged = self._newest_per_asset(staged)
        removals = [s for s in staged if s.event.kind == "removed"]
        if removals:
            self._ingestor.remove([s.event.key for s in removals])
            for s in removals:
                self._record(s, "removed")
        creations = [s for s in staged if s.event.kind == "created"]
        if not creations:
            return
        items = [
            IngestItem(s.event.key, s.data or b"", created_at=_parse_time(s.event.event_time))
            for s in creations
        ]
        for s, result in zip(creations, self._ingestor.ingest(items), strict=True):
            if result.status == "indexed":
                self._record(s, "indexed")
            else:
                self._refuse(s, result.reason or "refused")

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
                event = ObjectEvent("removed", self._store.name, entry.key, _now(), name="Prune", listed=True)
                removals.append(Staged(event, entry.asset_id, entry.order + "~"))
        return removals

    def _newest_per_asset(self, staged: Sequence[Staged]) -> list[Staged]:
        """One batch may hold several events of one object (an overwrite burst): only the newest counts,
        and only if nothing newer was applied since it was staged (a retry, another worker)."""
        newest: dict[str, Staged] = {}
        for item in staged:
            if not self._ledger.is_newer(item.asset_id, item.order):
                continue
            kept = newest.get(item.asset_id)
            if kept is None or item.order > kept.order:
                newest[item.asset_id] = item
        self.tally.add("skipped", len(staged) - len(newest))
        return list(newest.values())

    def _record(self, staged: Staged, state: Literal["indexed", "removed"]) -> None:
        applied = self._ledger.record(
            LedgerEntry(staged.asset_id, staged.event.key, staged.order, state, None, None, _now())
        )
        self.tally.add(state if applied else "skipped")

    def _refuse(self, staged: Staged, reason: str) -> None:
        log.warning("refused %s: %s", staged.event.key, reason)
        self._ledger.record(
            LedgerEntry(staged.asset_id, staged.event.key, staged.order, "refused", None, reason, _now())
        )
        self.tally.add("refused")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
