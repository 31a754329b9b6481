"""OpenSearch's error answers as typed exceptions, decided in one place (`translate`) from the status and
the error types in the body - never by searching an exception's text.

OpenSearch often wraps the cause: an expired point in time comes back as `search_phase_execution_exception`
(404) with `search_context_missing_exception` only in `root_cause` and in the failed shards' reasons, and
opensearch-py keeps only the top-level type as `exc.error`; so the types are read from the body
(`exc.info`) as well.
"""

from __future__ import annotations

from typing import Any

from visual_search.errors import ConfigurationError

RETRYABLE = {429, 500, 502, 503, 504}


class OpenSearchRefused(ValueError):
    """OpenSearch refused a request for a reason retrying cannot fix."""

    def __init__(self, status: int, types: frozenset[str], reason: str):
        super().__init__(f"OpenSearch refused a request ({status}): {reason}")
        self.status, self.types = status, types


class IndexAlreadyExists(OpenSearchRefused):
    """The index to create exists already (another cold start made it first)."""


class PointInTimeExpired(OpenSearchRefused):
    """The point in time a page was to read has expired or was closed."""


def error_types(info: Any) -> frozenset[str]:
    """Every error type named in an OpenSearch error body: top level, root causes, failed shards."""
    error = info.get("error") if isinstance(info, dict) else None
    if not isinstance(error, dict):
        return frozenset({error}) if isinstance(error, str) else frozenset()
    types = {error.get("type")}
    types |= {cause.get("type") for cause in error.get("root_cause") or [] if isinstance(cause, dict)}
    for shard in error.get("failed_shards") or []:
        reason = shard.get("reason") if isinstance(shard, dict) else None
        if isinstance(reason, dict):
            types.add(reason.get("type"))
    return frozenset(t for t in types if isinstance(t, str))


def translate(status: int, info: Any, summary: str) -> Exception:
    """The exception for a non-retryable answer (`status` not in RETRYABLE)."""
    types = error_types(info)
    if "search_context_missing_exception" in types:
        return PointInTimeExpired(status, types, summary)
    if "resource_already_exists_exception" in types:
        return IndexAlreadyExists(status, types, summary)
    if status in (401, 403, 404):  # credentials, access policy, a missing index: set-up
        return ConfigurationError(f"OpenSearch answered {status}: {summary}")
    return OpenSearchRefused(status, types, summary)
