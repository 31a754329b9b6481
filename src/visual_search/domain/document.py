"""The document stored beside each vector: Cloudinary's resource fields plus what Visual Search needs.

Frozen and typed here, and the one form every use case and response reads; each index adapter stores
`to_fields()` — the field names and JSON types indices written before this type existed hold, so those
indices are read as they are (`from_fields`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from visual_search.domain.context import Context
from visual_search.domain.identity import AssetId
from visual_search.domain.naming import folder_for, public_id_for


@dataclass(frozen=True)
class AssetDocument:
    asset_id: AssetId
    key: str  # the stored object's key: public_id.format
    format: str | None
    bytes: int
    created_at: str  # ISO 8601, UTC, to the second: 2026-11-24T10:00:00Z
    tags: tuple[str, ...] = ()  # kept sorted, each once, as stored: see __post_init__
    # Cloudinary's contextual metadata (`context`: key=value pairs), in the order given, each key once.
    context: Context = ()
    width: int | None = None  # None where only a listing describes the object (not indexed yet)
    height: int | None = None
    etag: str | None = None  # MD5 of the bytes: exact-duplicate detection, as S3's
    model_id: str | None = None

    def __post_init__(self) -> None:
        # The stored form's order and uniqueness, held by the value itself: a document read back equals
        # the one written, and every reader sees the tags as every index stores them.
        object.__setattr__(self, "tags", tuple(sorted(set(self.tags))))
        object.__setattr__(self, "context", tuple(dict(self.context).items()))

    @property
    def public_id(self) -> str:
        return public_id_for(self.key)

    @property
    def folder(self) -> str:
        return folder_for(self.key)

    def to_fields(self) -> dict[str, Any]:
        """The stored form: the fields Cloudinary's resources carry, tags as a sorted list, context as an
        object (absent when empty); a field that is None is left out."""
        fields: dict[str, Any] = {
            "asset_id": self.asset_id,
            "key": self.key,
            "public_id": self.public_id,
            "folder": self.folder,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": self.bytes,
            "etag": self.etag,
            "tags": list(self.tags),
            "context": dict(self.context) or None,
            "created_at": self.created_at,
            "model_id": self.model_id,
        }
        return {k: v for k, v in fields.items() if v is not None}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> AssetDocument:
        """A stored document back, as any version wrote it: an optional field it lacks takes its default
        (documents written before context existed have none), `public_id` and `folder` are derived from
        `key` (as every version derived them), and a field this type does not know is ignored (no
        version wrote one)."""
        return cls(
            asset_id=AssetId(str(fields["asset_id"])),
            key=str(fields["key"]),
            format=fields.get("format"),
            bytes=int(fields.get("bytes") or 0),
            created_at=str(fields.get("created_at") or ""),
            tags=tuple(fields.get("tags") or ()),
            context=tuple((str(k), str(v)) for k, v in (fields.get("context") or {}).items()),
            width=fields.get("width"),
            height=fields.get("height"),
            etag=fields.get("etag"),
            model_id=fields.get("model_id"),
        )
