"""HTTP request -> the API Gateway REST (v1) proxy event the Lambda receives, so the local server runs
the deployed resolver unchanged."""

from __future__ import annotations

import base64
import uuid
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


def to_proxy_event(
    method: str,
    raw_path: str,
    headers: dict[str, str],
    body: bytes,
    source_ip: str,
    request_id: str | None = None,
) -> dict:
    """An API Gateway REST (v1) proxy event, as API Gateway would build it. UnicodeDecodeError when the
    path or a query parameter, percent-decoded, is not UTF-8 (never silently replaced by U+FFFD)."""
    parts = urlsplit(raw_path)
    multi_query = parse_qs(parts.query, keep_blank_values=True, errors="strict") or None
    request_id = request_id or str(uuid.uuid4())
    return {
        "resource": parts.path,
        "path": unquote(parts.path, errors="strict"),
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} if multi_query else None,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": request_id,
            "stage": "local",
            "httpMethod": method,
            "path": parts.path,
            "resourcePath": parts.path,
            "identity": {"sourceIp": source_ip},
        },
        "body": base64.b64encode(body).decode("ascii") if body else None,
        "isBase64Encoded": bool(body),
    }


def lambda_context(request_id: str | None = None) -> Any:
    return SimpleNamespace(
        function_name="visual-search-local",
        memory_limit_in_mb=0,
        invoked_function_arn="local",
        aws_request_id=request_id or str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )
