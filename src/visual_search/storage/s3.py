"""Amazon S3 as the image store. Reads are bounded (the object size is checked before the body is read),
URLs are presigned GETs that expire, and every call has timeouts and standard retries."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from visual_search.errors import BadInput, DependencyUnavailable, ImageTooLarge
from visual_search.storage.port import ObjectInfo, ObjectNotFound, StoredObject, listed, validate_key

URL_TTL_S = 3600
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 4},
    signature_version="s3v4",
)
MISSING = {"NoSuchKey", "404", "NotFound"}
# A conditional write's refusals: 412 when the key exists, 409 when another conditional write to it is
# in flight (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


MAX_METADATA_BYTES = 2048  # S3's limit for all user metadata of one object (names and values)


class _PreconditionFailed(Exception):
    """Only conditional requests are refused this way; the caller that sent one handles it."""


class S3ImageStore:
    def __init__(self, bucket: str, max_bytes: int, client: Any = None, name: str | None = None):
        self.bucket = bucket
        self.name = name or f"s3:{bucket}"
        self._max_bytes = max_bytes
        self._s3 = client or boto3.client("s3", config=CLIENT_CONFIG)

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_tags: Mapping[str, str] | None = None,
    ) -> None:
        extra: dict[str, Any] = {"ContentType": content_type} if content_type else {}
        if metadata:
            size = sum(len(k) + len(v) for k, v in metadata.items())
            if size > MAX_METADATA_BYTES:
                raise BadInput(
                    f"an object's metadata (its asset id and tags, encoded) takes {size:,} bytes; on S3"
                    f" it is at most {MAX_METADATA_BYTES:,} bytes (S3 user metadata): fewer or shorter tags"
                )
            extra["Metadata"] = dict(metadata)
        if object_tags:
            extra["Tagging"] = urlencode(object_tags)
        self._call("put_object", Bucket=self.bucket, Key=validate_key(key), Body=data, **extra)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self._call("put_object", Bucket=self.bucket, Key=validate_key(key), Body=data, IfNoneMatch="*")
        except _PreconditionFailed:
            return False
        return True

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        kwargs = {"Bucket": self.bucket, "Key": validate_key(key)}
        if version_id:
            kwargs["VersionId"] = version_id
        response = self._call("get_object", **kwargs)
        size = int(response.get("ContentLength") or 0)
        if size > self._max_bytes:
            response["Body"].close()
            raise ImageTooLarge(f"object is {size:,} bytes; the limit is {self._max_bytes:,}")
        data = response["Body"].read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise ImageTooLarge(f"object is larger than {self._max_bytes:,} bytes")
        return StoredObject(
            key, data, response.get("ContentType"), response["LastModified"], response.get("Metadata") or {}
        )

    def metadata(self, key: str) -> dict[str, str] | None:
        try:
            response = self._call("head_object", Bucket=self.bucket, Key=validate_key(key))
        except ObjectNotFound:
            return None
        return dict(response.get("Metadata") or {})

    def tags(self, key: str) -> dict[str, str]:
        response = self._call("get_object_tagging", Bucket=self.bucket, Key=validate_key(key))
        return {t["Key"]: t["Value"] for t in response.get("TagSet", [])}

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=validate_key(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        return (info.key for info in self.scan(prefix))

    def scan(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        paginator = self._s3.get_paginator("list_objects_v2")
        extra = {"StartAfter": start_after} if start_after else {}
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **extra):
                for item in page.get("Contents", []):
                    if not listed(item["Key"], prefix):
                        continue
                    yield ObjectInfo(item["Key"], int(item.get("Size") or 0), item["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailable(f"listing s3://{self.bucket}/{prefix} failed: {_code(exc)}") from None

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._call("head_object", Bucket=self.bucket, Key=validate_key(key))
        except ObjectNotFound:
            return None
        return ObjectInfo(key, int(response.get("ContentLength") or 0), response["LastModified"])

    def urls(self, base_url: str | None = None) -> Callable[[str], str]:
        def url(key: str) -> str:
            return self._s3.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=URL_TTL_S
            )

        return url

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._s3, operation)(**kwargs)
        except ClientError as exc:
            if _code(exc) in MISSING:
                raise ObjectNotFound(kwargs.get("Key", "")) from None
            if _code(exc) in PRECONDITION:
                raise _PreconditionFailed(_code(exc)) from None
            raise DependencyUnavailable(f"S3 {operation} failed: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"S3 {operation} failed: {type(exc).__name__}") from None


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return type(exc).__name__
