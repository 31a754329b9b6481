"""The authorizer, run as Lambda runs it: the secret's key and secret are allowed on every route, anything
else is denied."""

from __future__ import annotations

from tests.emulator.calls import basic
from tests.events import authorizer_event


def effect(payload: dict) -> str:
    (statement,) = payload["policyDocument"]["Statement"]
    return statement["Effect"]


def test_the_secrets_credentials_are_allowed(emulated, world):
    called = emulated["authorizer"].invoke(authorizer_event(basic(world.api_key, world.api_secret)))

    assert called.status == 200
    assert effect(called.payload) == "Allow"
    assert called.payload["principalId"] == world.api_key


def test_a_wrong_secret_and_no_credentials_are_denied(emulated, world):
    for header in (basic(world.api_key, "not-the-secret"), None):
        called = emulated["authorizer"].invoke(authorizer_event(header))

        assert (called.status, effect(called.payload)) == (200, "Deny")
