"""upload_large's staging, below the HTTP layer: a part reads only its own upload's folder (the sweep
of every upload runs on a schedule, and forgets what it expires), and the staging total must hold a
file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from visual_search.assets import chunked_uploads
from visual_search.assets.chunked_uploads import STAGING, ChunkedUploads, parse_part
from visual_search.assets.upload_staging import StagingBounds, StagingLedger
from visual_search.bootstrap import staging_bounds
from visual_search.errors import ConfigurationError, DependencyUnavailable
from visual_search.settings import ServiceSettings
from visual_search.storage.local import LocalImageStore
from visual_search.storage.port import ObjectInfo

BOUNDS = StagingBounds(file_bytes=1000, file_parts=100, total_bytes=100_000, total_parts=10_000, ttl_s=3600)


class ScanCounting(LocalImageStore):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scanned: list[str] = []

    def scan(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        self.scanned.append(prefix)
        return super().scan(prefix, start_after)


def whole(data: bytes) -> bytes:
    return data


def test_a_part_lists_only_its_own_upload_not_every_staged_one(tmp_path):
    # Given 50 unfinished uploads staged, and a sweep just done
    store = ScanCounting(tmp_path, None, b"k" * 32)
    chunks = ChunkedUploads(store, BOUNDS)
    for i in range(50):
        chunks.receive(parse_part(f"stale-{i}", "bytes 0-4/10"), b"12345", whole)
    chunks.sweep()
    store.scanned.clear()
    # When a part of another upload arrives
    chunks.receive(parse_part("fresh", "bytes 0-4/10"), b"abcde", whole)
    # Then only that upload's folder is listed
    assert set(store.scanned) == {f"{STAGING}fresh/"}


def test_the_sweep_removes_expired_parts_and_forgets_their_bytes(tmp_path):
    store = LocalImageStore(tmp_path, None, b"k" * 32)
    small = StagingBounds(file_bytes=1000, file_parts=100, total_bytes=1000, total_parts=100, ttl_s=60)
    chunks = ChunkedUploads(store, small)
    chunks.receive(parse_part("old", "bytes 0-899/1000"), b"x" * 900, whole)
    with pytest.raises(DependencyUnavailable):
        chunks.receive(parse_part("new", "bytes 0-199/1000"), b"y" * 200, whole)
    chunks.sweep(now=datetime.now(UTC) + timedelta(seconds=120))
    assert list(store.list(STAGING)) == []
    assert chunks.receive(parse_part("new", "bytes 0-199/1000"), b"y" * 200, whole) is None


def test_a_staging_total_smaller_than_one_file_is_refused_at_start():
    settings = ServiceSettings(max_image_bytes=4096, upload_staging_max_bytes=2048)
    with pytest.raises(ConfigurationError, match="hold one file"):
        staging_bounds(settings)


def test_a_recount_does_not_bring_back_an_upload_assembled_while_it_listed():
    ledger = StagingLedger(
        StagingBounds(file_bytes=1000, file_parts=10, total_bytes=1000, total_parts=10, ttl_s=60)
    )
    ledger.record("done", {"a": 400, "b": 400})
    with ledger.recount() as listing:
        listing["done"] = {"a": 400, "b": 400}  # listed just before the upload was assembled
        ledger.record("done", {})
    ledger.admit("next", {}, "c", 1000)  # all the staging: room only if "done" stays forgotten


def test_a_sweep_deletes_a_bounded_number_and_the_next_one_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(chunked_uploads, "SWEEP_DELETES", 3)
    store = LocalImageStore(tmp_path, None, b"k" * 32)
    chunks = ChunkedUploads(store, BOUNDS)
    for i in range(5):
        chunks.receive(parse_part(f"old-{i}", "bytes 0-4/10"), b"12345", whole)
    later = datetime.now(UTC) + timedelta(seconds=BOUNDS.ttl_s + 60)
    chunks.sweep(now=later)
    assert len(list(store.list(STAGING))) == 2
    chunks.sweep(now=later)
    assert list(store.list(STAGING)) == []
