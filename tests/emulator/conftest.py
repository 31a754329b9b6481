"""The emulator tier: each function run as Lambda runs it (tests/emulator/function.py), from the x86_64
layers `make layers ARCH=x86_64` builds (tests/fixtures/layers.py: built once, again when their sources
change), with the environment of the synthesized template, against moto's server (S3, DynamoDB, Secrets
Manager, as the stack's bucket, ledger and secret) and the local OpenSearch node behind a guard
(tests/emulator/stack.py). Each function's emulator starts once per session; its cold init, first
request and peak RSS are written to test-artifacts/emulator.json and shown at the end of the run."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.emulator import stack
from tests.emulator.function import EmulatedFunction
from tests.emulator.index_proxy import IndexProxy
from tests.emulator.stack import LambdaBuild, World
from tests.fixtures.layers import ROOT

ARTIFACTS = ROOT / "test-artifacts" / "emulator.json"
MEASURED: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="session")
def lambda_build() -> LambdaBuild:
    return stack.lambda_build()


@pytest.fixture(scope="session")
def world(lambda_build, tmp_path_factory, opensearch_url) -> Iterator[World]:
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with (
        stack.moto_server(log) as endpoint,
        stack.local_world(lambda_build, endpoint, opensearch_url) as world,
    ):
        yield world


def start_function(name: str, lambda_build, world: World, tmp_path_factory, **options) -> EmulatedFunction:
    return stack.start_function(
        name, lambda_build, world, tmp_path_factory.mktemp(f"lambda-{name}"), **options
    )


def record(label: str, function: EmulatedFunction) -> None:
    """The first invocation's init and duration, and the process's peak RSS so far."""
    first = function.invocations[0]
    MEASURED[label] = {
        "cold_init_ms": round(first.init_ms or 0.0, 1),
        "first_request_ms": round(first.duration_ms, 1),
        "peak_rss_mb": round(function.peak_rss_mb(), 1),
    }


@pytest.fixture(scope="session")
def emulated(lambda_build, world, tmp_path_factory) -> Iterator[dict[str, EmulatedFunction]]:
    """Each function, started on first use; measured and stopped at the end of the session."""

    class Started(dict):
        def __missing__(self, name: str) -> EmulatedFunction:
            self[name] = start_function(name, lambda_build, world, tmp_path_factory)
            return self[name]

    started = Started()
    yield started
    for name, function in started.items():
        try:
            if function.invocations:
                record(name, function)
        finally:
            function.stop()
    if MEASURED:
        ARTIFACTS.parent.mkdir(exist_ok=True)
        ARTIFACTS.write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), **MEASURED}, indent=2) + "\n")


@pytest.fixture
def search_with_index_down(lambda_build, world, tmp_path_factory, opensearch_url):
    """A search function of its own (its own cold start) whose index endpoint is down at first."""
    proxy = IndexProxy(opensearch_url)
    proxy.down = True
    function = start_function("search", lambda_build, world, tmp_path_factory, index=proxy)
    yield function, proxy
    try:
        if function.invocations:
            record("search, index down", function)
    finally:
        function.stop()
        proxy.shutdown()


def pytest_terminal_summary(terminalreporter) -> None:
    if MEASURED:
        terminalreporter.section("Lambda functions under the emulator (x86_64 layers, this machine)")
        for label, figures in MEASURED.items():
            terminalreporter.line(
                f"{label:<24} cold init {figures['cold_init_ms']:7.0f} ms   first request "
                f"{figures['first_request_ms']:6.0f} ms   peak RSS {figures['peak_rss_mb']:5.0f} MB"
            )
