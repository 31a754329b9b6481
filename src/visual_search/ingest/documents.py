"""The document an image gets when it is indexed (`domain.document`): Cloudinary's resource fields from
its key and decoded image, plus what Visual Search needs (etag, model)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from visual_search.domain.context import Context
from visual_search.domain.document import AssetDocument
from visual_search.domain.identity import AssetId
from visual_search.embedding.decode import DecodedImage


def build_document(
    *,
    asset_id: AssetId,
    key: str,
    image: DecodedImage,
    data: bytes,
    model_id: str,
    tags: tuple[str, ...] = (),
    context: Context = (),
    created_at: datetime | None = None,
) -> AssetDocument:
    """The fields search results show (Cloudinary's resource fields) plus what we need ourselves."""
    return AssetDocument(
        asset_id=asset_id,
        key=key,
        format=image.format,
        width=image.width,
        height=image.height,
        bytes=len(data),
        etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),  # exact-duplicate detection, like S3's
        tags=tuple(tags),
        context=tuple(context),
        created_at=(created_at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        model_id=model_id,
    )
