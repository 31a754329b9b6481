"""Cloudinary upload signatures, so `cloudinary.uploader.upload` works against this server.

The SDK signs the upload parameters (all but file, cloud_name, resource_type, api_key and the
signature itself), sorted and joined as `k=v&k=v`, with the api secret appended, using SHA-1 (or
SHA-256 when `signature_algorithm=sha256`). Timestamps older than an hour are refused, as Cloudinary does.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from visual_search.errors import Unauthorized

UNSIGNED = {"file", "cloud_name", "resource_type", "api_key", "signature", "signature_algorithm"}
MAX_AGE_S = 3600


def string_to_sign(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in UNSIGNED and v != "")


def sign(params: Mapping[str, str], api_secret: str, algorithm: str = "sha1") -> str:
    digest = hashlib.sha256 if algorithm == "sha256" else hashlib.sha1
    return digest((string_to_sign(params) + api_secret).encode("utf-8")).hexdigest()


def verify_upload(params: Mapping[str, str], api_key: str, api_secret: str, now: float | None = None) -> None:
    if not hmac.compare_digest(str(params.get("api_key", "")).encode(), api_key.encode()):
        raise Unauthorized("unknown api_key")
    try:
        timestamp = int(params.get("timestamp", ""))
    except ValueError:
        raise Unauthorized("missing or invalid timestamp") from None
    if abs((now or time.time()) - timestamp) > MAX_AGE_S:
        raise Unauthorized("stale request: the timestamp is more than an hour away")
    algorithm = params.get("signature_algorithm", "sha1")
    expected = sign(params, api_secret, algorithm)
    if not hmac.compare_digest(expected.encode(), str(params.get("signature", "")).encode()):
        raise Unauthorized("invalid signature")
