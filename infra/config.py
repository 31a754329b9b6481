"""Deployment configuration from CDK context (`cdk.json` defaults, `-c key=value` overrides), validated by
one pydantic model: `-c` values arrive as strings and are coerced to the field's type; a bad value is
refused at synth with one message per key, before anything reaches CloudFormation.

docs/deploy.md's "Context keys" table lists what each key accepts; keep the two together."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from aws_cdk import RemovalPolicy, aws_lambda
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

ARN = re.compile(r"arn:aws[a-z-]*:(es|aoss):[a-z0-9-]+:\d{12}:(domain|collection)/[a-z0-9-]+")
EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")
# Cloudinary's cloud names: lowercase letters, digits, '-' and '_'. It sits in a URL path segment.
CLOUD_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
# A key's ARN (not an alias: CloudWatch Logs and the domain take the key itself); mrk-: multi-Region.
KEY_ARN = re.compile(
    r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/"
    r"(?:mrk-[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)
# EC2 ids: the 8-hex form of old resources or the 17-hex form of new ones.
EC2_ID = r"[0-9a-f]{8}(?:[0-9a-f]{9})?"
VPC_ID, SUBNET_ID, GROUP_ID = (re.compile(f"{kind}-{EC2_ID}") for kind in ("vpc", "subnet", "sg"))


class ConfigError(ValueError):
    """A context value the stack cannot be built from; the message names every bad key."""


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # It names the Serverless collection and its policies ("<name>-data": at most 32 characters) and the
    # OpenSearch alias: lowercase letters, digits and hyphens.
    name: str = "visual-search"
    # The cloud name Cloudinary clients put in every path (/v1_1/<cloud_name>/...): any other is a 404.
    cloud_name: str = "demo"
    index_engine: Literal["managed", "serverless", "existing"] = "managed"
    existing_endpoint: str = ""  # with index_engine=existing
    # The domain's (arn:…:es:…:domain/…) or the collection's (arn:…:aoss:…:collection/…)
    existing_arn: str = ""
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+\.search$")] = "r7g.large.search"
    # 1: a single-node dev domain (no replica, one AZ); otherwise an even count spread over two AZs.
    instance_count: Annotated[int, Field(ge=1, le=80)] = 2
    volume_gb: Annotated[int, Field(ge=10, le=3072)] = 20
    serverless_standby: bool = True  # standby replicas in a second AZ (false halves the idle OCUs: dev only)
    # The generation of an existing collection (index_engine=existing with an aoss ARN), which its
    # endpoint does not reveal. The collection this stack creates joins no NextGen collection group, so
    # it is Classic whatever this says.
    serverless_generation: Literal["nextgen", "classic"] = "nextgen"
    architecture: Literal["arm64", "x86_64"] = "arm64"
    search_memory_mb: Annotated[int, Field(ge=512, le=10240)] = 2048
    ingest_memory_mb: Annotated[int, Field(ge=512, le=10240)] = 2048
    ingest_batch_size: Annotated[int, Field(ge=1, le=100)] = 10
    ingest_max_concurrency: Annotated[int, Field(ge=2, le=1000)] = 20  # Lambda's SQS minimum is 2
    layers_dir: str = "layers/build"
    # Comma-separated IAM role ARNs that may also read and write the index (backfill, re-index after a
    # model change, the OpenSearch smoke test): the engine's own access policy names them beside the roles.
    admin_role_arns: str = ""
    auth: Literal["secret", "iam"] = "secret"
    removal_policy: Literal["retain", "destroy"] = "retain"
    bucket_versioning: bool = True
    ingest_prefix: str = ""
    ingest_opt_in: bool = False
    throttle_rate: Annotated[int, Field(ge=1, le=10000)] = 50
    throttle_burst: Annotated[int, Field(ge=1, le=5000)] = 100
    # Where the alarms' topic sends e-mail (optional: subscribe anything else to the AlarmTopic output).
    alarm_email: str = ""
    # A VPC for the functions and the index (docs/deploy.md, "Into a VPC"): an existing one, looked up at
    # synth, or one this stack makes over two AZs. Neither: the functions outside any VPC, as before.
    vpc_id: str = ""
    vpc_subnet_ids: str = ""  # comma-separated, of vpc_id; unset: its private subnets
    vpc_security_group_ids: str = ""  # comma-separated: joined to the functions, beside the stack's own
    create_vpc: bool = False
    # create_vpc only: 0 makes isolated subnets (AWS reached through endpoints, no internet); 1 or 2 NAT
    # gateways give the functions a route out (searches and uploads by URL need one).
    vpc_nat_gateways: Annotated[int, Field(ge=0, le=2)] = 0
    # Gateway endpoints (S3, DynamoDB) and interface endpoints (Secrets Manager, SQS, CloudWatch, STS,
    # X-Ray) in the functions' subnets. false: the VPC reaches AWS otherwise (NAT, its own endpoints).
    vpc_endpoints: bool = True
    # One customer-managed KMS key for everything that can take one: log groups, the ledger, the secret,
    # the alarm topic, the queues, the image bucket, the index and the functions' environment. Unset: AWS's.
    kms_key_arn: str = ""

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> Config:
        """The whole context (cdk.json, -c, cdk.context.json, the CLI's own keys): a key spelt like ours
        that is none of ours is refused with the closest known key, beside any bad value."""
        values = {
            key: value for key, value in context.items() if key in cls.model_fields and value is not None
        }
        unknown = [
            unknown_key(key, cls.model_fields) for key in sorted(ours(context)) if key not in cls.model_fields
        ]
        try:
            config = cls(**values)
        except ValidationError as exc:
            raise ConfigError(HEADING + "\n  ".join([*unknown, *explain(exc)])) from None
        if unknown:
            raise ConfigError(HEADING + "\n  ".join(unknown))
        return config

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]{2,26}", value):
            raise ValueError(
                "3 to 27 characters, lowercase letters, digits and '-', starting with a letter "
                "(it names the index, the collection and its policies)"
            )
        return value

    @field_validator("cloud_name")
    @classmethod
    def _cloud_name(cls, value: str) -> str:
        if not CLOUD_NAME.fullmatch(value):
            raise ValueError(
                "1 to 64 characters, lowercase letters, digits, '-' and '_', starting with a letter or a "
                "digit (Cloudinary clients send it in every path: /v1_1/<cloud_name>/...)"
            )
        return value

    @field_validator("instance_count")
    @classmethod
    def _instance_count(cls, value: int) -> int:
        if value > 1 and value % 2:
            raise ValueError(
                "a domain of more than one node spreads its data nodes over two availability zones, which "
                "OpenSearch accepts only for an even count: use 1 (a single-node dev domain) or 2, 4, 6, ..."
            )
        return value

    @field_validator("alarm_email")
    @classmethod
    def _alarm_email(cls, value: str) -> str:
        if value and not EMAIL.fullmatch(value):
            raise ValueError("one e-mail address (or empty for no subscription)")
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _admin_role_arns(cls, value: str) -> str:
        bad = [arn for arn in _split(value) if not ROLE_ARN.fullmatch(arn)]
        if bad:
            raise ValueError(f"not IAM role ARNs: {bad}")
        return value

    @field_validator("existing_arn")
    @classmethod
    def _existing_arn(cls, value: str) -> str:
        if value and not ARN.fullmatch(value):
            raise ValueError(
                "a domain's arn:aws:es:<region>:<account>:domain/<name> or a collection's "
                "arn:aws:aoss:<region>:<account>:collection/<id>"
            )
        return value

    @field_validator("kms_key_arn")
    @classmethod
    def _kms_key_arn(cls, value: str) -> str:
        if value and not KEY_ARN.fullmatch(value):
            raise ValueError("a KMS key's ARN, arn:aws:kms:<region>:<account>:key/<key id> (not an alias)")
        return value

    @field_validator("vpc_id")
    @classmethod
    def _vpc_id(cls, value: str) -> str:
        if value and not VPC_ID.fullmatch(value):
            raise ValueError("a VPC id, vpc-<8 or 17 hexadecimal digits>")
        return value

    @field_validator("vpc_subnet_ids", "vpc_security_group_ids")
    @classmethod
    def _ec2_ids(cls, value: str, info: ValidationInfo) -> str:
        kind = SUBNET_ID if info.field_name == "vpc_subnet_ids" else GROUP_ID
        bad = [item for item in _split(value) if not kind.fullmatch(item)]
        if bad:
            raise ValueError(f"comma-separated {kind.pattern.split('-')[0]}-<8 or 17 hex digits> ids: {bad}")
        return value

    @model_validator(mode="after")
    def _one_vpc(self) -> Config:
        if self.create_vpc and self.vpc_id:
            raise ValueError("create_vpc makes a VPC, vpc_id names an existing one: set one or the other")
        if (self.vpc_subnet_ids or self.vpc_security_group_ids) and not self.vpc_id:
            raise ValueError("vpc_subnet_ids and vpc_security_group_ids need vpc_id: they name parts of it")
        if self.vpc_nat_gateways and not self.create_vpc:
            raise ValueError(
                "vpc_nat_gateways: the NAT gateways of the VPC create_vpc makes (an existing VPC routes as "
                "it does)"
            )
        if not self.vpc_endpoints and not self.in_vpc:
            raise ValueError("vpc_endpoints applies to a VPC (vpc_id or create_vpc)")
        if self.create_vpc and not (self.vpc_endpoints or self.vpc_nat_gateways):
            raise ValueError(
                "a created VPC without NAT gateways reaches Secrets Manager, S3 and DynamoDB only through "
                "endpoints: keep vpc_endpoints=true, or set vpc_nat_gateways"
            )
        return self

    @model_validator(mode="after")
    def _existing_needs_both(self) -> Config:
        if self.index_engine == "existing" and not (self.existing_endpoint and self.existing_arn):
            raise ValueError("index_engine=existing needs existing_endpoint and existing_arn")
        return self

    @property
    def admin_roles(self) -> list[str]:
        return _split(self.admin_role_arns)

    @property
    def in_vpc(self) -> bool:
        return self.create_vpc or bool(self.vpc_id)

    @property
    def subnet_ids(self) -> list[str]:
        return _split(self.vpc_subnet_ids)

    @property
    def security_group_ids(self) -> list[str]:
        return _split(self.vpc_security_group_ids)

    @property
    def existing_region(self) -> str | None:
        """The region `existing_arn` names: SigV4 signs for it, wherever the functions run."""
        return self.existing_arn.split(":")[3] if self.existing_arn else None

    @property
    def lambda_architecture(self) -> aws_lambda.Architecture:
        return (
            aws_lambda.Architecture.ARM_64 if self.architecture == "arm64" else aws_lambda.Architecture.X86_64
        )

    @property
    def removal(self) -> RemovalPolicy:
        return RemovalPolicy.DESTROY if self.removal_policy == "destroy" else RemovalPolicy.RETAIN


HEADING = "invalid CDK context (cdk.json or -c key=value):\n  "
# Keys spelt like ours: CDK's own all carry '@', ':' or '-' (@aws-cdk/... feature flags, aws:cdk:... from
# the CLI, vpc-provider:... lookups cached in cdk.context.json, acknowledged-issue-numbers).
OUR_SPELLING = re.compile(r"\w+", re.ASCII)


def ours(context: Mapping[str, Any]) -> list[str]:
    """The context keys this app would own: the others are CDK's, its CLI's or its lookups'."""
    return [key for key in context if OUR_SPELLING.fullmatch(key)]


def unknown_key(key: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"unknown context key {key}" + (f" (did you mean {close[0]}?)" if close else "")


def explain(error: ValidationError) -> list[str]:
    """One line per bad key: `key=value: what it accepts`."""
    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "configuration"
        message = problem["msg"].removeprefix("Value error, ")
        value = problem.get("input")
        shown = f"={value!r}" if problem["loc"] and not isinstance(value, dict) else ""
        lines.append(f"{key}{shown}: {message}")
    return lines


def _split(items: str) -> list[str]:
    return [item.strip() for item in items.split(",") if item.strip()]
