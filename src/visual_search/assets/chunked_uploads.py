"""`upload_large` / `upload_chunked`: the parts of one file, sent as separate signed uploads carrying
`X-Unique-Upload-Id` and `Content-Range: bytes START-END/TOTAL`, are staged in the image store under the
reserved prefix (durable: on S3 when deployed; never indexed, never listed), and assembled when the
last missing part arrives. The assembled file then goes through the one upload path, with its limits and
decoding. Parts of an upload left unfinished expire after `PART_TTL_S`: each part received sweeps them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from visual_search.errors import BadInput, ImageTooLarge
from visual_search.storage.port import RESERVED_PREFIX, ImageStore

STAGING = f"{RESERVED_PREFIX}uploads/"
PART_TTL_S = 24 * 3600
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RANGE = re.compile(r"bytes (\d{1,12})-(\d{1,12})/(\d{1,12})")


@dataclass(frozen=True)
class Part:
    upload_id: str
    start: int
    end: int  # inclusive, as in Content-Range
    total: int


def parse_part(upload_id: str, content_range: str) -> Part:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise BadInput("X-Unique-Upload-Id must be 1 to 64 letters, digits, '-' or '_'")
    match = _RANGE.fullmatch(content_range.strip())
    if not match:
        raise BadInput("Content-Range must read 'bytes START-END/TOTAL'")
    start, end, total = (int(g) for g in match.groups())
    if not start <= end < total:
        raise BadInput("Content-Range must have START <= END < TOTAL")
    return Part(upload_id, start, end, total)


class ChunkedUploads:
    def __init__(self, store: ImageStore, max_bytes: int):
        self._store, self._max_bytes = store, max_bytes

    def receive(self, part: Part, data: bytes, now: datetime | None = None) -> bytes | None:
        """Stage one part; the whole file once every part is there, else None."""
        if part.total > self._max_bytes:
            raise ImageTooLarge(f"the file is {part.total:,} bytes; the limit is {self._max_bytes:,}")
        if len(data) != part.end - part.start + 1:
            raise BadInput(
                f"Content-Range announces {part.end - part.start + 1:,} bytes; the part holds {len(data):,}"
            )
        self._expire(now or datetime.now(UTC))
        folder = f"{STAGING}{part.upload_id}/"
        ranges = []
        for info in self._store.scan(folder):
            start, end, total = (int(n) for n in info.key.rpartition("/")[2].split("-"))
            if total != part.total:
                raise BadInput("the parts of one upload disagree on its total size")
            ranges.append((start, end, info.key))
        key = f"{folder}{part.start:012d}-{part.end:012d}-{part.total:012d}"
        self._store.put(key, data)
        ranges = [r for r in ranges if r[2] != key] + [(part.start, part.end, key)]
        covered = 0
        for start, end, _key in sorted(ranges):
            if start > covered:
                return None  # a gap: more parts to come
            covered = max(covered, end + 1)
        if covered < part.total:
            return None
        assembled = bytearray(part.total)
        for start, end, key in sorted(ranges):
            assembled[start : end + 1] = self._store.get(key).data
        for _start, _end, key in ranges:
            self._store.delete(key)
        return bytes(assembled)

    def _expire(self, now: datetime) -> None:
        cutoff = now - timedelta(seconds=PART_TTL_S)
        for info in self._store.scan(STAGING):
            modified = (
                info.last_modified if info.last_modified.tzinfo else info.last_modified.replace(tzinfo=UTC)
            )
            if modified < cutoff:
                self._store.delete(info.key)
