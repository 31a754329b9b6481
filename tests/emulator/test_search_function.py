"""The search function, run as Lambda runs it, answering API Gateway's events in Cloudinary's shapes:
searches by text and by image (its image tower fetched from the bucket on the first one), a signed
upload into the bucket, and a request without credentials."""

from __future__ import annotations

from tests.emulator.calls import answer, basic, image_search, signed_upload, text_search
from tests.fixtures import images


def test_a_text_search_answers_200_in_cloudinarys_shape(emulated, world):
    called = emulated["search"].invoke(text_search(basic(world.api_key, world.api_secret)))

    status, headers, body = answer(called.payload)
    assert called.status == 200
    assert status == 200, body
    assert isinstance(body["resources"], list)
    assert headers["X-Request-Id"]


def test_an_image_search_answers_200_with_the_image_tower_fetched_from_the_bucket(emulated, world):
    called = emulated["search"].invoke(image_search(basic(world.api_key, world.api_secret)))

    status, _, body = answer(called.payload)
    assert status == 200, body
    assert isinstance(body["resources"], list)


def test_a_signed_upload_stores_the_file_in_the_bucket(emulated, world):
    jpeg = images.jpeg(96, 64, seed=11)

    called = emulated["search"].invoke(signed_upload(world.api_key, world.api_secret, "emulator/red", jpeg))

    status, _, body = answer(called.payload)
    assert (status, body["public_id"]) == (200, "emulator/red"), body
    stored = world.client("s3").list_objects_v2(Bucket=world.bucket, Prefix="emulator/red")
    assert [o["Key"] for o in stored["Contents"]] == ["emulator/red.jpg"]


def test_a_request_without_credentials_answers_401(emulated):
    called = emulated["search"].invoke(text_search(None))

    status, _, body = answer(called.payload)
    assert status == 401
    assert set(body) == {"error"}
