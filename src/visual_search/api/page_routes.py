"""The search page's static files: public (they hold no data; every call they make is authenticated),
same origin as the API, locked down by a strict Content-Security-Policy."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from visual_search import web
from visual_search.api.http import Http
from visual_search.errors import NotFound

PAGE = "ui/index.html"


class PageRoutes:
    def __init__(self, http: Http):
        self.http = http

    def file(self, name: str):
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

    def redirect(self):
        # Relative, so it also works under an API Gateway stage (/v1/ -> /v1/ui/index.html).
        path = self.http.app.current_event.path
        target = "index.html" if path.rstrip("/").endswith("/ui") and path.endswith("/") else PAGE
        return Response(status_code=302, content_type="text/plain", body="", headers={"Location": target})
