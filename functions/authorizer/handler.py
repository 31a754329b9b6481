"""API Gateway REQUEST authorizer: HTTP Basic api_key:api_secret (Cloudinary style) checked in constant
time against the Secrets Manager secret, so every route is covered before the search function runs.
The policy allows or denies all routes, since API Gateway caches it per Authorization header."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from visual_search.api.auth import check_basic_auth
from visual_search.errors import Unauthorized
from visual_search.settings import service_settings, with_aws_secrets

logger = Logger(service="visual-search-authorizer")


@logger.inject_lambda_context
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: Any) -> dict[str, Any]:
    arn = event.parsed_arn
    # Validated once per process; the secret itself is cached by Powertools for five minutes.
    settings = with_aws_secrets(service_settings())
    policy = APIGatewayAuthorizerResponse(
        principal_id=settings.api_key,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        partition=arn.partition,  # aws-cn, aws-us-gov: a policy naming another partition denies all
    )
    try:
        check_basic_auth(event.headers or {}, settings.api_key, settings.api_secret_text)
    except Unauthorized as exc:
        logger.info("refused", extra={"reason": str(exc)})  # never the header or the secret
        policy.deny_all_routes()
        return policy.asdict()
    policy.allow_all_routes()
    return policy.asdict()
