"""Each route's auth, as the route table declares it (api/routes.py), run before its handler: a handler
never checks its caller, and no route is served without the check its auth kind names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, assert_never

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from visual_search.api.http import Http
from visual_search.api.routes import Auth

Middleware = Callable[[APIGatewayRestResolver, Callable[..., Any]], Response]


def check(auth: Auth, http: Http, arguments: Mapping[str, str]) -> None:
    """Raise Unauthorized (InvalidSignature for a signed call) unless the caller may call a route of this
    auth kind; then NotFound for another cloud_name than ours."""
    match auth:
        case Auth.CREDENTIALS:
            http.check_credentials()
        case Auth.SIGNED:
            http.check_signature()
        case Auth.PUBLIC:
            pass
        case _:
            assert_never(auth)
    if "cloud_name" in arguments:  # after the caller: a stranger learns nothing, not even the name
        http.check_cloud(arguments["cloud_name"])


def middleware(auth: Auth, http: Http) -> Middleware:
    """`check` as a Powertools route middleware, over the route's path parameters."""

    def guard(app: APIGatewayRestResolver, next_middleware: Callable[..., Any]) -> Response:
        # Powertools keeps the matched route's parameters there for its own middlewares (not public API;
        # tests/functional/test_route_table.py fails if a release moves them).
        check(auth, http, app.context["_route_args"])
        return next_middleware(app)

    guard.__name__ = f"{auth.value}_guard"  # as Powertools' debug output lists a route's middlewares
    return guard
