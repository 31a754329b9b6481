"""upload_large's parts arriving at once (issue 21, finding 5). The local server resolves requests on a
thread pool: the last part retried concurrently was a 500 (two assemblies, one deleting the parts the
other read), and two halves sent together could each miss the other and never assemble. An upload is
assembled exactly once, whoever arrives last, and every retry of a part gets the answer Cloudinary
gives: the assembled upload's. Rounds repeat each race, since one round may not interleave. Across
processes (Lambdas on one bucket) the store's claim decides, on the local folder and on S3 (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

import boto3
import pytest
from moto import mock_aws

from tests.fixtures import images
from tests.functional.upload_parts import LargeUpload, at_once, served, staged
from visual_search.assets.chunked_uploads import STAGING, ChunkedUploads, Finish, Part, parse_part
from visual_search.assets.upload_staging import StagingBounds
from visual_search.errors import UploadInProgress
from visual_search.storage.local import LocalImageStore
from visual_search.storage.port import ImageStore
from visual_search.storage.s3 import S3ImageStore

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


# -- Across processes: Lambdas on one bucket share no lock, only the store and its atomic claim.
ANSWER = b'{"done": true}'
BOUNDS = StagingBounds(file_bytes=1000, file_parts=100, total_bytes=100_000, total_parts=10_000, ttl_s=3600)


@pytest.fixture(params=["local", "s3"])
def shared_store(request, tmp_path) -> Iterator[ImageStore]:
    if request.param == "local":
        yield LocalImageStore(tmp_path, None, b"k" * 32)
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="images")
        yield S3ImageStore("images", 10_000, client=client)


def test_processes_sharing_one_store_assemble_an_upload_once(shared_store):
    data = bytes(range(200))
    for round_ in range(ROUNDS * 2):
        # Given two services with no lock in common, and an upload missing only its last part
        processes = [ChunkedUploads(shared_store, BOUNDS), ChunkedUploads(shared_store, BOUNDS)]
        finished: list[bytes] = []
        upload_id = f"shared-{round_}"
        processes[0].receive(parse_part(upload_id, "bytes 0-99/200"), data[:100], finished_by(finished))
        # When both receive the last part at once
        last = parse_part(upload_id, "bytes 100-199/200")
        answers = at_once(
            [partial(answer_or_retry, c, last, data[100:], finished_by(finished)) for c in processes]
        )
        # Then one assembles it, and the other gets its answer or is asked to retry, never a 500
        assert finished == [data]
        assert ANSWER in answers
        assert all(a == ANSWER or isinstance(a, UploadInProgress) for a in answers)
        assert list(shared_store.list(STAGING)) == []


def finished_by(calls: list[bytes]) -> Finish:
    def finish(assembled: bytes) -> bytes:
        calls.append(assembled)  # list.append is atomic: no lock needed to count the calls
        return ANSWER

    return finish


def answer_or_retry(
    chunks: ChunkedUploads, part: Part, data: bytes, finish: Finish
) -> bytes | Exception | None:
    try:
        return chunks.receive(part, data, finish)
    except UploadInProgress as exc:
        return exc
