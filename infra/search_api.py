"""The Cloudinary-compatible API: a REST API in front of the search function, throttled, logged, binary
bodies allowed for multipart uploads, and every response API Gateway makes itself rewritten into
Cloudinary's error shape (SDKs read any other body as success). Its methods follow the route table
(src/visual_search/api/routes.py): a route that is not behind the API's credentials (the search page's
static files, and Cloudinary's Upload API, signed in the body, which only the function can verify) gets a
method without an authorizer; every other path reaches the function through a `{proxy+}` behind the
Lambda authorizer (or IAM)."""

from __future__ import annotations

from aws_cdk import Duration, aws_apigateway, aws_lambda, aws_logs
from constructs import Construct

from infra.config import Config
from visual_search.api.routes import ROUTES, Auth, Route

STAGE = "v1"
ERROR_TEMPLATE = '{"error": {"message": $context.error.messageString}}'
# A request reaches the function only up to Lambda's 6 MB payload, base64 included: upload_large parts
# must be smaller than the SDKs' default 20 MB (docs/api.md: chunk_size 4 MB behind API Gateway).
MAX_PART_MESSAGE = (
    "request too large: behind API Gateway a request carries at most 6 MB; "
    "send upload_large in parts of 4 MB (chunk_size=4000000)"
)
TOO_LARGE_TEMPLATE = '{"error": {"message": "' + MAX_PART_MESSAGE + '"}}'
# API Gateway allows no path variable beside a {proxy+}: these parameters are spelled out, one resource
# per value. Cloudinary's resource types: the function answers raw and video with a clear 400 (only images
# are indexed), where behind the authorizer they would get a bare 401.
SPELLED_OUT = {"resource_type": ("image", "auto", "raw", "video")}
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
        _add_routes(self.api.root, integration, guarded)
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


def _add_routes(
    root: aws_apigateway.IResource,
    integration: aws_apigateway.Integration,
    guarded: aws_apigateway.MethodOptions,
) -> None:
    """A method without an authorizer for every route the table does not put behind the API's credentials
    (signed in the body, which a REQUEST authorizer never sees, or public), and a guarded `{proxy+}` for
    every other path: under the root, and under each resource those routes pass through where API Gateway
    allows one, so a path that leaves them there is guarded whether or not API Gateway falls back to a
    parent's proxy (it does not say). tests/infra/test_stack.py checks every route of the table against it."""
    resources: dict[str, aws_apigateway.IResource] = {"/": root}
    public = aws_apigateway.AuthorizationType.NONE
    for route in ROUTES:
        if route.auth is not Auth.CREDENTIALS:
            for path in gateway_paths(route):
                _resource(resources, path).add_method(route.method, integration, authorization_type=public)
    for path, resource in resources.items():
        children = [p for p in resources if p != path and _parent(p) == path]
        if children and not any(_is_variable(p) for p in children):
            resource.add_proxy(
                default_integration=integration, any_method=True, default_method_options=guarded
            )


def gateway_paths(route: Route) -> list[str]:
    """The route's API Gateway resource paths: `<name>` as `{name}` (`{name+}` for a greedy route's last),
    and a parameter of SPELLED_OUT as each of its values.

    >>> gateway_paths(Route("POST", "/v1_1/<cloud_name>/<resource_type>/tags", Auth.SIGNED, "a.tags"))[:2]
    ['/v1_1/{cloud_name}/image/tags', '/v1_1/{cloud_name}/auto/tags']
    """
    paths = [""]
    segments = [s for s in route.path.split("/") if s]
    for i, segment in enumerate(segments):
        name = segment[1:-1] if segment.startswith("<") else None
        if name is None:
            options: tuple[str, ...] = (segment,)
        elif name in SPELLED_OUT:
            options = SPELLED_OUT[name]
        else:
            options = ("{" + name + ("+" if route.greedy and i == len(segments) - 1 else "") + "}",)
        paths = [f"{path}/{option}" for path in paths for option in options]
    return [path or "/" for path in paths]


def _resource(resources: dict[str, aws_apigateway.IResource], path: str) -> aws_apigateway.IResource:
    """The resource at `path`, made (with its parents) if need be."""
    if path not in resources:
        parent, part = _parent(path), path.rsplit("/", 1)[1]
        if _is_variable(path) and any(_is_variable(p) and _parent(p) == parent for p in resources):
            raise ValueError(f"{path}: API Gateway allows one path variable per level")
        resources[path] = _resource(resources, parent).add_resource(part)
    return resources[path]


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _is_variable(path: str) -> bool:
    return path.rsplit("/", 1)[1].startswith("{")
