"""What every handler needs of the request being served: its parameters, its caller checked, its file
URLs and the response. Read from the resolver's current event, which ConcurrentResolver keeps per thread."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response

from visual_search.api import params
from visual_search.api.auth import authenticate
from visual_search.api.rate_limit import rate_limit_headers
from visual_search.api.upload_signature import verify_upload
from visual_search.errors import NotFound
from visual_search.settings import ServiceSettings

JSON = "application/json"
FileUrls = Callable[[str | None], Callable[[str], str]]  # ImageStore.urls: a base URL -> key -> URL


class Http:
    def __init__(self, app: APIGatewayRestResolver, settings: ServiceSettings, file_urls: FileUrls):
        self.app, self.settings, self._file_urls = app, settings, file_urls

    def respond(self, status: int, body: str, extra: dict[str, str] | None = None) -> Response:
        context = self.app.current_event.get("requestContext") or {}
        headers = {
            "X-Request-Id": context.get("requestId") or uuid.uuid4().hex,
            **rate_limit_headers(self.settings.rate_limit_per_hour),
            **(extra or {}),
        }
        return Response(status_code=status, content_type=JSON, body=body, headers=headers)

    def params(self) -> dict[str, str | bytes]:
        """The request's parameters (query, then form, multipart or JSON body), parsed once per request:
        a signed call's are parsed to check its signature, and used again by its handler."""
        parsed = self.app.context.get("request_params")
        if parsed is None:
            event = self.app.current_event
            query = event.resolved_query_string_parameters or {}
            body = params.raw_body(event.raw_event)
            parsed = params.collect_params(query, event.headers or {}, body, self.settings.max_image_bytes)
            self.app.append_context(request_params=parsed)
        return parsed

    def signed(self) -> dict[str, str]:
        """The text parameters the request's Upload API signature covers: the only ones a signed call
        may use. Set by `check_signature`, which every SIGNED route runs first (api/guards.py)."""
        return self.app.context["signed_params"]

    # -- who is calling (api/guards.py runs these, as the route table says)
    def check_credentials(self) -> None:
        event = self.app.current_event
        authenticate(
            self.settings.api_auth,
            event.headers or {},
            event.get("requestContext"),
            self.settings.api_key,
            self.settings.api_secret_text,
        )

    def check_signature(self) -> None:
        text = {k: v for k, v in self.params().items() if isinstance(v, str)}
        signed = verify_upload(text, self.settings.api_key, self.settings.api_secret_text)
        self.app.append_context(signed_params=signed)

    def check_cloud(self, cloud_name: str) -> None:
        if cloud_name != self.settings.cloud_name:
            raise NotFound(f"unknown cloud_name {cloud_name[:64]!r}")

    def from_script(self) -> bool:
        """A page's script (it says so, as XMLHttpRequest libraries do): a 401 then must not carry
        WWW-Authenticate, or the browser would open its own credentials prompt over the page."""
        return "x-requested-with" in self.app.current_event.headers  # case-insensitive (Powertools')

    # -- file URLs
    def urls(self) -> Callable[[str], str]:
        """This request's file URLs (key -> signed URL), with the base read from the event once: a page
        of 50 results holds 100 URLs."""
        return self._file_urls(self._url_base())

    def _url_base(self) -> str:
        if self.settings.public_base_url is not None:
            return self.settings.public_base_url
        # The local server validates Host and sets X-Forwarded-Proto from its own socket, as API Gateway
        # does in front of the Lambda.
        headers = self.app.current_event.headers  # Powertools': case-insensitive
        host = headers.get("host", "127.0.0.1")
        scheme = "https" if headers.get("x-forwarded-proto") == "https" else "http"
        return f"{scheme}://{host}"
