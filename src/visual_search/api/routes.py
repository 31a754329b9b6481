"""Every route of the API, declared once: method, path, handler and who may call it. The resolver is built
from this table (`api/app.py`: each handler behind its auth kind's middleware) and so are API Gateway's
methods (`infra/search_api.py`: a route not behind the API's credentials gets a method without an
authorizer, every other path falls to the guarded `{proxy+}`). Imports nothing but the standard library,
so the CDK app reads it without the function's dependencies.

Order matters: the resolver tries the routes without a parameter first, then the others in this order, and
takes the first that matches; so a literal path is declared before the parameter it would otherwise be taken
for (`resources/image` before `resources/<asset_id>`, `resources/image/context` before
`resources/image/<upload_type>`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Auth(Enum):
    """Who may call a route; every route names one."""

    CREDENTIALS = "credentials"
    """The API's credentials: HTTP Basic api_key:api_secret, or a SigV4 signature where deployed with
    auth=iam (`settings.api_auth`). API Gateway's authorizer (or IAM) checks them, and the function again."""
    SIGNED = "signed"
    """Cloudinary's Upload API: a signature over the body's parameters, which only the function sees, so
    only the function checks it (`upload_signature.verify_upload`). No API Gateway authorizer."""
    PUBLIC = "public"
    """Anyone: the search page's static files, which hold no data and no secret."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # Powertools' rule: `<name>` is a path parameter
    auth: Auth
    handler: str  # "group.method": a method of one of the handler objects `build_resolver` makes
    summary: str | None = None  # the OpenAPI document's
    include_in_schema: bool = True
    validate: bool = True  # Powertools' OpenAPI validation of the request
    # The last parameter takes the rest of the path, slashes included (a public_id). Powertools' parameters
    # hold no slash, so the resolver's not-found handler matches such a path against these routes.
    greedy: bool = False

    def pattern(self) -> re.Pattern[str]:
        """The path as a regex over a request's path: a parameter takes one segment, as in Powertools,
        and a greedy route's last one the rest of the path.

        >>> Route("GET", "/a/<x>/<y>", Auth.PUBLIC, "g.h", greedy=True).pattern().match("/a/1/2/3")["y"]
        '2/3'
        """
        names = re.findall(r"<(\w+)>", self.path)
        groups = [f"(?P<{name}>[^/]+)" for name in names]
        if self.greedy:
            groups[-1] = f"(?P<{names[-1]}>.+)"
        literals = re.split(r"<\w+>", self.path)
        return re.compile(
            "^" + "".join(re.escape(a) + b for a, b in zip(literals, [*groups, ""], strict=True)) + "$"
        )


DOCS = "docs"  # the OpenAPI page's handler, which Powertools' `enable_swagger` makes
CLOUD = "/v1_1/<cloud_name>"
SEARCH = CLOUD + "/resources/visual_search"
UPLOAD_API = CLOUD + "/<resource_type>"
IMAGES = CLOUD + "/resources/image"

ROUTES: tuple[Route, ...] = (
    # The GET search is not validated by Powertools: see SearchRoutes.search_get.
    Route("GET", SEARCH, Auth.CREDENTIALS, "search.search_get",
          "Find images by what they show", validate=False),
    Route("POST", SEARCH, Auth.CREDENTIALS, "search.visual_search",
          "Visual search with a form, multipart (image_file) or JSON body"),
    # The Java SDK's path for the same search.
    Route("GET", SEARCH + "/image", Auth.CREDENTIALS, "search.visual_search", include_in_schema=False),
    Route("POST", SEARCH + "/image", Auth.CREDENTIALS, "search.visual_search", include_in_schema=False),
    # Cloudinary's Upload API.
    Route("POST", UPLOAD_API + "/upload", Auth.SIGNED, "assets.upload",
          "Upload an image, whole or in parts (signed)"),
    Route("POST", UPLOAD_API + "/destroy", Auth.SIGNED, "assets.destroy",
          "Delete one image by public_id (signed)"),
    Route("POST", UPLOAD_API + "/rename", Auth.SIGNED, "assets.rename",
          "Rename an image, keeping its asset_id (signed)"),
    Route("POST", UPLOAD_API + "/tags", Auth.SIGNED, "assets.tags",
          "Add, remove or replace a tag on images (signed)"),
    Route("POST", UPLOAD_API + "/context", Auth.SIGNED, "assets.context",
          "Add or remove context on images (signed)"),
    Route("POST", UPLOAD_API + "/explicit", Auth.SIGNED, "assets.explicit",
          "Set an image's tags and context (signed)"),
    # Cloudinary's Admin API.
    Route("GET", CLOUD + "/ping", Auth.CREDENTIALS, "assets.ping",
          "Reachability and credentials"),
    Route("GET", IMAGES, Auth.CREDENTIALS, "assets.resources",
          "List images by public_id prefix"),
    Route("GET", IMAGES + "/context", Auth.CREDENTIALS, "assets.resources_by_context",
          "List images with a context key (and value)"),
    Route("GET", IMAGES + "/<upload_type>", Auth.CREDENTIALS, "assets.resources_typed",
          "List images of a delivery type"),
    Route("GET", IMAGES + "/tags/<tag>", Auth.CREDENTIALS, "assets.resources_by_tag",
          "List images with a tag"),
    Route("GET", CLOUD + "/resources/by_asset_ids", Auth.CREDENTIALS, "assets.resources_by_asset_ids",
          "Images by asset_id"),
    Route("GET", IMAGES + "/upload/<public_id>", Auth.CREDENTIALS, "assets.resource_by_public_id",
          "One image by public_id", greedy=True),
    Route("POST", IMAGES + "/upload/<public_id>", Auth.CREDENTIALS, "assets.update",
          "Update an image's tags and context", greedy=True),
    Route("DELETE", IMAGES + "/upload", Auth.CREDENTIALS, "assets.delete_resources",
          "Delete images by public_ids or prefix"),
    Route("DELETE", IMAGES + "/tags/<tag>", Auth.CREDENTIALS, "assets.delete_by_tag",
          "Delete images with a tag"),
    # Extensions: an indexed image by asset_id, duplicates, health.
    Route("GET", CLOUD + "/resources/<asset_id>", Auth.CREDENTIALS, "assets.get_resource",
          "One indexed image by asset_id"),
    Route("GET", CLOUD + "/resources/<asset_id>/duplicates", Auth.CREDENTIALS, "search.duplicates",
          "Tiered duplicates of one asset"),
    Route("GET", CLOUD + "/duplicates", Auth.CREDENTIALS, "search.duplicates_report",
          "Duplicate groups over the collection"),
    Route("GET", "/health", Auth.CREDENTIALS, "search.health",
          "Liveness and index size"),
    # The search page, and the OpenAPI document (/docs?format=json) with its page.
    Route("GET", "/", Auth.PUBLIC, "pages.redirect", include_in_schema=False),
    Route("GET", "/ui", Auth.PUBLIC, "pages.redirect", include_in_schema=False),
    Route("GET", "/ui/<name>", Auth.PUBLIC, "pages.file", include_in_schema=False),
    Route("GET", "/docs", Auth.CREDENTIALS, DOCS, include_in_schema=False),
)  # fmt: skip
