"""Upload API signatures as Cloudinary's Python SDK makes them, against the local server: its default
(signature version 2, SHA-1) and its options (`signature_version=1`, `signature_algorithm="sha256"`), through
`upload` and `upload_large`; and what a caller without the secret learns from the answers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import cloudinary
import cloudinary.exceptions
import cloudinary.uploader
import cloudinary.utils
import pytest
import urllib3

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD

UPLOAD = f"/v1_1/{CLOUD}/image/upload"


@pytest.fixture(scope="module")
def base(server) -> Iterator[str]:
    """The module's local server (conftest), with the SDK configured for it."""
    cloudinary.reset_config()
    cloudinary.config(cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=server)
    yield server
    cloudinary.reset_config()


def post(base: str, fields: dict, path: str = UPLOAD):
    http = urllib3.PoolManager(retries=False, timeout=30)
    response = http.request("POST", base + path, fields=fields)
    return response.status, response.json(), response.headers


def signed_fields(params: dict[str, str], **overrides: str) -> dict:
    """Fields as the SDK sends them, signed with its default; `overrides` change them after signing."""
    params = {**params, "timestamp": str(int(time.time()))}
    fields = {
        **params,
        "signature": cloudinary.utils.api_sign_request(params, API_SECRET),
        "api_key": API_KEY,
    }
    return {**fields, **overrides, "file": ("f.jpg", images.jpeg(seed=90))}


# -- finding 6: the SDK's default and its options
def test_python_sdk_default_signature_with_ampersand_in_tags_is_accepted(base):
    uploaded = cloudinary.uploader.upload(images.jpeg(seed=1), public_id="amp/tags", tags="rock&roll")
    assert uploaded["tags"] == ["rock&roll"]


def test_python_sdk_default_signature_with_ampersand_in_context_is_accepted(base):
    uploaded = cloudinary.uploader.upload(
        images.jpeg(seed=2), public_id="amp/context", context={"caption": "Tom & Jerry"}
    )
    assert uploaded["public_id"] == "amp/context"


def test_upload_large_with_ampersand_in_tags_is_accepted(base, tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(images.jpeg(640, 480, seed=3))
    uploaded = cloudinary.uploader.upload_large(
        str(path), resource_type="image", public_id="amp/large", tags="rock&roll", chunk_size=5_000_000
    )
    assert uploaded["tags"] == ["rock&roll"]


@pytest.mark.parametrize(
    "options",
    [
        {"signature_algorithm": "sha256"},
        {"signature_version": 1},
        {"signature_version": 1, "signature_algorithm": "sha256"},
    ],
    ids=["sha256", "version1", "version1-sha256"],
)
def test_python_sdk_signature_options_are_accepted(base, options):
    name = "opt/" + "-".join(f"{k}{v}" for k, v in options.items())
    uploaded = cloudinary.uploader.upload(images.jpeg(seed=4), public_id=name, tags="a,b", **options)
    assert (uploaded["public_id"], uploaded["tags"]) == (name, ["a", "b"])
    assert cloudinary.uploader.destroy(name, **options)["result"] == "ok"


def test_python_sdk_sha256_signature_with_ampersand_is_accepted(base):
    uploaded = cloudinary.uploader.upload(
        images.jpeg(seed=5), public_id="amp/sha256", tags="rock&roll", signature_algorithm="sha256"
    )
    assert uploaded["tags"] == ["rock&roll"]


def test_python_sdk_signature_version_1_over_an_ampersand_is_refused_with_cloudinarys_message(base):
    with pytest.raises(cloudinary.exceptions.AuthorizationRequired, match=r"^Invalid Signature"):
        cloudinary.uploader.upload(images.jpeg(seed=6), tags="rock&roll", signature_version=1)


def test_context_cannot_smuggle_a_signed_folder(base, services):
    # Given fields signed to land in users/bob; when the folder is moved into the context value
    params = {"context": "caption=hi", "folder": "users/bob", "public_id": "escaped"}
    fields = signed_fields(params)
    del fields["folder"]
    fields["context"] = "caption=hi&folder=users/bob"
    # Then the upload is refused and nothing lands outside the folder
    status, body, _ = post(base, fields)
    assert (status, body["error"]["message"][:17]) == (401, "Invalid Signature")
    assert not [k for k in services.store.list() if "escaped" in k]


# -- finding 8: nothing learnt without the secret
def test_unknown_key_and_bad_signature_answer_alike(base):
    fields = signed_fields({"public_id": "alike"})
    unknown_key = post(base, {**fields, "api_key": "not-a-key"})
    bad_signature = post(base, {**fields, "signature": "0" * 40})
    assert unknown_key[0] == bad_signature[0] == 401
    assert unknown_key[1]["error"]["message"].startswith("Invalid Signature " + fields["signature"])
    # The answers differ only by the signature they echo, which the caller sent.
    echoed = bad_signature[1]["error"]["message"].replace("0" * 40, fields["signature"])
    assert echoed == unknown_key[1]["error"]["message"]


def test_a_stale_request_with_an_unknown_key_is_answered_as_a_bad_signature(base):
    params = {"public_id": "stale", "timestamp": str(int(time.time()) - 7200)}
    fields = {**params, "signature": cloudinary.utils.api_sign_request(params, API_SECRET)}
    status, body, _ = post(base, {**fields, "api_key": "not-a-key", "file": ("f.jpg", images.jpeg(seed=9))})
    assert (status, body["error"]["message"][:17]) == (401, "Invalid Signature")
    status, body, _ = post(base, {**fields, "api_key": API_KEY, "file": ("f.jpg", images.jpeg(seed=9))})
    assert (status, body["error"]["message"][:13]) == (401, "Stale request")


def test_upload_api_refusals_carry_no_basic_challenge(base):
    for path in (UPLOAD, f"/v1_1/{CLOUD}/image/destroy"):
        status, _, headers = post(base, signed_fields({"public_id": "x"}, signature="0" * 40), path)
        assert status == 401
        assert "WWW-Authenticate" not in headers


def test_admin_api_refusals_still_carry_the_basic_challenge(base):
    http = urllib3.PoolManager(retries=False, timeout=30)
    response = http.request("GET", base + f"/v1_1/{CLOUD}/ping")
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
