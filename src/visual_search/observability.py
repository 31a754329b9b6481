"""Metrics names and their publication, shared by the Lambda handlers."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from visual_search.settings import CoreSettings

NAMESPACE = "VisualSearch"
# Every custom metric is filed under the stack it comes from as well as its service: two stacks in one
# account (and region) then never count each other's images, and each stack's alarms select its own.
STACK_DIMENSION = "stack"
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
    *,
    stack: str | None = None,
) -> None:
    """One invocation's outcome counts and per-stage latency, under the `stack` dimension: `stack`, else
    the deployed stack the settings name (`VS_STACK_NAME`, set by CDK); none outside a stack."""
    stack = deployed_stack() if stack is None else stack
    if stack:
        # Per invocation: Powertools clears the dimensions added since its last flush.
        metrics.add_dimension(name=STACK_DIMENSION, value=stack)
    for outcome, name in OUTCOME_METRICS.items():
        if count := counts.get(outcome, 0):
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=count)
    if failed_messages:
        metrics.add_metric(name="MessagesRetried", unit=MetricUnit.Count, value=failed_messages)
    for stage, seconds in stage_seconds.items():
        metrics.add_metric(
            name=f"Stage{stage.capitalize()}Ms", unit=MetricUnit.Milliseconds, value=seconds * 1000
        )


@lru_cache(maxsize=1)
def deployed_stack() -> str | None:
    """The stack these functions belong to, read once per execution environment."""
    return CoreSettings().stack_name
