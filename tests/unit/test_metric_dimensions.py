"""Every custom metric carries the stack it comes from, so two stacks in one account (each with its own
IngestRetries alarm) never count each other's failures."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools import Metrics

from visual_search import observability
from visual_search.observability import NAMESPACE, STACK_DIMENSION, publish_ingest


@pytest.fixture
def metrics():
    emitted = Metrics(namespace=NAMESPACE, service="visual-search-ingest")
    yield emitted
    emitted.clear_metrics()


def _emitted(metrics: Metrics, capsys) -> list[dict]:
    """The EMF documents Powertools prints: the dimensions CloudWatch files each metric under."""
    metrics.flush_metrics()
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


@pytest.fixture
def stack_from_environment(monkeypatch):
    def set_to(name: str | None) -> None:
        if name is None:
            monkeypatch.delenv("VS_STACK_NAME", raising=False)
        else:
            monkeypatch.setenv("VS_STACK_NAME", name)
        observability.deployed_stack.cache_clear()

    yield set_to
    observability.deployed_stack.cache_clear()


def test_every_ingest_metric_carries_the_stack_the_settings_name(metrics, capsys, stack_from_environment):
    # Given the function's environment names its stack (CDK sets VS_STACK_NAME)
    stack_from_environment("VisualSearchStaging")
    # When one invocation publishes its outcome
    publish_ingest(metrics, {"indexed": 2}, {"fetch": 0.1}, failed_messages=3)
    # Then every metric is filed under that stack as well as the service
    (document,) = _emitted(metrics, capsys)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert [sorted(names) for names in directive["Dimensions"]] == [["service", STACK_DIMENSION]]
    assert {m["Name"] for m in directive["Metrics"]} >= {"MessagesRetried", "ImagesIndexed", "StageFetchMs"}
    assert (document["service"], document[STACK_DIMENSION]) == ("visual-search-ingest", "VisualSearchStaging")


def test_an_explicit_stack_wins_over_the_settings(metrics, capsys, stack_from_environment):
    stack_from_environment("VisualSearch")
    publish_ingest(metrics, {}, {}, failed_messages=1, stack="Other")
    (document,) = _emitted(metrics, capsys)
    assert document[STACK_DIMENSION] == "Other"


def test_outside_a_deployed_stack_metrics_keep_the_service_dimension_only(
    metrics, capsys, stack_from_environment
):
    stack_from_environment(None)  # the local server, a backfill on a laptop
    publish_ingest(metrics, {}, {}, failed_messages=1)
    (document,) = _emitted(metrics, capsys)
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]


def test_each_invocation_is_filed_under_the_stack_again_after_a_flush(
    metrics, capsys, stack_from_environment
):
    # Powertools clears dimensions added per invocation when it flushes.
    stack_from_environment("VisualSearch")
    for _ in range(2):
        publish_ingest(metrics, {}, {}, failed_messages=1)
        (document,) = _emitted(metrics, capsys)
        assert document[STACK_DIMENSION] == "VisualSearch"
