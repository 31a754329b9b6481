"""Indexing what is already in the bucket: at first deployment, and into a new index after a model
change (the index and the ledger are per model, so the old index keeps serving until readers switch).

It goes through the same staging and batch apply as live S3 events, with the IndexObject commands of
events made from the listing:
their order token sits below every S3 sequencer, so a live event is never overwritten by a backfill.
Resumable for free: an object whose listing entry was already applied is skipped by the ledger check,
so an interrupted run continues where it stopped, and a second run only touches what changed.
`prune` also removes assets whose object is gone (deletions missed while no worker was listening).

Into a new OpenSearch index (`VS_OPENSEARCH_REINDEX`), `visual-search backfill` runs this as a bulk load
(`OpenSearchIndex.begin_load`): the index's refresh is off and it has no replica, and each batch's write
is acknowledged - durable - before the ledger records it, as always, but does not wait for a refresh (up
to a second a batch); `--activate` then finishes the index and moves readers to it. The batches stay
this pipeline's, since embedding, not the index, is the slow stage here; whoever already holds vectors
writes them with `OpenSearchIndex.bulk_load` (parallel requests cut by bytes: bench/opensearch_bulk.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC

from visual_search.ingest.events import ObjectEvent, command_for
from visual_search.ingest.objects import IngestReport, ObjectIngest, Staged
from visual_search.ingest.pacing import Pacer
from visual_search.storage.port import ImageStore, ObjectInfo

log = logging.getLogger(__name__)


@dataclass
class BackfillReport:
    listed: int = 0
    ingest: IngestReport = field(default_factory=IngestReport)

    @property
    def outcomes(self) -> dict[str, int]:
        return {k: v for k, v in self.ingest.counts.items() if v}


def backfill(
    pipeline: ObjectIngest,
    store: ImageStore,
    prefix: str = "",
    per_second: float | None = None,
    batch_size: int = 16,
    prune: bool = False,
    progress: Callable[[int], None] | None = None,
) -> BackfillReport:
    report, pacer, seen = BackfillReport(), Pacer(per_second), set()
    batch: list[Staged] = []
    for info in store.scan(prefix):
        report.listed += 1
        seen.add(info.key)
        pacer.wait()
        staged = pipeline.stage(command_for(listing_event(store.name, info)), report.ingest)
        if staged is not None:
            batch.append(staged)
        if len(batch) >= batch_size:
            pipeline.apply(batch, report.ingest)
            batch = []
        if progress:
            progress(1)
    if batch:
        pipeline.apply(batch, report.ingest)
    if prune:
        pipeline.apply(pipeline.removals_for_missing(seen, prefix), report.ingest)
    return report


def listing_event(bucket: str, info: ObjectInfo) -> ObjectEvent:
    modified = info.last_modified.astimezone(UTC) if info.last_modified.tzinfo else info.last_modified
    return ObjectEvent(
        kind="created",
        bucket=bucket,
        key=info.key,
        event_time=modified.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # fixed width: compares as text
        size=info.size,
        name="Backfill",
        listed=True,
    )
