"""Metrics names and their publication, shared by the Lambda handlers."""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "VisualSearch"
OUTCOME_METRICS = {
    "indexed": "ImagesIndexed",
    "refused": "ImagesRefused",
    "removed": "ImagesRemoved",
    "skipped": "EventsSkipped",
}


def publish_ingest(
    metrics: Metrics,
    before: dict[str, int],
    after: dict[str, int],
    stage_seconds: dict[str, float],
    failed_messages: int,
) -> None:
    """Counts of this invocation (the pipeline's tallies are cumulative) and per-stage latency."""
    for outcome, name in OUTCOME_METRICS.items():
        delta = after.get(outcome, 0) - before.get(outcome, 0)
        if delta:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=delta)
    if failed_messages:
        metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=failed_messages)
    for stage, seconds in stage_seconds.items():
        metrics.add_metric(
            name=f"Stage{stage.capitalize()}Ms", unit=MetricUnit.Milliseconds, value=seconds * 1000
        )
