"""The CDK context is validated before anything is synthesized: typed from `-c key=value` strings, one
clear message per bad key, values OpenSearch or Lambda would refuse at deploy time refused here."""

from __future__ import annotations

import pytest

from infra.config import Config, ConfigError


def _from(**context: object) -> Config:
    return Config.from_context(context)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"instance_count": "4"}, 4),
        ({"ingest_opt_in": "true"}, True),
        ({"bucket_versioning": "false"}, False),
        ({"serverless_standby": "False"}, False),
        ({"volume_gb": "100"}, 100),
    ],
)
def test_context_overrides_from_the_command_line_are_typed(raw, expected):
    ((name, _),) = raw.items()
    assert getattr(Config.from_context(raw), name) == expected


def test_an_unknown_literal_is_named_with_the_values_it_accepts():
    with pytest.raises(ConfigError) as refused:
        _from(index_engine="serverles")
    message = str(refused.value)
    assert "index_engine='serverles'" in message
    assert "'managed', 'serverless' or 'existing'" in message
    assert "existing_endpoint" not in message  # not mistaken for a half-configured existing engine


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("architecture", "arm"),
        ("auth", "basic"),
        ("removal_policy", "delete"),
        ("instance_count", "two"),
        ("ingest_batch_size", "0"),
        ("ingest_max_concurrency", "1"),
        ("search_memory_mb", "128"),
        ("instance_type", "r7g.large"),
        ("alarm_email", "ops"),
        ("admin_role_arns", "arn:aws:iam::123456789012:user/alice"),
        ("existing_arn", "arn:aws:s3:::bucket"),
        ("serverless_generation", "next"),
        ("cloud_name", "Acme"),
        ("cloud_name", "my cloud"),
        ("cloud_name", "-acme"),
        ("cloud_name", "a" * 65),
        ("kms_key_arn", "alias/visual-search"),
        ("kms_key_arn", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"),
        ("kms_key_arn", "arn:aws:kms:eu-west-1:123456789012:alias/visual-search"),
    ],
)
def test_each_bad_value_is_refused_with_a_message_naming_its_key(key, value):
    with pytest.raises(ConfigError, match=rf"\n  {key}='{value}': "):
        _from(**{key: value})


def test_every_bad_key_gets_its_own_line():
    with pytest.raises(ConfigError) as refused:
        _from(architecture="arm", auth="basic", volume_gb="1")
    lines = str(refused.value).splitlines()[1:]
    assert [line.split("=")[0].strip() for line in lines] == ["volume_gb", "architecture", "auth"]


@pytest.mark.parametrize("count", [3, 5, 7])
def test_an_odd_node_count_above_one_is_refused_since_two_az_awareness_needs_an_even_one(count):
    with pytest.raises(ConfigError, match=r"instance_count=.*even count: use 1 \(a single-node dev domain\)"):
        _from(instance_count=str(count))


@pytest.mark.parametrize("count", [1, 2, 4, 6])
def test_a_single_node_or_an_even_count_is_accepted(count):
    assert _from(instance_count=count).instance_count == count


def test_an_existing_engine_needs_its_endpoint_and_its_arn():
    with pytest.raises(ConfigError, match="index_engine=existing needs existing_endpoint and existing_arn"):
        _from(index_engine="existing", existing_endpoint="https://search-x.eu-west-1.es.amazonaws.com")


def test_the_region_an_existing_arn_names_is_the_one_sigv4_signs_for():
    config = _from(
        index_engine="existing",
        existing_endpoint="https://search-x.cn-north-1.es.amazonaws.com.cn",
        existing_arn="arn:aws-cn:es:cn-north-1:123456789012:domain/team",
    )
    assert config.existing_region == "cn-north-1"


@pytest.mark.parametrize("name", ["Visual-Search", "vs", "a" * 28, "search_images", "1search"])
def test_a_name_the_collection_or_its_policies_would_refuse_is_refused_at_synth(name):
    with pytest.raises(ConfigError, match="3 to 27 characters"):
        _from(name=name)


@pytest.mark.parametrize("name", ["acme", "demo", "team-7_images", "d3x9k2"])
def test_a_cloud_name_of_lowercase_letters_digits_hyphens_and_underscores_is_accepted(name):
    assert _from(cloud_name=name).cloud_name == name


def test_a_misspelt_key_is_refused_with_the_closest_known_one():
    with pytest.raises(
        ConfigError, match=r"unknown context key instance_cont \(did you mean instance_count\?\)"
    ):
        _from(instance_cont="4")


def test_every_unknown_key_is_named_beside_every_bad_value_in_one_message():
    with pytest.raises(ConfigError) as refused:
        _from(instance_cont="4", volumegb="40", colour="blue", auth="basic")
    lines = str(refused.value).splitlines()[1:]
    assert [line.strip() for line in lines] == [
        "unknown context key colour",  # nothing close: no guess
        "unknown context key instance_cont (did you mean instance_count?)",
        "unknown context key volumegb (did you mean volume_gb?)",
        "auth='basic': Input should be 'secret' or 'iam'",
    ]


