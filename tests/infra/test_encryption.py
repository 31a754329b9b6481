"""With `kms_key_arn`, the team's one customer-managed key encrypts everything of the stack that can hold
one: every log group, the ledger, the secret, the alarm topic, both queues, the image bucket, the index
(domain or collection) and the functions' environment. Without it, AWS's keys, as before."""

from __future__ import annotations

import json

import pytest

from tests.infra.conftest import CONFIGURATIONS, KEY, cached

KEYED = sorted(name for name, context in CONFIGURATIONS.items() if context.get("kms_key_arn"))


def _one(s, kind: str) -> dict:
    (resource,) = s.resources(kind).values()
    return resource["Properties"]


def _keyed_all(s, kind: str, field: str) -> None:
    resources = s.resources(kind)
    assert resources, kind
    for logical_id, resource in resources.items():
        assert resource["Properties"].get(field) == KEY, (kind, logical_id)


def test_the_configurations_exercise_a_key_on_both_engines():
    engines = {CONFIGURATIONS[name].get("index_engine", "managed") for name in KEYED}
    assert engines == {"managed", "serverless"}


@pytest.mark.parametrize("name", KEYED)
def test_the_teams_key_encrypts_every_log_group_queue_and_the_topic(name):
    s = cached(name)
    _keyed_all(s, "AWS::Logs::LogGroup", "KmsKeyId")  # CDK's helpers' and the domain's included
    _keyed_all(s, "AWS::SQS::Queue", "KmsMasterKeyId")
    _keyed_all(s, "AWS::SNS::Topic", "KmsMasterKeyId")
    _keyed_all(s, "AWS::SecretsManager::Secret", "KmsKeyId")


@pytest.mark.parametrize("name", KEYED)
def test_the_teams_key_encrypts_the_ledger_the_images_and_the_functions_environment(name):
    s = cached(name)
    ledger = _one(s, "AWS::DynamoDB::Table")["SSESpecification"]
    assert ledger == {"KMSMasterKeyId": KEY, "SSEEnabled": True, "SSEType": "KMS"}
    images = s.stack.get_logical_id(s.stack.images.bucket.node.default_child)
    (rule,) = s.json["Resources"][images]["Properties"]["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert rule["ServerSideEncryptionByDefault"] == {"KMSMasterKeyID": KEY, "SSEAlgorithm": "aws:kms"}
    assert rule["BucketKeyEnabled"] is True  # one data key per bucket, not one KMS call per object
    for function_name, fn in s.our_functions().items():
        assert fn["KmsKeyArn"] == KEY, function_name


def test_the_teams_key_encrypts_the_domain_at_rest():
    (name,) = [n for n in KEYED if CONFIGURATIONS[n].get("index_engine", "managed") == "managed"]
    options = _one(cached(name), "AWS::OpenSearchService::Domain")["EncryptionAtRestOptions"]
    assert options == {"Enabled": True, "KmsKeyId": KEY.rsplit("/", 1)[1]}  # CDK passes the key's id


def test_the_teams_key_encrypts_the_collection():
    (name,) = [n for n in KEYED if CONFIGURATIONS[n].get("index_engine") == "serverless"]
    policies = cached(name).resources("AWS::OpenSearchServerless::SecurityPolicy").values()
    (encryption,) = [
        json.loads(p["Properties"]["Policy"]) for p in policies if p["Properties"]["Type"] == "encryption"
    ]
    assert (encryption["AWSOwnedKey"], encryption["KmsARN"]) == (False, KEY)


@pytest.mark.parametrize("name", KEYED)
def test_the_functions_may_use_the_key_for_what_they_read_and_write(name):
    # An imported key's policy is the team's: the roles get IAM permissions on it (the key policy must
    # delegate to IAM, as AWS's default key policy does; docs/deploy.md).
    s = cached(name)
    for function_name, fn in s.our_functions().items():
        role = fn["Role"]["Fn::GetAtt"][0]
        statements = [
            statement
            for policy in s.resources("AWS::IAM::Policy").values()
            if {"Ref": role} in policy["Properties"]["Roles"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        on_key = {a for st in statements if st["Resource"] == KEY for a in _listed(st["Action"])}
        assert "kms:Decrypt" in on_key, function_name


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def test_without_a_key_aws_keys_stay():
    s = cached("managed")
    assert all("KmsKeyId" not in g["Properties"] for g in s.resources("AWS::Logs::LogGroup").values())
    assert _one(s, "AWS::DynamoDB::Table")["SSESpecification"] == {"SSEEnabled": True}
    assert all(
        q["Properties"]["SqsManagedSseEnabled"] is True for q in s.resources("AWS::SQS::Queue").values()
    )
    assert _one(s, "AWS::OpenSearchService::Domain")["EncryptionAtRestOptions"] == {"Enabled": True}
    assert all("KmsKeyArn" not in fn for fn in s.our_functions().values())
