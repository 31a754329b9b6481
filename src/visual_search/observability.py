"""Metrics names and their publication, shared by the Lambda handlers."""

from __future__ import annotations

from collections.abc import Mapping

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
    counts: Mapping[str, int],
    stage_seconds: Mapping[str, float],
    failed_messages: int,
) -> None:
    """One invocation's outcome counts and per-stage latency."""
    for outcome, name in OUTCOME_METRICS.items():
        if count := counts.get(outcome, 0):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    if failed_messages:
        metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=failed_messages)
    for stage, seconds in stage_seconds.items():
        metrics.add_metric(
            name=f"Stage{stage.capitalize()}Ms", unit=MetricUnit.Milliseconds, value=seconds * 1000
        )
