"""The API Gateway authorizer lets through exactly the configured api_key:api_secret (from Secrets
Manager, moto), and its decision covers every route (the policy is cached per header)."""

from __future__ import annotations

import base64
import json

import boto3
import pytest

from tests.events import authorizer_event
from tests.fixtures.lambdas import LambdaContext, loaded_handler


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@pytest.fixture
def authorizer(aws_env, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    arn = boto3.client("secretsmanager").create_secret(
        Name="vs-credentials", SecretString=json.dumps({"api_key": "key-1", "api_secret": "s3cret"})
    )["ARN"]
    monkeypatch.setenv("VS_CREDENTIALS_SECRET_ARN", arn)
    with loaded_handler("authorizer") as module:
        yield module


def effect(response: dict) -> str:
    (statement,) = response["policyDocument"]["Statement"]
    assert statement["Resource"] == ["arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/prod/*/*"]
    return statement["Effect"]


@pytest.mark.parametrize(
    "header",
    [
        None,
        basic("key-1", "wrong"),
        basic("other", "s3cret"),
        "Bearer token",
        "Basic !!!",
        basic("key-1", ""),
    ],
)
def test_missing_or_wrong_credentials_are_denied(authorizer, header):
    assert effect(authorizer.handler(authorizer_event(header), LambdaContext())) == "Deny"


def test_the_configured_key_and_secret_are_allowed_on_every_route(authorizer):
    response = authorizer.handler(authorizer_event(basic("key-1", "s3cret")), LambdaContext())
    assert effect(response) == "Allow"
    assert response["principalId"] == "key-1"


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_the_policy_names_the_partition_the_api_runs_in(authorizer, partition):
    event = authorizer_event(basic("key-1", "s3cret"))
    event["methodArn"] = event["methodArn"].replace("arn:aws:", f"arn:{partition}:")
    response = authorizer.handler(event, LambdaContext())
    (statement,) = response["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    (resource,) = statement["Resource"]
    assert resource.startswith(f"arn:{partition}:execute-api:")
    assert resource.endswith("/*/*")
