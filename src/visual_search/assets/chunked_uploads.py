"""`upload_large` / `upload_chunked`: the parts of one file, sent as separate signed uploads carrying
`X-Unique-Upload-Id` and `Content-Range: bytes START-END/TOTAL`, are staged in the image store under the
reserved prefix (durable: on S3 when deployed; never indexed, never listed), and assembled when the
last missing part arrives. The assembled file then goes through the one upload path, with its limits and
decoding. Parts of an upload left unfinished expire after `PART_TTL_S`: each part received sweeps them.

The total may be unknown until the last part: Cloudinary's Node SDK sends `bytes START-END/-1` on every
part but the last (RFC 9110 writes it `*`; both are read).
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
_RANGE = re.compile(r"bytes (\d{1,12})-(\d{1,12})/(\d{1,12}|-1|\*)")
_UNKNOWN = "unknown"  # the staged name's total while the client has not said it


@dataclass(frozen=True)
class Part:
    upload_id: str
    start: int
    end: int  # inclusive, as in Content-Range
    total: int | None  # None: not known yet (only the last part must say it)


def parse_part(upload_id: str, content_range: str) -> Part:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise BadInput("X-Unique-Upload-Id must be 1 to 64 letters, digits, '-' or '_'")
    match = _RANGE.fullmatch(content_range.strip())
    if not match:
        raise BadInput("Content-Range must read 'bytes START-END/TOTAL'")
    start, end = int(match.group(1)), int(match.group(2))
    total = None if match.group(3) in ("-1", "*") else int(match.group(3))
    if not start <= end or (total is not None and end >= total):
        raise BadInput("Content-Range must have START <= END < TOTAL")
    return Part(upload_id, start, end, total)


class ChunkedUploads:
    def __init__(self, store: ImageStore, max_bytes: int):
        self._store, self._max_bytes = store, max_bytes

    def receive(self, part: Part, data: bytes, now: datetime | None = None) -> bytes | None:
        """Stage one part; the whole file once every part is there, else None."""
        self._check(part, data)
        self._expire(now or datetime.now(UTC))
        folder = f"{STAGING}{part.upload_id}/"
        key = f"{folder}{part.start:012d}-{part.end:012d}-"
        key += _UNKNOWN if part.total is None else f"{part.total:012d}"
        ranges: list[tuple[int, int, str]] = []
        totals: set[int] = {part.total} if part.total is not None else set()
        for info in self._store.scan(folder):
            start, end, total = info.key.rpartition("/")[2].split("-")
            if total != _UNKNOWN:
                totals.add(int(total))
            if info.key != key:
                ranges.append((int(start), int(end), info.key))
        if len(totals) > 1:
            raise BadInput("the parts of one upload disagree on its total size")
        self._store.put(key, data)
        ranges.append((part.start, part.end, key))
        if not totals:
            return None  # the part that says the total is still to come
        return self._assemble(sorted(ranges), totals.pop())

    def _check(self, part: Part, data: bytes) -> None:
        size = part.total if part.total is not None else part.end + 1  # at least
        if size > self._max_bytes:
            raise ImageTooLarge(f"the file is {size:,} bytes or more; the limit is {self._max_bytes:,}")
        if len(data) != part.end - part.start + 1:
            raise BadInput(
                f"Content-Range announces {part.end - part.start + 1:,} bytes; the part holds {len(data):,}"
            )

    def _assemble(self, ranges: list[tuple[int, int, str]], total: int) -> bytes | None:
        covered = 0
        for start, end, _key in ranges:
            if start > covered:
                return None  # a gap: more parts to come
            covered = max(covered, end + 1)
        if covered < total:
            return None
        if covered > total:
            raise BadInput("the parts of one upload reach past its total size")
        assembled = bytearray(total)
        for start, end, key in ranges:
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
