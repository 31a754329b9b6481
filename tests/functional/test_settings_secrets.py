"""Deployed functions read their API credentials from Secrets Manager (moto), never from a default."""

from __future__ import annotations

import json

import boto3
import pytest

from visual_search.errors import ConfigurationError
from visual_search.settings import ServiceSettings, with_aws_secrets


@pytest.fixture
def secret_arn(aws_env):
    client = boto3.client("secretsmanager")

    def make(value: dict) -> str:
        name = f"vs-credentials-{len(value)}-{sorted(value)[0]}"
        return client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"]

    return make


def test_credentials_come_from_the_named_secret(secret_arn):
    arn = secret_arn({"api_key": "prod-key", "api_secret": "s3cret", "cursor_secret": "c" * 32})
    settings = with_aws_secrets(ServiceSettings(credentials_secret_arn=arn))
    assert settings.api_key == "prod-key"
    assert settings.api_secret.get_secret_value() == "s3cret"
    assert settings.cursor_secret.get_secret_value() == "c" * 32


def test_a_secret_without_the_expected_fields_is_a_configuration_error(secret_arn):
    arn = secret_arn({"password": "x"})
    with pytest.raises(ConfigurationError, match="api_secret"):
        with_aws_secrets(ServiceSettings(credentials_secret_arn=arn))


def test_without_a_secret_arn_the_settings_are_unchanged():
    settings = ServiceSettings()
    assert with_aws_secrets(settings) is settings


def test_without_a_cursor_secret_one_is_derived_from_the_api_secret(secret_arn):
    arn = secret_arn({"api_key": "k", "api_secret": "generated-by-secrets-manager"})
    first = with_aws_secrets(ServiceSettings(credentials_secret_arn=arn)).cursor_secret.get_secret_value()
    assert first
    assert first != "generated-by-secrets-manager"
