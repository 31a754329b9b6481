"""Search API Lambda: API Gateway proxy event -> the shared resolver -> response. Services are built on
the first invocation and kept for the life of the execution environment."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from visual_search.api.app import build_resolver
from visual_search.bootstrap import build_services
from visual_search.deadline import lambda_budget, within
from visual_search.settings import service_settings

logger = Logger(service="visual-search-api")
# The core logs through the standard library; give its records the same structured JSON output.
copy_config_to_registered_loggers(source_logger=logger, include={"visual_search"})
_resolver: APIGatewayRestResolver | None = None


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _resolver
    settings = service_settings()
    if _resolver is None:
        _resolver = build_resolver(build_services(settings))
    # Every stage that waits shares what is left of this invocation: a slow one answers 429, not a 502.
    with within(lambda_budget(context, reserve_s=settings.opensearch_timeout_s + 1)):
        return _resolver.resolve(event, context)
