"""upload_large's staging is bounded (issue 21, finding 4): by the file limit, counted in the bytes
staged for the upload and not only in the ranges its parts announce; by a number of parts a file; and in
total, so that one upload signature cannot fill the store under new ids. Abandoned parts expire on a
schedule, not only when another part happens to arrive. A refused part stages nothing."""

from __future__ import annotations

import time

from tests.functional.upload_parts import served, staged

KIB = 1024


def test_parts_past_the_file_limit_with_unknown_total_are_refused(tmp_path, tiny_model_dir):
    with served(tmp_path, tiny_model_dir, max_image_bytes=64 * KIB) as (services, sender):
        # Given two parts of 32 KiB whose ranges overlap, staged with the total not said yet
        for start in (0, 1):
            status, _, _ = sender.send("over", f"bytes {start}-{start + 32 * KIB - 1}/-1", b"x" * 32 * KIB)
            assert status == 200
        # When a third would bring the bytes staged for the upload past the 64 KiB file limit
        status, body, _ = sender.send("over", f"bytes 2-{2 + 32 * KIB - 1}/-1", b"y" * 32 * KIB)
        # Then it is refused as Cloudinary refuses a file too large, and nothing more is staged
        assert status == 400
        assert "File size too large" in body["error"]["message"]
        assert sorted(staged(services.store, "over").values()) == [32 * KIB, 32 * KIB]


def test_a_part_past_the_staging_total_is_refused_and_stages_nothing(tmp_path, tiny_model_dir):
    settings = {"max_image_bytes": 64 * KIB, "upload_staging_max_bytes": 128 * KIB}
    with served(tmp_path, tiny_model_dir, **settings) as (services, sender):
        # Given two unfinished uploads holding 120 KiB of the 128 KiB staging allows
        for upload_id in ("first", "second"):
            status, _, _ = sender.send(upload_id, f"bytes 0-{60 * KIB - 1}/{64 * KIB}", b"x" * 60 * KIB)
            assert status == 200
        # When a new upload's first part would pass it
        status, body, headers = sender.send("third", f"bytes 0-{20 * KIB - 1}/{64 * KIB}", b"y" * 20 * KIB)
        # Then it is told to retry later, and nothing of it is staged
        assert (status, headers.get("Retry-After")) == (429, "5")
        assert "staging" in body["error"]["message"]
        assert staged(services.store, "third") == {}
        assert len(staged(services.store)) == 2


def test_too_many_parts_for_one_file_are_refused_but_a_retried_part_is_not(tmp_path, tiny_model_dir):
    with served(tmp_path, tiny_model_dir, upload_max_parts=3) as (services, sender):
        for start in range(3):
            assert sender.send("many", f"bytes {start * 10}-{start * 10 + 9}/-1", b"z" * 10)[0] == 200
        assert sender.send("many", "bytes 10-19/-1", b"z" * 10)[0] == 200  # a retry replaces its part
        status, body, _ = sender.send("many", "bytes 30-39/-1", b"z" * 10)
        assert status == 400
        assert "parts" in body["error"]["message"]
        assert len(staged(services.store, "many")) == 3


def test_parts_whose_first_byte_never_comes_expire_without_another_part_arriving(tmp_path, tiny_model_dir):
    settings = {"upload_parts_ttl_s": 1, "upload_sweep_interval_s": 0.2}
    with served(tmp_path, tiny_model_dir, **settings) as (services, sender):
        # Given a part of a known total whose first bytes never come
        assert sender.send("orphan", "bytes 100-199/300", b"o" * 100)[0] == 200
        assert staged(services.store, "orphan")
        # When nothing else arrives for longer than the parts' time to live
        deadline = time.monotonic() + 10
        while staged(services.store) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Then the server has swept them on its own
        assert staged(services.store) == {}
