"""One synthesized template per configuration, shared by every test of that configuration (a synth
costs seconds). Each synth runs cdk-nag's AwsSolutions checks; an unacknowledged finding fails it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.config import Config
from tests.fixtures.layers import built_layers

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

# The ways a team deploys: the default (managed domain, key:secret), a Serverless collection under the
# team's own cloud name and KMS key with only one prefix indexed and an operator role for backfills, an
# existing collection (e.g. one a Bedrock knowledge base made), an existing domain behind IAM-authorised
# routes, and a single-node dev domain whose alarms e-mail someone.
ADMIN_ROLE = "arn:aws:iam::123456789012:role/search-operators"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "managed": {},
    "serverless": {
        "index_engine": "serverless",
        "name": "visual-search-team-images-1",  # the longest name allowed: 27 characters
        "cloud_name": "acme",  # the team's own Cloudinary cloud name
        "ingest_prefix": "photos/",
        "removal_policy": "destroy",
        "admin_role_arns": ADMIN_ROLE,
        "kms_key_arn": KEY,  # the team's own key for everything that holds data or logs
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
    # Inside a VPC: one made here (isolated subnets over two AZs, AWS reached through endpoints), an
    # existing one looked up (named subnets, a team security group added, a Serverless collection behind
    # its VPC endpoint), and one made with a NAT gateway instead of endpoints (a single-node domain).
    "vpc-created": {"create_vpc": "true", "kms_key_arn": KEY},
    "vpc-existing": {
        "vpc_id": "vpc-0a1b2c3d4e5f60718",
        "vpc_subnet_ids": "subnet-0aaa1111bbbb22223,subnet-0ccc3333dddd44445",
        "vpc_security_group_ids": "sg-0123456789abcdef0",
        "index_engine": "serverless",
        "name": "vs-in-vpc",
        "removal_policy": "destroy",
    },
    "vpc-nat": {
        "create_vpc": "true",
        "vpc_nat_gateways": "1",
        "vpc_endpoints": "false",
        "instance_count": "1",
    },
}
# What `cdk synth` with AWS credentials caches in cdk.context.json for the configurations that look
# something up, and the account and region the lookup ran in (the stack's environment).
ACCOUNT, REGION = "123456789012", "eu-west-1"
RECORDED_LOOKUPS: dict[str, dict[str, Any]] = {
    "vpc-existing": {
        f"vpc-provider:account={ACCOUNT}:filter.vpc-id=vpc-0a1b2c3d4e5f60718:region={REGION}"
        ":returnAsymmetricSubnets=true": {
            "vpcId": "vpc-0a1b2c3d4e5f60718",
            "vpcCidrBlock": "10.40.0.0/16",
            "ownerAccountId": ACCOUNT,
            "availabilityZones": [],
            "subnetGroups": [
                {
                    "name": "Private",
                    "type": "Private",
                    "subnets": [
                        {
                            "subnetId": f"subnet-0{s}",
                            "cidr": f"10.40.{i * 16}.0/20",
                            "availabilityZone": f"{REGION}{zone}",
                            "routeTableId": f"rtb-0{s}",
                        }
                        for i, (s, zone) in enumerate(
                            [("aaa1111bbbb22223", "a"), ("ccc3333dddd44445", "b"), ("eee5555ffff66667", "c")]
                        )
                    ],
                },
                {
                    "name": "Public",
                    "type": "Public",
                    "subnets": [
                        {
                            "subnetId": "subnet-0999888877776666a",
                            "cidr": "10.40.200.0/24",
                            "availabilityZone": f"{REGION}a",
                            "routeTableId": "rtb-0999888877776666a",
                        }
                    ],
                },
            ],
        }
    }
}


def ref(value) -> str | None:
    """The logical id a `Ref` or `Fn::GetAtt` names; None for anything else."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


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
    from aws_cdk import Environment
    from aws_cdk.assertions import Template

    from app import build_app

    layers = ensure_layers(context.get("architecture", "arm64"))
    lookups = RECORDED_LOOKUPS.get(name)
    env = Environment(account=ACCOUNT, region=REGION) if lookups else None
    app, stack = build_app({"layers_dir": str(layers), **context, **(lookups or {})}, env=env)
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


VPC_CONFIGURATIONS = sorted(name for name, context in CONFIGURATIONS.items() if Config(**context).in_vpc)


@pytest.fixture(scope="session", params=VPC_CONFIGURATIONS)
def in_vpc(request) -> Synthesized:
    return cached(request.param)


_CACHE: dict[str, Synthesized] = {}


def cached(name: str) -> Synthesized:
    if name not in _CACHE:
        _CACHE[name] = synthesize(name, CONFIGURATIONS[name])
    return _CACHE[name]
