"""Who may call the API. `basic` (the default, and the local server): HTTP Basic with a Cloudinary-style
api_key:api_secret pair, compared in constant time. `iam` (deployed with `-c auth=iam`): API Gateway has
already verified the caller's SigV4 signature and says who signed in `requestContext.identity`; the
Authorization header then holds that signature and is never parsed here."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any, Literal

from aws_lambda_powertools.utilities.data_classes.common import CaseInsensitiveDict

from visual_search.errors import Unauthorized


def check_basic_auth(headers: Mapping[str, str], api_key: str, api_secret: str) -> None:
    """Raise Unauthorized unless the Authorization header carries exactly this key and secret."""
    value = CaseInsensitiveDict(headers).get("authorization", "")
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


def check_iam_identity(request_context: Mapping[str, Any] | None) -> str:
    """The IAM principal API Gateway verified for this request, or Unauthorized. Only an AWS_IAM method
    fills `identity.userArn`: a request reaching the function by any other route has none."""
    identity = (request_context or {}).get("identity") or {}
    caller = identity.get("userArn")
    if not caller or not identity.get("accountId"):
        raise Unauthorized("missing credentials: sign the request with AWS Signature Version 4")
    return str(caller)


def authenticate(
    mode: Literal["basic", "iam"],
    headers: Mapping[str, str],
    request_context: Mapping[str, Any] | None,
    api_key: str,
    api_secret: str,
) -> None:
    """One request (an API Gateway proxy event's headers and requestContext), by `mode`."""
    if mode == "iam":
        check_iam_identity(request_context)
    else:
        check_basic_auth(headers, api_key, api_secret)
