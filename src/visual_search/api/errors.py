"""One table from domain errors to HTTP statuses, and Cloudinary's error body.

Statuses are limited to those Cloudinary's SDKs understand (400, 401, 403, 404, 409, 413, 420/429, 500).
Unavailable dependencies answer 429 with Retry-After rather than 503, because the Node SDK drops the
body of a 503 and the Python SDK maps unknown statuses to a bare Exception. 500 is for bugs only.
"""

from __future__ import annotations

import json

from visual_search import errors

# Most specific first: the first matching type decides.
STATUS_BY_ERROR: list[tuple[type[Exception], int]] = [
    (errors.Unauthorized, 401),
    (errors.NotFound, 404),
    (errors.DependencyUnavailable, 429),
    (errors.BodyTooLarge, 413),
    (errors.BadInput, 400),
]

RETRY_AFTER_S = 5


def status_for(exc: Exception) -> int:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            return status
    return 500


def error_body(message: str) -> str:
    return json.dumps({"error": {"message": message}})
