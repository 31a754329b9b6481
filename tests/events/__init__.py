"""Recorded event fixtures; `load(name)` returns one as a dict, `api_gateway_event` fills the recorded
REST API proxy event with one request."""

from __future__ import annotations

import base64
import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent


def load(name: str) -> dict[str, Any]:
    return copy.deepcopy(_read(name))


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))


def api_gateway_event(
    method: str,
    path: str,
    *,
    query: dict[str, str | list[str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    binary: bool = False,
    resource: str = "/{proxy+}",
    authorized: bool = True,
) -> dict[str, Any]:
    """The recorded REST (v1) proxy event as API Gateway sends one request to the function on stage v1.
    `binary`: the body is of a binary media type, so API Gateway base64-encodes it; text bodies arrive
    as they are. `authorized=False`: a route without authorizer (no authorizer context)."""
    event = load("apigw_rest_proxy")
    headers = {**event["headers"], **(headers or {})}
    multi_query = {k: v if isinstance(v, list) else [v] for k, v in (query or {}).items()}
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if binary else body.decode()
    event |= {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")} if resource == "/{proxy+}" else None,
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }
    context = event["requestContext"]
    context |= {"resourcePath": resource, "path": "/v1" + path, "httpMethod": method}
    if not authorized:
        del context["authorizer"]
    return event


def authorizer_event(authorization: str | None) -> dict[str, Any]:
    """The recorded REQUEST authorizer event, with or without an Authorization header."""
    event = load("apigw_authorizer_request")
    if authorization:
        event["headers"]["Authorization"] = authorization
        event["multiValueHeaders"] = {"Authorization": [authorization]}
    return event
