"""Ingest Lambda: S3 object events (through SQS, directly, or from EventBridge) -> the shared ingest core.
Returns Powertools' partial batch response for SQS, so one bad message fails alone. Services are built
on the first invocation and kept for the life of the execution environment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from visual_search.bootstrap import IngestServices, build_ingest
from visual_search.ingest.batch import handle_event
from visual_search.ingest.objects import IngestReport
from visual_search.observability import NAMESPACE, publish_ingest
from visual_search.settings import IngestSettings

logger = Logger(service="visual-search-ingest")
# The core logs through the standard library; give its records the same structured JSON output.
copy_config_to_registered_loggers(source_logger=logger, include={"visual_search"})
metrics = Metrics(namespace=NAMESPACE, service="visual-search-ingest")
tracer = Tracer(service="visual-search-ingest")
_services: IngestServices | None = None


@logger.inject_lambda_context
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _services
    if _services is None:
        _services = build_ingest(IngestSettings())
    report = IngestReport()
    response = handle_event(_services.pipeline, event, context, report)
    failed = len(response.get("batchItemFailures", []))
    publish_ingest(metrics, report.counts, report.stage_seconds(), failed)
    return response
