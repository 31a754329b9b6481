"""`upload_large` / `upload_chunked`: the parts of one file, sent as separate signed uploads carrying
`X-Unique-Upload-Id` and `Content-Range: bytes START-END/TOTAL`, are staged in the image store under the
reserved prefix (durable: on S3 when deployed; never indexed, never listed), and assembled when the
last missing part arrives. The assembled file then goes through the one upload path, with its limits and
decoding (the caller's `finish`); its answer is kept, and given again to any part of it retried later.

The total may be unknown until the last part: Cloudinary's Node SDK sends `bytes START-END/-1` on every
part but the last (RFC 9110 writes it `*`; both are read).

Bounds (upload_staging.StagingBounds): the bytes staged for one upload, counted as stored (overlapping
ranges count each time), stay within the file limit, in at most `file_parts` parts; all uploads together
within `total_bytes` and `total_parts`. A part past a bound stages nothing: 400 for the file's bounds (as
Cloudinary answers a file too large), 429 with Retry-After when staging is full.

A part lists only its own upload's folder. The sweep lists them all, deletes what has outlived `ttl_s`
and recounts what is staged. It runs every `sweep_interval_s`: on the local server's timer, and in a
part that arrives when one is due (a Lambda has no timer; the bucket's lifecycle rule expires what is
under these prefixes after a day in any case).

Exactly once. In one process (the local server resolves requests on a thread pool) a lock per upload
id serialises its parts: the bounds are exact, and a part arriving while its upload is being assembled
waits, then gets the assembled answer. Across processes that share only the store (Lambdas on one
bucket) these hold:
- whether an upload is whole is decided on a listing made after the part was stored, so of parts
  arriving together the last one stored sees them all (S3 lists every write completed before it:
  strongly consistent since December 2020);
- the one that assembles is the one whose `put_if_absent` of the upload's claim succeeds (on S3 a
  conditional write, `If-None-Match: *`); another waits up to ANSWER_WAIT_S for its answer, then
  answers 429 with Retry-After;
- the answer is stored before the parts are deleted and the claim released, so a part of an assembled
  upload retried within `ttl_s` gets that answer, never a new assembly;
- the counts are per process, recounted at each sweep: Lambdas can together overshoot the total by
  what each stages between two of its sweeps, and the file limit by parts of one upload stored at the
  same instant.
A claim left by a process that died assembling (a Lambda timed out) holds its upload until the sweep
deletes claims older than CLAIM_TTL_S.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from visual_search.assets.upload_staging import KeyedLocks, StagingBounds, StagingLedger
from visual_search.errors import BadInput, ImageTooLarge, UploadInProgress
from visual_search.storage.port import RESERVED_PREFIX, ImageStore, ObjectInfo, ObjectNotFound

STAGING = f"{RESERVED_PREFIX}uploads/"  # <upload id>/<part name>, and the upload's claim
ANSWERS = f"{RESERVED_PREFIX}uploads-done/"  # <upload id>: the answer an assembled upload was given
CLAIM = "assembling"  # never a part's name: those start with a digit
CLAIM_TTL_S = 600  # longer than any request runs: a Lambda's 29 s, the local server's body timeout
# A sweep may run inside a request (a Lambda's, within its 28 s): one DELETE call an object on S3.
SWEEP_DELETES = 1000
ANSWER_WAIT_S = 10.0  # how long a part waits for another process's assembly before a 429
CLAIM_POLL_S = 0.25
_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RANGE = re.compile(r"bytes (\d{1,12})-(\d{1,12})/(\d{1,12}|-1|\*)")
_UNKNOWN = "unknown"  # the staged name's total while the client has not said it
_PART_NAME = re.compile(rf"(\d{{12}})-(\d{{12}})-(\d{{12}}|{_UNKNOWN})")

Finish = Callable[[bytes], bytes]  # the whole file -> the answer to the part that completed it


@dataclass(frozen=True)
class Part:
    upload_id: str
    start: int
    end: int  # inclusive, as in Content-Range
    total: int | None  # None: not known yet (only the last part must say it)

    @property
    def name(self) -> str:
        total = _UNKNOWN if self.total is None else f"{self.total:012d}"
        return f"{self.start:012d}-{self.end:012d}-{total}"


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
    def __init__(self, store: ImageStore, bounds: StagingBounds, sweep_interval_s: float = 60.0):
        self._store, self._bounds = store, bounds
        self._ledger = StagingLedger(bounds)
        self._locks = KeyedLocks()
        self._sweeping = threading.Lock()
        self._sweep_interval_s = sweep_interval_s
        self._next_sweep = 0.0  # the first part sweeps: it counts what an earlier process left

    def receive(self, part: Part, data: bytes, finish: Finish) -> bytes | None:
        """Stage one part. Once every byte is there, `finish(file)` is called (once for the upload,
        whoever sends its last part) and its answer returned — to this part and to any part of the
        upload retried later. None while parts are missing."""
        self._check(part, data)
        if time.monotonic() >= self._next_sweep:
            self.sweep()
        with self._locks.hold(part.upload_id):
            if (answer := self._answer(part.upload_id)) is not None:
                return answer
            key = f"{STAGING}{part.upload_id}/{part.name}"
            before = self._listed(part.upload_id)
            _total_if_whole([p for k, (p, _size) in before.items() if k != key] + [part])  # may refuse
            self._ledger.admit(part.upload_id, _sizes(before), key, len(data))
            try:
                self._store.put(key, data)
            finally:
                staged = self._listed(part.upload_id)
                self._ledger.record(part.upload_id, _sizes(staged))
            if _total_if_whole(p for p, _size in staged.values()) is not None:
                return self._assemble(part.upload_id, finish)
            # Another process may have assembled the upload, and deleted its parts, since we looked:
            # this part is then a stray.
            if (answer := self._answer(part.upload_id)) is not None:
                self._discard(part.upload_id, staged)
            return answer

    def sweep(self, now: datetime | None = None) -> None:
        """Delete the parts, claims and answers that have outlived their time (at most SWEEP_DELETES;
        the rest are counted, and go at the next sweep), and recount what is staged."""
        if not self._sweeping.acquire(blocking=False):
            return  # one is running
        try:
            self._next_sweep = time.monotonic() + self._sweep_interval_s
            now = now or datetime.now(UTC)
            deletes = SWEEP_DELETES
            with self._ledger.recount() as listing:
                for info in self._store.scan(STAGING):
                    upload_id, _, name = info.key.removeprefix(STAGING).partition("/")
                    expired = _age_s(info, now) > (CLAIM_TTL_S if name == CLAIM else self._bounds.ttl_s)
                    if expired and deletes > 0:
                        self._store.delete(info.key)
                        deletes -= 1
                    elif _part_named(upload_id, name) is not None:
                        listing.setdefault(upload_id, {})[info.key] = info.size
            for info in self._store.scan(ANSWERS):
                if _age_s(info, now) > self._bounds.ttl_s and deletes > 0:
                    self._store.delete(info.key)
                    deletes -= 1
        finally:
            self._sweeping.release()

    def _check(self, part: Part, data: bytes) -> None:
        size = part.total if part.total is not None else part.end + 1  # at least
        if size > self._bounds.file_bytes:
            raise ImageTooLarge(
                f"File size too large. Got at least {size:,} bytes. Maximum is {self._bounds.file_bytes:,}."
            )
        if len(data) != part.end - part.start + 1:
            raise BadInput(
                f"Content-Range announces {part.end - part.start + 1:,} bytes; the part holds {len(data):,}"
            )

    def _assemble(self, upload_id: str, finish: Finish) -> bytes | None:
        claim = f"{STAGING}{upload_id}/{CLAIM}"
        deadline = time.monotonic() + ANSWER_WAIT_S
        while not self._store.put_if_absent(claim, b""):
            if (answer := self._answer(upload_id)) is not None:
                return answer
            if time.monotonic() > deadline:
                raise UploadInProgress(f"upload {upload_id} is being assembled; retry shortly")
            time.sleep(CLAIM_POLL_S)
        try:
            staged = self._listed(upload_id)
            # Another process may have assembled it between our listing and our claim: what is
            # staged now are strays.
            if (answer := self._answer(upload_id)) is not None:
                self._discard(upload_id, staged)
                return answer
            total = _total_if_whole(p for p, _size in staged.values())
            whole = None if total is None else self._read(staged, total)
            if whole is None:
                return None  # a part was swept meanwhile: the client must send it again
            answer = finish(whole)
            self._store.put(f"{ANSWERS}{upload_id}", answer)
            self._discard(upload_id, staged)
            return answer
        finally:
            self._store.delete(claim)

    def _discard(self, upload_id: str, staged: Iterable[str]) -> None:
        for key in staged:
            self._store.delete(key)
        self._ledger.record(upload_id, {})

    def _read(self, staged: dict[str, tuple[Part, int]], total: int) -> bytes | None:
        assembled = bytearray(total)
        try:
            for key, (part, _size) in staged.items():
                assembled[part.start : part.end + 1] = self._store.get(key).data
        except ObjectNotFound:
            return None
        return bytes(assembled)

    def _answer(self, upload_id: str) -> bytes | None:
        try:
            return self._store.get(f"{ANSWERS}{upload_id}").data
        except ObjectNotFound:
            return None

    def _listed(self, upload_id: str) -> dict[str, tuple[Part, int]]:
        """The upload's staged parts by key, with their sizes as stored."""
        staged = {}
        for info in self._store.scan(f"{STAGING}{upload_id}/"):
            part = _part_named(upload_id, info.key.rpartition("/")[2])
            if part is not None:
                staged[info.key] = (part, info.size)
        return staged


