"""The image-store port owned by the core."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from visual_search.errors import BadInput, VisualSearchError


class ObjectNotFound(VisualSearchError):
    """No object under that key."""


class InvalidKey(BadInput):
    """A key that could escape the store or that no store accepts."""


class KeyConflict(InvalidKey):
    """A key that is a folder of other keys in a store whose folders are real (a local disk), or that
    runs through a key stored as a file: `a/x.png` and `a/x.png/y` cannot both be files there."""


# Keys under this prefix belong to Visual Search itself (renditions), not to the collection: listings
# leave them out unless asked for by prefix, and ingest ignores them.
RESERVED_PREFIX = "_vs/"

MAX_KEY_BYTES = 1024  # S3's limit, applied everywhere so a key valid locally is valid on AWS
MAX_SEGMENT_BYTES = 255  # a file name's limit on ext4, XFS, APFS and NTFS: the local store's segments


@dataclass(frozen=True)
class StoredObject:
    key: str
    data: bytes
    content_type: str | None
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)  # user metadata, where the store keeps it


@dataclass(frozen=True)
class ObjectInfo:
    """An object's listing entry: enough to decide whether to fetch it."""

    key: str
    size: int
    last_modified: datetime


class ImageStore(Protocol):
    name: str

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_tags: Mapping[str, str] | None = None,
    ) -> None:
        """Write the object, with `metadata` (S3 user metadata: its asset's id and tags, which the ingest
        worker and a re-index read back) replacing whatever the key held before. `object_tags` (S3 object
        tagging: the opt-in) are read by the ingest worker only: a store indexed inline (the local
        folder) may ignore them."""
        ...

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Write the object only if no object is under the key: True if written, False if one was
        there. Atomic, so it can serve as a claim: of concurrent calls for one key, at most one wins."""
        ...

    def get(self, key: str, version_id: str | None = None) -> StoredObject: ...

    def metadata(self, key: str) -> dict[str, str] | None:
        """The object's metadata without its bytes ({} where it has none); None when no object is there."""
        ...

    def tags(self, key: str) -> dict[str, str]:
        """Object tags (S3 object tagging); empty where the store has none."""
        ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """The keys of `scan`, in its order."""
        ...

    def scan(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Every object under the prefix, in the order of the keys' UTF-8 bytes (S3's), with its size
        and modification time; only keys after `start_after` when given (where a listing page resumes)."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """The object's listing entry, or None when no object is under the key now."""
        ...

    def urls(self, base_url: str | None = None) -> Callable[[str], str]:
        """One response's URLs, key -> a URL the caller can open: signed and expiring (local server, S3
        presigned) or a CDN URL. `base_url` is where the request arrived, for stores served by this
        process. Made once per response, for what its URLs share (a page of 50 results holds 100)."""
        ...


def is_reserved(key: str) -> bool:
    return key.startswith(RESERVED_PREFIX)


def listed(key: str, prefix: str) -> bool:
    """Whether a listing under `prefix` includes `key` (reserved keys only when asked for)."""
    return key.startswith(prefix) and (
        prefix.startswith(RESERVED_PREFIX) or not key.startswith(RESERVED_PREFIX)
    )


def validate_key(key: str) -> str:
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"object keys must be 1 to {MAX_KEY_BYTES} bytes")
    if "\x00" in key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKey(f"invalid object key {key[:80]!r}: no empty, '.' or '..' segments, no leading '/'")
    return key
