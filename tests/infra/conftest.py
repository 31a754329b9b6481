"""One synthesized template per configuration, shared by every test of that configuration (a synth
costs seconds). Each synth runs cdk-nag's AwsSolutions checks; an unacknowledged finding fails it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.layers import built_layers

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

# The ways a team deploys: the default (managed domain, key:secret), a Serverless collection with only
# one prefix indexed and an operator role for backfills, an existing collection (e.g. one a Bedrock
# knowledge base made), an existing domain behind IAM-authorised routes, and a single-node dev domain
# whose alarms e-mail someone.
ADMIN_ROLE = "arn:aws:iam::123456789012:role/search-operators"
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "managed": {},
    "serverless": {
        "index_engine": "serverless",
        "name": "visual-search-team-images-1",  # the longest name allowed: 27 characters
        "ingest_prefix": "photos/",
        "removal_policy": "destroy",
        "admin_role_arns": ADMIN_ROLE,
    },
    "existing-collection": {
        "index_engine": "existing",
        "existing_endpoint": "https://abc123.eu-west-1.aoss.amazonaws.com",
        "existing_arn": "arn:aws:aoss:eu-west-1:123456789012:collection/abc123",
    },
    "existing-iam": {
        "index_engine": "existing",
        "existing_endpoint": "https://search-team.eu-west-1.es.amazonaws.com",
        "existing_arn": "arn:aws:es:eu-west-1:123456789012:domain/team",
        "auth": "iam",
        "architecture": "x86_64",
    },
    "single-node": {
        "instance_count": "1",  # as `-c instance_count=1` passes it
        "alarm_email": "ops@example.com",
        "removal_policy": "destroy",
    },
}


def ensure_layers(architecture: str = "arm64") -> Path:
    """The layers `make layers ARCH=<architecture>` builds (with the tiny model), built here once so the
    synth tests run from a clean checkout too, and again when their sources change."""
    return built_layers(architecture)


@dataclass
class Synthesized:
    name: str
    stack: Any
    template: Any  # aws_cdk.assertions.Template
    json: dict[str, Any]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.json["Resources"].items() if r["Type"] == kind}

    def our_functions(self) -> dict[str, dict[str, Any]]:
        """The project's functions (not CDK's helper functions), by Powertools service name."""
        found = {}
        for logical_id, fn in self.resources("AWS::Lambda::Function").items():
            variables = (fn["Properties"].get("Environment") or {}).get("Variables", {})
            service = variables.get("POWERTOOLS_SERVICE_NAME")
            if service:
                found[service.rsplit("-", 1)[-1]] = {"id": logical_id, **fn["Properties"]}
        return found


def synthesize(name: str, context: dict[str, Any]) -> Synthesized:
    from aws_cdk.assertions import Template

    from app import build_app

    layers = ensure_layers(context.get("architecture", "arm64"))
    app, stack = build_app({"layers_dir": str(layers), **context})
    app.synth()  # runs the cdk-nag validation plugin: raises on an unacknowledged finding
    template = Template.from_stack(stack)
    return Synthesized(name, stack, template, template.to_json())


@pytest.fixture(scope="session", params=sorted(CONFIGURATIONS))
def synthesized(request) -> Synthesized:
    return cached(request.param)


@pytest.fixture(scope="session")
def managed() -> Synthesized:
    return cached("managed")


@pytest.fixture(scope="session")
def serverless() -> Synthesized:
    return cached("serverless")


@pytest.fixture(scope="session")
def existing_iam() -> Synthesized:
    return cached("existing-iam")


@pytest.fixture(scope="session")
def single_node() -> Synthesized:
    return cached("single-node")


_CACHE: dict[str, Synthesized] = {}


def cached(name: str) -> Synthesized:
    if name not in _CACHE:
        _CACHE[name] = synthesize(name, CONFIGURATIONS[name])
    return _CACHE[name]
