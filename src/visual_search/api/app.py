"""The Cloudinary-compatible REST API on Powertools' resolver: the one implementation the search
Lambda and the local server both run (the local server turns HTTP into API Gateway events)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query

from visual_search import __version__, web
from visual_search.api import params
from visual_search.api.asset_routes import AssetRoutes
from visual_search.api.auth import authenticate as check_credentials
from visual_search.api.concurrent_resolver import ConcurrentResolver
from visual_search.api.errors import RETRY_AFTER_S, error_body, status_for
from visual_search.api.rate_limit import rate_limit_headers
from visual_search.api.responses import json_text, resource, search_response
from visual_search.api.search_params import SearchParams
from visual_search.bootstrap import Services
from visual_search.errors import BadInput, DependencyUnavailable, InvalidSignature, NotFound, Unauthorized
from visual_search.search.duplicates import groups

log = logging.getLogger(__name__)
JSON = "application/json"
SEARCH_PATH = "/v1_1/<cloud_name>/resources/visual_search"
REPORT_MAX_ASSETS = 10_000
# One page of the collection duplicates report: as many assets as fit in this time (one k-NN query each),
# well inside the search function's 28 s; the rest is reached with next_cursor.
REPORT_PAGE_BUDGET_S = 10.0
REPORT_PAGE_MAX_ASSETS = 2_000
PAGE = "ui/index.html"
NOT_PARSED = SearchParams()  # the GET search's `query`: see Routes.search_get


class Routes:
    """Route handlers. Each: authenticate, parse, one core call, Cloudinary-shaped response.
    Handlers carry no return annotation: with validation on, Powertools would try to build a
    response schema from `Response`."""

    def __init__(self, app: APIGatewayRestResolver, services: Services):
        self.app, self.services, self.settings = app, services, services.settings
        self.assets = AssetRoutes(self)

    # -- helpers
    def respond(self, status: int, body: str, extra: dict[str, str] | None = None) -> Response:
        context = self.app.current_event.get("requestContext") or {}
        headers = {
            "X-Request-Id": context.get("requestId") or uuid.uuid4().hex,
            **rate_limit_headers(self.settings.rate_limit_per_hour),
            **(extra or {}),
        }
        return Response(status_code=status, content_type=JSON, body=body, headers=headers)

    def authenticate(self, cloud_name: str | None = None) -> None:
        event = self.app.current_event
        check_credentials(
            self.settings.api_auth,
            event.headers or {},
            event.get("requestContext"),
            self.settings.api_key,
            self.settings.api_secret_text,
        )
        if cloud_name is not None:
            self.check_cloud(cloud_name)

    def urls(self) -> Callable[[str], str]:
        """This request's file URLs (key -> signed URL), with the base read from the event once: a page
        of 50 results holds 100 URLs."""
        return self.services.store.urls(self._url_base())

    def _url_base(self) -> str:
        if self.settings.public_base_url is not None:
            return self.settings.public_base_url
        # The local server validates Host and sets X-Forwarded-Proto from its own socket, as API Gateway
        # does in front of the Lambda.
        headers = self.app.current_event.headers  # Powertools': case-insensitive
        host = headers.get("host", "127.0.0.1")
        scheme = "https" if headers.get("x-forwarded-proto") == "https" else "http"
        return f"{scheme}://{host}"

    def from_script(self) -> bool:
        """A page's script (it says so, as XMLHttpRequest libraries do): a 401 then must not carry
        WWW-Authenticate, or the browser would open its own credentials prompt over the page."""
        return "x-requested-with" in self.app.current_event.headers  # case-insensitive (Powertools')

    def check_cloud(self, cloud_name: str) -> None:
        if cloud_name != self.settings.cloud_name:
            raise NotFound(f"unknown cloud_name {cloud_name[:64]!r}")

    def request_params(self) -> dict[str, str | bytes]:
        event = self.app.current_event
        query = event.resolved_query_string_parameters or {}
        body = params.raw_body(event.raw_event)
        return params.collect_params(query, event.headers or {}, body, self.settings.max_image_bytes)

    # -- routes
    def visual_search(self, cloud_name: str):
        self.authenticate(cloud_name)
        query = params.to_search_query(
            self.request_params(), self.settings.default_max_results, self.settings.max_image_bytes
        )
        page = self.services.search.search(query)
        return self.respond(200, json_text(search_response(page, self.urls())))

    def search_get(self, cloud_name: str, query: Annotated[SearchParams, Query()] = NOT_PARSED):
        """The parameters are declared by SearchParams (for the OpenAPI document) and validated with it
        once, on every route and transport alike (`search_params.read`, over `request_params`). The
        route is registered without Powertools' validation, so `query` is always its default: Powertools
        would validate the query string alone, a second time, with its own generic 400."""
        return self.visual_search(cloud_name)

    def get_resource(self, cloud_name: str, asset_id: str):
        self.authenticate(cloud_name)
        document = self.services.listing.by_asset_id(asset_id)
        return self.respond(200, json_text(resource(document, self.urls())))

    def duplicates(self, cloud_name: str, asset_id: str):
        """Extension (not in Cloudinary's API): the tiered duplicates of one asset."""
        self.authenticate(cloud_name)
        fields = self.request_params()
        threshold = params.number(fields, "threshold", None, 0.0, 1.0)
        found = self.services.duplicates.of_asset(asset_id, threshold)
        urls = self.urls()
        body = {
            "asset_id": asset_id,
            "duplicates": [
                {
                    **resource(d.document, urls),
                    "score": round(max(0.0, d.score), 6),
                    "tier": d.tier,
                }
                for d in found
            ],
        }
        return self.respond(200, json_text(body))

    def duplicates_report(self, cloud_name: str):
        """Extension: duplicate groups over the whole collection, per tier. One k-NN query per asset, so
        it pages by time: a report that does not finish inside REPORT_PAGE_BUDGET_S answers the links
        (`pairs`) it found and a `next_cursor` to continue from; the caller merges the pairs of every
        page into groups. A report that finishes in one answer also carries `groups`. Collections over
        REPORT_MAX_ASSETS are for `visual-search duplicates`, which streams."""
        self.authenticate(cloud_name)
        request = self.request_params()
        threshold = params.number(request, "threshold", None, 0.0, 1.0)
        offset = _report_offset(request.get("next_cursor"))
        ids = self.services.collection_ids(limit=REPORT_MAX_ASSETS + 1)
        if len(ids) > REPORT_MAX_ASSETS:
            raise BadInput(
                f"the collection has over {REPORT_MAX_ASSETS:,} images: use `visual-search duplicates`"
            )
        page = ids[offset : offset + REPORT_PAGE_MAX_ASSETS]
        links, done = self.services.duplicates.report_page(page, threshold, REPORT_PAGE_BUDGET_S)
        more = offset + done < len(ids)
        body: dict[str, object] = {
            "assets": len(ids),
            "assets_in_page": done,
            "pairs": [{"tier": k.tier, "asset_ids": [k.first, k.second], "score": k.score} for k in links],
            "next_cursor": str(offset + done) if more else None,
        }
        if offset == 0 and not more:
            body["groups"] = [{"tier": g.tier, "asset_ids": list(g.asset_ids)} for g in groups(links)]
        return self.respond(200, json_text(body))

    def page_file(self, name: str):
        """The search page's static files: public (they hold no data; every call they make is
        authenticated), same origin as the API, locked down by a strict Content-Security-Policy."""
        found = web.read(name)
        if found is None:
            raise NotFound(f"no page file {name!r}")
        content_type, text = found
        headers = {
            "Content-Security-Policy": web.CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }
        return Response(status_code=200, content_type=content_type, body=text, headers=headers)

    def page_redirect(self):
        # Relative, so it also works under an API Gateway stage (/v1/ -> /v1/ui/index.html).
        path = self.app.current_event.path
        target = "index.html" if path.rstrip("/").endswith("/ui") and path.endswith("/") else PAGE
        return Response(status_code=302, content_type="text/plain", body="", headers={"Location": target})

    def health(self):
        self.authenticate()
        search = self.services.search
        body = {"status": "ok", "model_id": search.model_id, "assets": search.indexed()}
        return self.respond(200, json_text(body))

    # -- errors
    def not_found(self, _exc: Exception) -> Response:
        try:
            found = self.assets.fallback()
        except Exception as exc:  # not_found runs outside the resolver's exception handlers
            return self.domain_error(exc)
        return found if found is not None else self.respond(404, error_body("no such route"))

    def invalid_request(self, _exc: RequestValidationError) -> Response:
        return self.respond(400, error_body("invalid request parameters"))

    def domain_error(self, exc: Exception) -> Response:
        status = status_for(exc)
        if status == 500:
            log.exception("unhandled error")
            return self.respond(500, error_body("internal error; the X-Request-Id identifies it in the logs"))
        extra = None
        # The Basic challenge only where Basic is accepted: not on the signed Upload API calls.
        if isinstance(exc, DependencyUnavailable):
            extra = {"Retry-After": str(RETRY_AFTER_S)}
        elif (
            isinstance(exc, Unauthorized) and not isinstance(exc, InvalidSignature) and not self.from_script()
        ):
            extra = {"WWW-Authenticate": 'Basic realm="visual-search"'}
        return self.respond(status, error_body(str(exc)), extra)


def _require_auth(routes: Routes):
    def middleware(app: APIGatewayRestResolver, next_middleware):
        routes.authenticate()
        return next_middleware(app)

    return middleware


def _asset_routes(app: APIGatewayRestResolver, assets: AssetRoutes) -> None:
    """Cloudinary's asset calls. Registered before `resources/<asset_id>`: the first route that matches
    wins, and `resources/image` must never be taken for an asset id."""
    cloud = "/v1_1/<cloud_name>"
    app.post(cloud + "/<resource_type>/upload", summary="Upload an image, whole or in parts (signed)")(
        assets.upload
    )
    app.post(cloud + "/<resource_type>/destroy", summary="Delete one image by public_id (signed)")(
        assets.destroy
    )
    app.post(cloud + "/<resource_type>/rename", summary="Rename an image, keeping its asset_id (signed)")(
        assets.rename
    )
    app.post(cloud + "/<resource_type>/tags", summary="Add, remove or replace a tag on images (signed)")(
        assets.tags
    )
    app.post(cloud + "/<resource_type>/context", summary="Add or remove context on images (signed)")(
        assets.context
    )
    app.post(cloud + "/<resource_type>/explicit", summary="Set an image's tags and context (signed)")(
        assets.explicit
    )
    app.get(cloud + "/ping", summary="Reachability and credentials")(assets.ping)
    app.get(cloud + "/resources/image", summary="List images by public_id prefix")(assets.resources)
    # Before `resources/image/<upload_type>`, which would take "context" for a delivery type.
    app.get(cloud + "/resources/image/context", summary="List images with a context key (and value)")(
        assets.resources_by_context
    )
    app.get(cloud + "/resources/image/<upload_type>", summary="List images of a delivery type")(
        assets.resources_typed
    )
    app.get(cloud + "/resources/image/tags/<tag>", summary="List images with a tag")(assets.resources_by_tag)
    app.get(cloud + "/resources/by_asset_ids", summary="Images by asset_id")(assets.resources_by_asset_ids)
    app.get(cloud + "/resources/image/upload/<public_id>", summary="One image by public_id")(
        assets.resource_by_public_id
    )
    app.post(cloud + "/resources/image/upload/<public_id>", summary="Update an image's tags and context")(
        assets.update
    )
    app.delete(cloud + "/resources/image/upload", summary="Delete images by public_ids or prefix")(
        assets.delete_resources
    )
    app.delete(cloud + "/resources/image/tags/<tag>", summary="Delete images with a tag")(
        assets.delete_by_tag
    )


def build_resolver(services: Services) -> APIGatewayRestResolver:
    app = ConcurrentResolver(enable_validation=True)
    routes = Routes(app, services)
    app.get(SEARCH_PATH, summary="Find images by what they show", enable_validation=False)(routes.search_get)
    app.post(SEARCH_PATH, summary="Visual search with a form, multipart (image_file) or JSON body")(
        routes.visual_search
    )
    # The Java SDK's path for the same search.
    app.get(SEARCH_PATH + "/image", include_in_schema=False)(routes.visual_search)
    app.post(SEARCH_PATH + "/image", include_in_schema=False)(routes.visual_search)
    _asset_routes(app, routes.assets)
    app.get("/v1_1/<cloud_name>/resources/<asset_id>", summary="One indexed image by asset_id")(
        routes.get_resource
    )
    app.get("/v1_1/<cloud_name>/resources/<asset_id>/duplicates", summary="Tiered duplicates of one asset")(
        routes.duplicates
    )
    app.get("/v1_1/<cloud_name>/duplicates", summary="Duplicate groups over the collection")(
        routes.duplicates_report
    )
    app.get("/health", summary="Liveness and index size")(routes.health)
    app.get("/", include_in_schema=False)(routes.page_redirect)
    app.get("/ui", include_in_schema=False)(routes.page_redirect)
    app.get("/ui/<name>", include_in_schema=False)(routes.page_file)
    # The OpenAPI document (/docs?format=json) and its page; behind the same auth as every route.
    app.enable_swagger(
        path="/docs", title="Visual Search", version=__version__, middlewares=[_require_auth(routes)]
    )
    app.not_found(routes.not_found)
    app.exception_handler(RequestValidationError)(routes.invalid_request)
    app.exception_handler(Exception)(routes.domain_error)
    return app


def _report_offset(cursor: str | bytes | None) -> int:
    """The duplicates report's next_cursor: how many assets earlier pages walked."""
    if cursor is None or cursor == "":
        return 0
    text = cursor.decode() if isinstance(cursor, bytes) else cursor
    if not text.isdigit() or len(text) > 6:
        raise BadInput("next_cursor is not one this report returned")
    return int(text)
