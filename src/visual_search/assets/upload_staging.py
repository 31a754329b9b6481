"""What upload_large may stage, and the count that holds it there without listing every upload per part.

The count is kept by upload id, from listings of that upload's own folder (each part lists it) and from
the sweep's listing of all of them. In one process it is exact; processes sharing a bucket each count
what they stage, and learn the others' at their next sweep (see chunked_uploads for what that allows).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from visual_search.errors import BadInput, ImageTooLarge, StagingFull


@dataclass(frozen=True)
class StagingBounds:
    file_bytes: int  # bytes staged for one upload: the file limit
    file_parts: int
    total_bytes: int  # across every upload; the service has one api_key, so this is also its bound
    total_parts: int
    ttl_s: float  # an unfinished upload's parts, and a finished one's answer, are kept this long


class StagingLedger:
    """Bytes staged, by upload id and part key."""

    def __init__(self, bounds: StagingBounds):
        self.bounds = bounds
        self._lock = threading.Lock()
        self._uploads: dict[str, dict[str, int]] = {}
        self._stamps: dict[str, int] = {}  # the recount under way when each upload's entry was last set
        self._marks = 0
        self._bytes = self._parts = 0

    def admit(self, upload_id: str, listed: Mapping[str, int], key: str, size: int) -> None:
        """Take the upload's parts as just listed, then count one more part (or a retried one, which
        replaces its earlier copy) if every bound allows it; raise, counting nothing new, if one does not."""
        with self._lock:
            self._set(upload_id, dict(listed))
            parts = self._uploads.get(upload_id, {})
            replaced = parts.get(key)
            upload_bytes = sum(parts.values()) - (replaced or 0) + size
            total_bytes = self._bytes - (replaced or 0) + size
            new_parts = 0 if replaced is not None else 1
            b = self.bounds
            if upload_bytes > b.file_bytes:
                raise ImageTooLarge(
                    f"File size too large. Got at least {upload_bytes:,} bytes in the parts of upload"
                    f" {upload_id}. Maximum is {b.file_bytes:,}."
                )
            if len(parts) + new_parts > b.file_parts:
                raise BadInput(f"upload {upload_id} is sent in more than {b.file_parts:,} parts")
            if total_bytes > b.total_bytes or self._parts + new_parts > b.total_parts:
                raise StagingFull(
                    f"upload staging holds {self._bytes:,} bytes in {self._parts:,} parts (at most"
                    f" {b.total_bytes:,} in {b.total_parts:,}); retry once other uploads finish or expire"
                )
            self._set(upload_id, {**parts, key: size})

    def record(self, upload_id: str, listed: Mapping[str, int]) -> None:
        """The upload's parts as just listed (none: forget it)."""
        with self._lock:
            self._set(upload_id, dict(listed))

    @contextmanager
    def recount(self) -> Iterator[dict[str, dict[str, int]]]:
        """Fill the dict with every upload's parts, from one listing of them all: it replaces the count
        of each upload not set since the listing began (a part's own listing is newer)."""
        with self._lock:
            self._marks += 1
            began = self._marks
        listing: dict[str, dict[str, int]] = {}
        yield listing
        with self._lock:
            for upload_id in set(self._stamps) | set(listing):
                if self._stamps.get(upload_id, 0) < began:
                    self._set(upload_id, listing.get(upload_id, {}))
            # An upload emptied during the listing (assembled) kept its stamp until here, so the
            # listing could not bring back the parts it saw before they were deleted.
            self._stamps = {upload_id: self._stamps[upload_id] for upload_id in self._uploads}

    def _set(self, upload_id: str, parts: dict[str, int]) -> None:
        old = self._uploads.pop(upload_id, {})
        self._bytes += sum(parts.values()) - sum(old.values())
        self._parts += len(parts) - len(old)
        if parts:
            self._uploads[upload_id] = parts
        self._stamps[upload_id] = self._marks


class KeyedLocks:
    """One lock per name, held only while someone uses it (so upload ids do not accumulate)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.setdefault(name, (threading.Lock(), [0]))
            users[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._guard:
                users[0] -= 1
                if not users[0]:
                    del self._locks[name]
