"""The Lambda authorizer API Gateway asks before every guarded route (auth=secret): it checks the
request's Basic api_key:api_secret against the API secret, which is all it may read."""

from __future__ import annotations

from aws_cdk import aws_kms
from constructs import Construct

from infra.api_credentials import ApiCredentials
from infra.config import Config
from infra.function import ServiceFunction
from infra.layers import Layers
from infra.network import Network
from visual_search.settings import ServiceSettings


class Authorizer(ServiceFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        layers: Layers,
        credentials: ApiCredentials,
        network: Network | None = None,
        key: aws_kms.IKey | None = None,
    ):
        super().__init__(
            scope,
            construct_id,
            config=config,
            handler="authorizer",
            settings_model=ServiceSettings,
            settings={"credentials_secret_arn": credentials.secret_arn, "cloud_name": config.cloud_name},
            layers=layers.of("authorizer"),
            memory_mb=256,
            timeout_s=5,
            network=network,
            key=key,
            grants=[credentials.grant_read],
        )
