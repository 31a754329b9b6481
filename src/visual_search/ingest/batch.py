"""Lambda-side batching for object ingest: Powertools' BatchProcessor with a batch stage.

Powertools calls the record handler once per SQS message (parse, and stage each event's command, so a
bad message fails alone); then the staged images of the whole batch are embedded and written together.
If that batch stage fails, it is repeated message by message, so only the messages that still fail are
reported in the partial batch response (`batchItemFailures`, built by Powertools as usual) and retried.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from visual_search.ingest.events import command_for, parse_lambda_event
from visual_search.ingest.objects import IngestReport, ObjectIngest, Staged

log = logging.getLogger(__name__)
FETCH_WORKERS = 8


class StagedBatchProcessor(BatchProcessor):
    def __init__(self, pipeline: ObjectIngest, report: IngestReport, fetch_workers: int = FETCH_WORKERS):
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.pipeline = pipeline
        self.report = report
        self.fetch_workers = fetch_workers
        self._staged: dict[str, list[Staged]] = {}

    def record_handler(self, record: SQSRecord) -> int:
        """Parse one SQS message and stage its object events; returns how many were staged."""
        staged: list[Staged] = []
        for parsed in parse_lambda_event({"Records": [record.raw_event]}):
            if parsed.ignored:
                log.info("message %s ignored: %s", record.message_id, parsed.ignored)
                continue
            for event in parsed.events:
                item = self.pipeline.stage(command_for(event), self.report)
                if item is not None:
                    staged.append(item)
        self._staged[record.message_id] = staged
        return len(staged)

    def process(self) -> list[tuple]:
        self._staged.clear()
        # Staging is mostly waiting for S3 (the object GET), so the messages of a batch stage side by side.
        with ThreadPoolExecutor(max_workers=max(1, min(self.fetch_workers, len(self.records)))) as pool:
            results = list(pool.map(self._process_record, self.records))
        pending = [(r, self._staged.get(r["messageId"], [])) for r in list(self._successes)]
        pending = [(r, s) for r, s in pending if s]
        if not pending:
            return results
        try:
            self._apply_counted([item for _, items in pending for item in items])
        except Exception:
            # One message's failure must not send the whole batch back: apply message by message, so
            # only the messages that still fail return to the queue (and, in the end, the DLQ).
            log.warning("batch stage failed; applying its %d message(s) one by one", len(pending))
            for record, items in pending:
                self._apply_alone(record, items)
        return results

    @property
    def _successes(self) -> list[dict[str, Any]]:
        """Powertools' list of the records that succeeded: the raw SQS records (no event model is used)."""
        return cast(list[dict[str, Any]], self.success_messages)

    def _apply_alone(self, record: dict[str, Any], items: list[Staged]) -> None:
        try:
            self._apply_counted(items)
        except Exception as exc:
            log.warning("message %s goes back to the queue: %s", record.get("messageId"), exc)
            self._successes.remove(record)
            as_record = self._to_batch_type(record, event_type=self.event_type, model=self.model)
            self.failure_handler(as_record, (type(exc), exc, exc.__traceback__))

    def _apply_counted(self, items: list[Staged]) -> None:
        # Counted only once applied: a batch that fails is applied again message by message.
        attempt = self.pipeline.apply(items)
        self.report.merge(attempt)


def handle_event(
    pipeline: ObjectIngest, event: dict[str, Any], context: Any = None, report: IngestReport | None = None
) -> dict[str, Any]:
    """The ingest Lambda's body: SQS batches get a partial batch response; direct S3 and EventBridge
    events are applied whole and raise on failure (Lambda's async retries and on-failure destination).
    `report`, when given, receives this call's outcomes and stage seconds."""
    report = report if report is not None else IngestReport()
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:sqs":
        processor = StagedBatchProcessor(pipeline, report)
        with processor(records=records, handler=processor.record_handler, lambda_context=context):
            processor.process()
        return dict(processor.response())
    staged = [
        item
        for parsed in parse_lambda_event(event)
        if not parsed.ignored
        for e in parsed.events
        if (item := pipeline.stage(command_for(e), report)) is not None
    ]
    pipeline.apply(staged, report)
    return {"applied": len(staged)}
