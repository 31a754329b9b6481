"""Deployment configuration from CDK context (`cdk.json` defaults, `-c key=value` overrides), typed."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Literal

from aws_cdk import RemovalPolicy, aws_lambda


@dataclass(frozen=True)
class Config:
    name: str = "visual-search"
    index_engine: Literal["managed", "serverless", "existing"] = "managed"
    existing_endpoint: str = ""  # with index_engine=existing
    existing_arn: str = (
        ""  # the domain's (arn:…:es:…:domain/…) or the collection's (arn:…:aoss:…:collection/…)
    )
    instance_type: str = "r7g.large.search"
    instance_count: int = 2
    volume_gb: int = 20
    serverless_standby: bool = True  # standby replicas in a second AZ (false halves the idle OCUs: dev only)
    architecture: Literal["arm64", "x86_64"] = "arm64"
    search_memory_mb: int = 2048
    ingest_memory_mb: int = 2048
    ingest_batch_size: int = 10
    ingest_max_concurrency: int = 20
    layers_dir: str = "layers/build"
    # Comma-separated IAM role ARNs that may also read and write the index (backfill, re-index after a
    # model change, the OpenSearch smoke test): the engine's own access policy names them beside the roles.
    admin_role_arns: str = ""
    auth: Literal["secret", "iam"] = "secret"
    removal_policy: Literal["retain", "destroy"] = "retain"
    bucket_versioning: bool = True
    ingest_prefix: str = ""
    ingest_opt_in: bool = False
    throttle_rate: int = 50
    throttle_burst: int = 100

    @classmethod
    def from_context(cls, get: Any) -> Config:
        values = {}
        for f in fields(cls):
            raw = get(f.name)
            if raw is None:
                continue
            if f.type in ("int",):
                raw = int(raw)
            elif f.type in ("bool",):
                raw = raw if isinstance(raw, bool) else str(raw).lower() == "true"
            values[f.name] = raw
        return cls(**values)

    def __post_init__(self) -> None:
        # The name becomes the Serverless collection's and its policies' names ("<name>-data": at most
        # 32 characters) and the OpenSearch alias: lowercase letters, digits and hyphens.
        if not re.fullmatch(r"[a-z][a-z0-9-]{2,26}", self.name):
            raise ValueError(
                f"name {self.name!r}: 3 to 27 characters, lowercase letters, digits and '-', "
                "starting with a letter (it names the index, the collection and its policies)"
            )

    @property
    def admin_roles(self) -> list[str]:
        return [arn.strip() for arn in self.admin_role_arns.split(",") if arn.strip()]

    @property
    def lambda_architecture(self) -> aws_lambda.Architecture:
        return (
            aws_lambda.Architecture.ARM_64 if self.architecture == "arm64" else aws_lambda.Architecture.X86_64
        )

    @property
    def removal(self) -> RemovalPolicy:
        return RemovalPolicy.DESTROY if self.removal_policy == "destroy" else RemovalPolicy.RETAIN
