"""The Cloudinary-compatible REST API on Powertools' resolver: the one implementation the search
Lambda and the local server both run (the local server turns HTTP into API Gateway events). Built from
the route table (api/routes.py): each route's handler behind its auth kind's middleware (api/guards.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from visual_search import __version__
from visual_search.api import guards
from visual_search.api.asset_routes import AssetRoutes
from visual_search.api.concurrent_resolver import ConcurrentResolver
from visual_search.api.errors import RETRY_AFTER_S, error_body, status_for
from visual_search.api.http import Http
from visual_search.api.page_routes import PageRoutes
from visual_search.api.routes import DOCS, ROUTES, Route
from visual_search.api.search_routes import SearchRoutes
from visual_search.bootstrap import Services
from visual_search.errors import DependencyUnavailable, InvalidSignature, Unauthorized

log = logging.getLogger(__name__)
Handler = Callable[..., Response]


def build_resolver(services: Services) -> APIGatewayRestResolver:
    app = ConcurrentResolver(enable_validation=True)
    http = Http(app, services.settings, services.store.urls)
    handlers = {
        "search": SearchRoutes(http, services),
        "assets": AssetRoutes(http, services),
        "pages": PageRoutes(http),
    }
    router = Router()
    for route in ROUTES:
        if route.handler != DOCS:
            router.route(
                route.path,
                route.method,
                summary=route.summary,
                include_in_schema=route.include_in_schema,
                enable_validation=None if route.validate else False,
                middlewares=[guards.middleware(route.auth, http)],
            )(_handler(handlers, route))
    app.include_router(router)
    (docs,) = (route for route in ROUTES if route.handler == DOCS)
    app.enable_swagger(
        path=docs.path,
        title="Visual Search",
        version=__version__,
        middlewares=[guards.middleware(docs.auth, http)],
    )
    errors = ErrorResponses(http, [(r, r.pattern(), _handler(handlers, r)) for r in ROUTES if r.greedy])
    app.not_found(errors.not_found)
    app.exception_handler(RequestValidationError)(errors.invalid_request)
    app.exception_handler(Exception)(errors.domain_error)
    return app


def _handler(handlers: dict[str, object], route: Route) -> Handler:
    group, name = route.handler.split(".")
    return getattr(handlers[group], name)


class ErrorResponses:
    """What no handler answered: a greedy route's path, a route that does not exist, a request Powertools
    refused, or an error a handler raised (one table from error to status: api/errors.py)."""

    def __init__(self, http: Http, greedy: list[tuple[Route, re.Pattern[str], Handler]]):
        self.http, self._greedy = http, greedy

    def not_found(self, _exc: Exception) -> Response:
        try:
            found = self._greedy_route()
        except Exception as exc:  # not_found runs outside the resolver's exception handlers
            return self.domain_error(exc)
        return found if found is not None else self.http.respond(404, error_body("no such route"))

    def _greedy_route(self) -> Response | None:
        """The answer of the greedy route (Route.greedy) this path is, checked as the table says; None when
        it is none of them."""
        event = self.http.app.current_event
        for route, pattern, handler in self._greedy:
            match = pattern.match(event.path or "")
            if match is not None and event.http_method == route.method:
                guards.check(route.auth, self.http, match.groupdict())
                return handler(**match.groupdict())
        return None

    def invalid_request(self, _exc: RequestValidationError) -> Response:
        return self.http.respond(400, error_body("invalid request parameters"))

    def domain_error(self, exc: Exception) -> Response:
        status = status_for(exc)
        if status == 500:
            log.exception("unhandled error")
            return self.http.respond(
                500, error_body("internal error; the X-Request-Id identifies it in the logs")
            )
        extra = None
        # The Basic challenge only where Basic is accepted: not on the signed Upload API calls.
        if isinstance(exc, DependencyUnavailable):
            extra = {"Retry-After": str(RETRY_AFTER_S)}
        elif (
            isinstance(exc, Unauthorized)
            and not isinstance(exc, InvalidSignature)
            and not self.http.from_script()
        ):
            extra = {"WWW-Authenticate": 'Basic realm="visual-search"'}
        return self.http.respond(status, error_body(str(exc)), extra)
