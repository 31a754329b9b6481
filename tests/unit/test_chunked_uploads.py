"""upload_large's parts: staged in the store, assembled once every byte is there (in any order), refused
when they disagree or exceed the limit, and expired when abandoned."""

from __future__ import annotations

import os
import time

import pytest

from visual_search.assets.chunked_uploads import STAGING, ChunkedUploads, parse_part
from visual_search.assets.upload_staging import StagingBounds
from visual_search.errors import BadInput, ImageTooLarge
from visual_search.storage.local import LocalImageStore

PART_TTL_S = 3600


@pytest.fixture
def store(tmp_path) -> LocalImageStore:
    return LocalImageStore(tmp_path, None, b"k" * 32)


def part(upload_id: str, start: int, end: int, total: int):
    return parse_part(upload_id, f"bytes {start}-{end}/{total}")


def uploads(store: LocalImageStore, max_bytes: int) -> ChunkedUploads:
    bounds = StagingBounds(
        max_bytes, file_parts=100, total_bytes=10 * max_bytes, total_parts=1000, ttl_s=PART_TTL_S
    )
    return ChunkedUploads(store, bounds)


def whole(data: bytes) -> bytes:
    """`finish` as the tests give it: the assembled file is the answer."""
    return data


def test_parts_in_any_order_are_assembled_when_the_last_gap_closes(store):
    chunks = uploads(store, max_bytes=1000)
    data = bytes(range(30))
    assert chunks.receive(part("u1", 20, 29, 30), data[20:], whole) is None
    assert chunks.receive(part("u1", 0, 9, 30), data[:10], whole) is None
    assert chunks.receive(part("u1", 10, 19, 30), data[10:20], whole) == data
    assert list(store.list(STAGING)) == []


def test_abandoned_parts_expire_when_the_sweep_comes(store):
    chunks = uploads(store, max_bytes=1000)
    chunks.receive(part("old", 0, 4, 10), b"12345", whole)
    chunks.receive(part("new", 0, 4, 10), b"abcde", whole)
    long_ago = time.time() - PART_TTL_S - 60
    for key in store.list(f"{STAGING}old/"):
        os.utime(store.root / key, (long_ago, long_ago))
    chunks.sweep()
    assert [k.split("/")[2] for k in store.list(STAGING)] == ["new"]


def test_a_file_over_the_limit_is_refused_at_its_first_part(store):
    with pytest.raises(ImageTooLarge):
        uploads(store, max_bytes=100).receive(part("big", 0, 9, 101), b"x" * 10, whole)


@pytest.mark.parametrize(
    ("upload_id", "content_range"),
    [
        ("", "bytes 0-1/2"),
        ("../x", "bytes 0-1/2"),
        ("ok", "bytes 2-1/3"),
        ("ok", "bytes 0-3/3"),
        ("ok", "0-1/2"),
    ],
)
def test_a_malformed_upload_id_or_content_range_is_a_400(upload_id, content_range):
    with pytest.raises(BadInput):
        parse_part(upload_id, content_range)


def test_a_part_shorter_than_its_range_or_disagreeing_on_the_total_is_a_400(store):
    chunks = uploads(store, max_bytes=1000)
    with pytest.raises(BadInput, match="announces"):
        chunks.receive(part("u2", 0, 9, 20), b"short", whole)
    chunks.receive(part("u3", 0, 4, 20), b"12345", whole)
    with pytest.raises(BadInput, match="disagree"):
        chunks.receive(part("u3", 5, 9, 30), b"67890", whole)


@pytest.mark.parametrize("unknown", ["-1", "*"])
def test_parts_whose_total_is_unknown_until_the_last_are_assembled(store, unknown):
    # Cloudinary's Node SDK sends `bytes START-END/-1` on every part but the last (found by its test).
    chunks = uploads(store, max_bytes=1000)
    data = bytes(range(30))
    assert chunks.receive(parse_part("n1", f"bytes 0-9/{unknown}"), data[:10], whole) is None
    assert chunks.receive(parse_part("n1", f"bytes 10-19/{unknown}"), data[10:20], whole) is None
    assert chunks.receive(parse_part("n1", "bytes 20-29/30"), data[20:], whole) == data
    assert list(store.list(STAGING)) == []


def test_a_part_of_unknown_total_already_past_the_limit_is_refused(store):
    with pytest.raises(ImageTooLarge):
        uploads(store, max_bytes=100).receive(parse_part("big", "bytes 95-104/-1"), b"x" * 10, whole)


def test_parts_reaching_past_the_total_the_last_part_gives_are_a_400(store):
    chunks = uploads(store, max_bytes=1000)
    chunks.receive(parse_part("n2", "bytes 0-19/-1"), b"x" * 20, whole)
    with pytest.raises(BadInput, match="past its total"):
        chunks.receive(parse_part("n2", "bytes 10-14/15"), b"y" * 5, whole)