CDK_OWN_KEYS = {
    "@aws-cdk/core:enablePartitionLiterals": True,  # feature flags (cdk.json)
    "aws:cdk:enable-path-metadata": True,  # what the CLI adds on every run
    "aws:cdk:bundling-stacks": ["**"],
    "aws-cdk:enableDiffNoFail": True,
    "acknowledged-issue-numbers": [34892],  # cdk.context.json, after `cdk acknowledge`
    "vpc-provider:account=123456789012:filter.vpc-id=vpc-1:region=eu-west-1:returnAsymmetricSubnets=true": {},
    "availability-zones:account=123456789012:region=eu-west-1": ["eu-west-1a"],
    "assets-ecr-repository-name": "x",
}


def test_the_keys_cdk_itself_puts_in_context_are_left_to_cdk():
    # Only keys spelt like ours (letters, digits, '_') are ours to refuse; CDK's all carry '@', ':' or '-'.
    assert _from(**CDK_OWN_KEYS, instance_count="4").instance_count == 4


def test_the_app_refuses_an_unknown_key_before_synthesizing_anything():
    from app import build_app

    with pytest.raises(
        ConfigError, match=r"unknown context key instance_cont \(did you mean instance_count\?\)"
    ):
        build_app({"instance_cont": "4"})


VPC = "vpc-0a1b2c3d4e5f60718"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("vpc_id", "vpc-xyz"),
        ("vpc_id", "my-vpc"),
        ("vpc_subnet_ids", "subnet-0a1b2c3d4e5f60718,subnet-12"),
        ("vpc_security_group_ids", "sg-nothex00"),
        ("vpc_nat_gateways", "3"),
    ],
)
def test_each_bad_vpc_value_is_refused_with_a_message_naming_its_key(key, value):
    context = {key: value} if key in ("vpc_id", "vpc_nat_gateways") else {"vpc_id": VPC, key: value}
    with pytest.raises(ConfigError, match=rf"\n  {key}='{value}': "):
        _from(**context)


def test_an_existing_vpc_with_its_subnets_and_extra_security_groups_is_accepted():
    config = _from(
        vpc_id=VPC,
        vpc_subnet_ids="subnet-0a1b2c3d4e5f60718, subnet-1a2b3c4d",
        vpc_security_group_ids="sg-0123456789abcdef0",
    )
    assert config.in_vpc
    assert config.subnet_ids == ["subnet-0a1b2c3d4e5f60718", "subnet-1a2b3c4d"]
    assert config.security_group_ids == ["sg-0123456789abcdef0"]


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"vpc_id": VPC, "create_vpc": "true"}, "create_vpc makes a VPC, vpc_id names an existing one"),
        ({"vpc_subnet_ids": "subnet-1a2b3c4d"}, "vpc_subnet_ids and vpc_security_group_ids need vpc_id"),
        ({"vpc_security_group_ids": "sg-1a2b3c4d"}, "vpc_subnet_ids and vpc_security_group_ids need vpc_id"),
        ({"vpc_nat_gateways": "1"}, "vpc_nat_gateways: the NAT gateways of the VPC create_vpc makes"),
        (
            {"vpc_nat_gateways": "1", "vpc_id": VPC},
            "vpc_nat_gateways: the NAT gateways of the VPC create_vpc",
        ),
        ({"vpc_endpoints": "false"}, "vpc_endpoints applies to a VPC"),
        ({"create_vpc": "true", "vpc_endpoints": "false"}, "a created VPC without NAT gateways reaches"),
    ],
)
def test_vpc_keys_that_contradict_each_other_are_refused(context, message):
    with pytest.raises(ConfigError, match=message):
        _from(**context)


def test_a_created_vpc_with_nat_gateways_may_do_without_endpoints():
    config = _from(create_vpc="true", vpc_nat_gateways="1", vpc_endpoints="false")
    assert (config.in_vpc, config.vpc_nat_gateways, config.vpc_endpoints) == (True, 1, False)


def test_no_vpc_is_the_default():
    assert not Config().in_vpc


def test_looking_an_existing_vpc_up_without_an_account_names_what_is_missing(monkeypatch):
    from app import build_app

    monkeypatch.delenv("CDK_DEFAULT_ACCOUNT", raising=False)
    with pytest.raises(ConfigError, match=r"vpc_id: looking the VPC up needs the account and the region"):
        build_app({"vpc_id": VPC})


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:kms:eu-west-1:123456789012:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        "arn:aws-cn:kms:cn-north-1:123456789012:key/mrk-0b1c2d3e4f5061728394a5b6c7d8e9f0",
    ],
)
def test_a_key_arn_of_any_partition_single_or_multi_region_is_accepted(arn):
    assert _from(kms_key_arn=arn).kms_key_arn == arn
