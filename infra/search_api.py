"""The Cloudinary-compatible API: a REST API in front of the search function, every route behind the
Lambda authorizer (or IAM), throttled, logged, binary bodies allowed for multipart uploads, and every
response API Gateway makes itself rewritten into Cloudinary's error shape (SDKs read any other body as
success). Without an API Gateway authorizer: the search page's static files (no data, no secret) and
Cloudinary's Upload API (upload, upload_large's parts, destroy, rename), signed in the body, which the
function verifies. The Admin API (ping, resources..., delete_resources...) stays behind the authorizer:
Basic auth."""

from __future__ import annotations

from aws_cdk import Duration, aws_apigateway, aws_lambda, aws_logs
from constructs import Construct

from infra.config import Config

STAGE = "v1"
ERROR_TEMPLATE = '{"error": {"message": $context.error.messageString}}'
# A request reaches the function only up to Lambda's 6 MB payload, base64 included: upload_large parts
# must be smaller than the SDKs' default 20 MB (docs/api.md: chunk_size 4 MB behind API Gateway).
MAX_PART_MESSAGE = (
    "request too large: behind API Gateway a request carries at most 6 MB; "
    "send upload_large in parts of 4 MB (chunk_size=4000000)"
)
TOO_LARGE_TEMPLATE = '{"error": {"message": "' + MAX_PART_MESSAGE + '"}}'
# Cloudinary's Upload API: its routes per resource type (the function answers raw and video with a clear
# 400: only images are indexed; behind the authorizer they would be a bare 401).
SIGNED_RESOURCE_TYPES = ("image", "auto", "raw", "video")
SIGNED_ACTIONS = ("upload", "destroy", "rename")
RESPONSE_TYPES = [
    aws_apigateway.ResponseType.DEFAULT_4_XX,
    aws_apigateway.ResponseType.DEFAULT_5_XX,
    aws_apigateway.ResponseType.UNAUTHORIZED,
    aws_apigateway.ResponseType.ACCESS_DENIED,
    aws_apigateway.ResponseType.THROTTLED,
    aws_apigateway.ResponseType.QUOTA_EXCEEDED,
    aws_apigateway.ResponseType.REQUEST_TOO_LARGE,
    aws_apigateway.ResponseType.INTEGRATION_TIMEOUT,
    aws_apigateway.ResponseType.INTEGRATION_FAILURE,
    aws_apigateway.ResponseType.MISSING_AUTHENTICATION_TOKEN,
    aws_apigateway.ResponseType.RESOURCE_NOT_FOUND,
    aws_apigateway.ResponseType.AUTHORIZER_FAILURE,
    aws_apigateway.ResponseType.AUTHORIZER_CONFIGURATION_ERROR,
    aws_apigateway.ResponseType.BAD_REQUEST_BODY,
    aws_apigateway.ResponseType.BAD_REQUEST_PARAMETERS,
    aws_apigateway.ResponseType.UNSUPPORTED_MEDIA_TYPE,
    aws_apigateway.ResponseType.WAF_FILTERED,
]


class SearchApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        search: aws_lambda.IFunction,
        authorizer: aws_lambda.IFunction | None,
    ):
        super().__init__(scope, construct_id)
        access_logs = aws_logs.LogGroup(
            self, "AccessLogs", retention=aws_logs.RetentionDays.ONE_MONTH, removal_policy=config.removal
        )
        self.api = aws_apigateway.RestApi(
            self,
            "Api",
            rest_api_name=config.name,
            endpoint_types=[aws_apigateway.EndpointType.REGIONAL],
            binary_media_types=["multipart/form-data", "image/*", "application/octet-stream"],
            min_compression_size=None,
            cloud_watch_role=True,
            deploy_options=aws_apigateway.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=config.throttle_rate,
                throttling_burst_limit=config.throttle_burst,
                access_log_destination=aws_apigateway.LogGroupLogDestination(access_logs),
                access_log_format=aws_apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True,
                ),
                logging_level=aws_apigateway.MethodLoggingLevel.ERROR,
                tracing_enabled=True,
                metrics_enabled=True,
            ),
        )  # fmt: skip
        # API Gateway creates the execution log group on first use, with no expiry: created here first.
        execution_logs = aws_logs.LogGroup(
            self,
            "ExecutionLogs",
            log_group_name=f"API-Gateway-Execution-Logs_{self.api.rest_api_id}/{STAGE}",
            retention=aws_logs.RetentionDays.ONE_MONTH,
            removal_policy=config.removal,
        )
        self.api.deployment_stage.node.add_dependency(execution_logs)
        integration = aws_apigateway.LambdaIntegration(search, timeout=Duration.seconds(29))
        if authorizer is not None:
            guard = aws_apigateway.RequestAuthorizer(
                self,
                "Authorizer",
                handler=authorizer,
                identity_sources=[aws_apigateway.IdentitySource.header("Authorization")],
                results_cache_ttl=Duration.minutes(5),
            )
            guarded = aws_apigateway.MethodOptions(
                authorizer=guard, authorization_type=aws_apigateway.AuthorizationType.CUSTOM
            )
        else:
            guarded = aws_apigateway.MethodOptions(authorization_type=aws_apigateway.AuthorizationType.IAM)
        # The root's ANY first: a proxy under the root otherwise mirrors its ANY onto the root as an
        # unauthenticated MOCK method.
        self.api.root.add_method(
            "ANY", integration, authorizer=guarded.authorizer, authorization_type=guarded.authorization_type
        )
        public = aws_apigateway.AuthorizationType.NONE
        self.api.root.add_method("GET", integration, authorization_type=public)  # redirects to the page
        self.api.root.add_proxy(
            default_integration=integration, any_method=True, default_method_options=guarded
        )
        # Cloudinary's Upload API authenticates by a signature in the (multipart) body, which a REQUEST
        # authorizer never sees: those routes reach the function, which verifies the signature. Literal
        # paths, since API Gateway allows no variable beside the {proxy+}.
        cloud = self.api.root.add_resource("v1_1").add_resource("{cloud_name}")
        cloud.add_proxy(default_integration=integration, any_method=True, default_method_options=guarded)
        for resource_type in SIGNED_RESOURCE_TYPES:
            typed = cloud.add_resource(resource_type)
            for action in SIGNED_ACTIONS:
                typed.add_resource(action).add_method("POST", integration, authorization_type=public)
        page = self.api.root.add_resource("ui")
        page.add_method("GET", integration, authorization_type=public)
        page.add_resource("{name}").add_method("GET", integration, authorization_type=public)
        for response_type in RESPONSE_TYPES:
            self.api.add_gateway_response(
                response_type.response_type,
                type=response_type,
                templates={
                    "application/json": TOO_LARGE_TEMPLATE
                    if response_type.response_type == "REQUEST_TOO_LARGE"  # jsii objects compare by identity
                    else ERROR_TEMPLATE
                },
                response_headers={"Content-Type": "'application/json'"},
            )
