"""The events the tier sends, filled in from the recorded ones (tests/events/): API Gateway's proxy
events, its REQUEST authorizer's event, and S3 notifications delivered through SQS."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any
from urllib.parse import quote_plus

import cloudinary.utils
from urllib3 import encode_multipart_formdata

from tests.events import api_gateway_event, load
from tests.fixtures import images

CLOUD = "demo"  # the stack sets no cloud name: the service's default
SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def text_search(authorization: str | None, text: str = "a red shirt") -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization else {}
    return api_gateway_event("GET", SEARCH, query={"text": text}, headers=headers)


def image_search(authorization: str) -> dict[str, Any]:
    body, content_type = encode_multipart_formdata(
        {"image_file": ("query.jpg", images.jpeg(160, 120, seed=5), "image/jpeg")}
    )
    headers = {"Authorization": authorization, "Content-Type": content_type}
    return api_gateway_event("POST", SEARCH, headers=headers, body=body, binary=True)


def signed_upload(api_key: str, api_secret: str, public_id: str, jpeg: bytes) -> dict[str, Any]:
    """As Cloudinary's SDKs send `uploader.upload`: signed multipart through the route API Gateway
    lets through without the authorizer."""
    fields: dict[str, Any] = {"public_id": public_id, "timestamp": str(int(time.time()))}
    fields["signature"] = cloudinary.utils.api_sign_request(fields, api_secret)
    fields |= {"api_key": api_key, "file": (f"{public_id}.jpg", jpeg, "image/jpeg")}
    body, content_type = encode_multipart_formdata(fields)
    return api_gateway_event(
        "POST", f"/v1_1/{CLOUD}/image/upload", headers={"Content-Type": content_type}, body=body,
        binary=True, resource="/v1_1/{cloud_name}/image/upload", authorized=False,
    )  # fmt: skip


def object_created_batch(bucket: str, keys: list[str]) -> dict[str, Any]:
    """The recorded S3 -> SQS event, one message per key, naming our bucket and keys (URL-encoded in the
    notification, as S3 sends them)."""
    (recorded,) = load("s3_sqs_object_created")["Records"]
    records = []
    for n, key in enumerate(keys):
        record = copy.deepcopy(recorded)
        notification = json.loads(record["body"])
        s3 = notification["Records"][0]["s3"]
        s3["bucket"] |= {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        s3["object"] |= {"key": quote_plus(key, safe="/"), "sequencer": f"{n + 1:018X}"}
        s3["object"].pop("versionId")  # the tier's bucket is not versioned
        record |= {"messageId": f"emulator-{n}", "body": json.dumps(notification)}
        records.append(record)
    return {"Records": records}


def answer(payload: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of a proxy response."""
    headers = {k: v[-1] for k, v in (payload.get("multiValueHeaders") or {}).items()}
    headers |= payload.get("headers") or {}
    body = payload["body"]
    if payload.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return payload["statusCode"], headers, json.loads(body)
