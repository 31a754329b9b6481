"""HTTP Basic auth with a Cloudinary-style api_key:api_secret pair, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from visual_search.errors import Unauthorized


def check_basic_auth(headers: Mapping[str, str], api_key: str, api_secret: str) -> None:
    """Raise Unauthorized unless the Authorization header carries exactly this key and secret."""
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token:
        raise Unauthorized("missing credentials: use HTTP Basic auth with your api_key and api_secret")
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("invalid credentials") from None
    key, sep, secret = decoded.partition(b":")
    # Both comparisons always run, so the time taken does not reveal which part was wrong.
    key_ok = hmac.compare_digest(key, api_key.encode())
    secret_ok = hmac.compare_digest(secret, api_secret.encode())
    if not (sep and key_ok and secret_ok):
        raise Unauthorized("invalid credentials")
