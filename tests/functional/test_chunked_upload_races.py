"""upload_large's parts arriving at once (issue 21, finding 5). The local server resolves requests on a
thread pool: the last part retried concurrently was a 500 (two assemblies, one deleting the parts the
other read), and two halves sent together could each miss the other and never assemble. An upload is
assembled exactly once, whoever arrives last, and every retry of a part gets the answer Cloudinary
gives: the assembled upload's. Rounds repeat each race, since one round may not interleave."""

from __future__ import annotations

from functools import partial

from tests.fixtures import images
from tests.functional.upload_parts import LargeUpload, at_once, served, staged

ROUNDS = 6


def test_last_part_retried_concurrently_assembles_once(tmp_path, tiny_model_dir):
    with served(tmp_path, tiny_model_dir) as (services, sender):
        for round_ in range(ROUNDS):
            # Given an upload whose parts have all arrived but the last
            upload = LargeUpload(
                sender, f"retried-{round_}", images.jpeg(96, 64, seed=round_), f"race/r{round_}", 3
            )
            assert [upload.send(0)[0], upload.send(1)[0]] == [200, 200]
            # When four copies of the last part arrive at once
            answers = at_once([partial(upload.send, 2)] * 4)
            # Then each is answered with the one assembled upload, and the staging is empty
            assert [status for status, _, _ in answers] == [200] * 4, answers
            assert len({(body["asset_id"], body["version"]) for _, body, _ in answers}) == 1
            assert services.index.get(answers[0][1]["asset_id"]) is not None
            assert staged(services.store) == {}


def test_halves_sent_in_parallel_are_assembled_once(tmp_path, tiny_model_dir):
    with served(tmp_path, tiny_model_dir) as (services, sender):
        for round_ in range(ROUNDS * 2):
            data = images.jpeg(96, 64, seed=50 + round_)
            upload = LargeUpload(sender, f"halves-{round_}", data, f"race/h{round_}", 2)
            answers = at_once([partial(upload.send, 0), partial(upload.send, 1)])
            assert [status for status, _, _ in answers] == [200, 200], answers
            assembled = [body for _, body, _ in answers if "asset_id" in body]
            assert [body["bytes"] for body in assembled] == [len(data)], answers
            assert staged(services.store) == {}


def test_a_part_retried_after_its_upload_was_assembled_gets_the_assembled_answer(tmp_path, tiny_model_dir):
    with served(tmp_path, tiny_model_dir) as (services, sender):
        data = images.jpeg(96, 64, seed=90)
        upload = LargeUpload(sender, "again", data, "race/again", 3)
        status, assembled, _ = [upload.send(i) for i in range(3)][-1]
        assert (status, assembled["bytes"]) == (200, len(data))
        assert [upload.send(i)[:2] for i in (0, 2)] == [(200, assembled)] * 2
        assert staged(services.store) == {}
