"""The one way a function is declared: handler folder, settings (names checked against the runtime
settings model, so code and infrastructure cannot drift), layers, and its own list of grants."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, Stack, aws_iam, aws_kms, aws_lambda, aws_logs
from constructs import Construct
from pydantic_settings import BaseSettings

from infra.config import Config
from infra.layers import RUNTIME
from infra.network import Network
from visual_search.settings import ENV_PREFIX

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
Grant = Callable[[aws_iam.IGrantable], object]


def environment_for(model: type[BaseSettings], settings: Mapping[str, str]) -> dict[str, str]:
    unknown = set(settings) - set(model.model_fields)
    if unknown:
        raise ValueError(
            f"{model.__name__} has no field(s) {sorted(unknown)}: the function could not read them"
        )
    return {f"{ENV_PREFIX}{name.upper()}": value for name, value in settings.items()}


class ServiceFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        handler: str,
        settings_model: type[BaseSettings],
        settings: Mapping[str, str],
        layers: Sequence[aws_lambda.ILayerVersion],
        grants: Sequence[Grant] = (),
        memory_mb: int = 1024,
        timeout_s: int = 30,
        extra_environment: Mapping[str, str] | None = None,
        network: Network | None = None,
        key: aws_kms.IKey | None = None,
    ):
        super().__init__(scope, construct_id)
        self.timeout = Duration.seconds(timeout_s)
        self.log_group = aws_logs.LogGroup(
            self, "Logs", retention=aws_logs.RetentionDays.ONE_MONTH, removal_policy=config.removal
        )
        self.function = aws_lambda.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=config.lambda_architecture,
            handler="handler.handler",
            code=aws_lambda.Code.from_asset(str(FUNCTIONS / handler)),
            layers=list(layers),
            memory_size=memory_mb,
            timeout=self.timeout,
            tracing=aws_lambda.Tracing.ACTIVE,
            environment_encryption=key,  # names and ARNs only, no secret: the team's key if it has one
            log_group=self.log_group,
            # In the VPC, when there is one: its subnets, the stack's own group (which the index admits)
            # and any the team adds.
            vpc=network.vpc if network else None,
            vpc_subnets=network.function_selection if network else None,
            security_groups=network.function_groups if network else None,
            environment={
                # Its stack names every custom metric it emits, which the stack's alarms select.
                **environment_for(settings_model, {**settings, "stack_name": Stack.of(self).stack_name}),
                "POWERTOOLS_SERVICE_NAME": f"{config.name}-{handler}",
                "POWERTOOLS_METRICS_NAMESPACE": "VisualSearch",
                **(extra_environment or {}),
            },
        )
        role = self.function.role
        assert role is not None  # a Function always makes its own when none is given
        self.role: aws_iam.IRole = role
        for grant in grants:
            grant(self.function)
        if key is not None:
            # Lambda decrypts the environment as the function's role, and Secrets Manager the credentials
            # as their caller: CDK's secret grant gives an imported key nothing (its policy is the team's).
            key.grant_decrypt(self.function)