def _total_if_whole(parts: Iterable[Part]) -> int | None:
    """The file's size once the parts cover it; None while bytes are missing or its size is unknown.
    Parts that disagree on the size, or reach past it, are a 400."""
    ordered = sorted(parts, key=lambda p: (p.start, p.end))
    totals = {p.total for p in ordered if p.total is not None}
    if len(totals) > 1:
        raise BadInput("the parts of one upload disagree on its total size")
    if not totals:
        return None  # the part that says the total is still to come
    total = totals.pop()
    if max(p.end for p in ordered) >= total:
        raise BadInput("the parts of one upload reach past its total size")
    covered = 0
    for part in ordered:
        if part.start > covered:
            return None  # a gap: more parts to come
        covered = max(covered, part.end + 1)
    return total if covered == total else None


def _part_named(upload_id: str, name: str) -> Part | None:
    match = _PART_NAME.fullmatch(name)
    if match is None:
        return None
    total = None if match.group(3) == _UNKNOWN else int(match.group(3))
    return Part(upload_id, int(match.group(1)), int(match.group(2)), total)


def _sizes(staged: dict[str, tuple[Part, int]]) -> dict[str, int]:
    return {key: size for key, (_part, size) in staged.items()}


def _age_s(info: ObjectInfo, now: datetime) -> float:
    modified = info.last_modified if info.last_modified.tzinfo else info.last_modified.replace(tzinfo=UTC)
    return (now - modified).total_seconds()
