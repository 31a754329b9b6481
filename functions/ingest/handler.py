"""Ingest Lambda: S3 object events (through SQS, directly, or from EventBridge) -> the shared ingest core.
Returns Powertools' partial batch response for SQS, so one bad message fails alone."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics

from visual_search.bootstrap import IngestServices, build_ingest
from visual_search.ingest_batch import handle_event
from visual_search.observability import NAMESPACE, publish_ingest
from visual_search.settings import IngestSettings

logger = Logger(service="visual-search-ingest")
metrics = Metrics(namespace=NAMESPACE, service="ingest")
_services: IngestServices | None = None


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _services
    if _services is None:
        _services = build_ingest(IngestSettings())
    pipeline = _services.pipeline
    before, timings_before = dict(pipeline.tally.counts), pipeline.stage_seconds()
    response = handle_event(pipeline, event, context)
    stages = {k: v - timings_before.get(k, 0.0) for k, v in pipeline.stage_seconds().items()}
    publish_ingest(metrics, before, pipeline.tally.counts, stages, len(response.get("batchItemFailures", [])))
    return response
