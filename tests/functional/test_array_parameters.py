"""Array parameters (`public_ids`, `asset_ids`, `tags`) keep every value on every transport a client may
use — a query string, a form, a multipart body, JSON — in every spelling the SDKs send: `name[]`
repeated (Node and Python in a query, Java's cloudinary-http5 in a DELETE form body), `name` repeated,
`name[0]`, `name[1]`… (Go's `api.StructToParams` of a `[]string`, as its tags calls send `public_ids`),
a JSON array (Python, Node) and a comma-joined string (Go). A repeated scalar still takes its last value.
Raw HTTP: each case is one encoding, byte for byte."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import cloudinary
import cloudinary.api
import cloudinary.uploader
import pytest
import urllib3

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, Api, make_settings
from visual_search.api.upload_signature import sign
from visual_search.bootstrap import Services, build_services
from visual_search.server import LocalServer

ADMIN = f"/v1_1/{CLOUD}/resources"
Pairs = list[tuple[str, str]]


def query(pairs: Pairs) -> tuple[str, dict]:
    return "?" + urlencode(pairs), {}


def form(pairs: Pairs) -> tuple[str, dict]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return "", {"body": urlencode(pairs), "headers": headers}


def multipart(pairs: Pairs) -> tuple[str, dict]:
    body, content_type = urllib3.encode_multipart_formdata(pairs)
    return "", {"body": body, "headers": {"Content-Type": content_type}}


def json_array(pairs: Pairs) -> tuple[str, dict]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name.removesuffix("[]"), []).append(value)
    return "", {"body": json.dumps(grouped), "headers": {"Content-Type": "application/json"}}


def json_joined(pairs: Pairs) -> tuple[str, dict]:
    """Go's `api.CldAPIArray`: a list marshalled as one comma-joined string."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name.removesuffix("[]"), []).append(value)
    body = {k: ",".join(v) for k, v in grouped.items()}
    return "", {"body": json.dumps(body), "headers": {"Content-Type": "application/json"}}


TRANSPORTS = {"query": query, "form": form, "multipart": multipart}
# (transport, spelling): every combination a client may send.
ENCODINGS = [
    *[(t, "brackets") for t in TRANSPORTS],
    *[(t, "repeated") for t in TRANSPORTS],
    *[(t, "indexed") for t in TRANSPORTS],
    ("json", "array"),
    ("json", "joined"),
]


def encode(transport: str, spelling: str, name: str, values: list[str]) -> tuple[str, dict]:
    if transport == "json":
        return (json_array if spelling == "array" else json_joined)([(name, v) for v in values])
    if spelling == "indexed":
        return TRANSPORTS[transport]([(f"{name}[{n}]", v) for n, v in enumerate(values)])
    field = name + "[]" if spelling == "brackets" else name
    return TRANSPORTS[transport]([(field, v) for v in values])


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir) -> Iterator[Services]:
    built = build_services(make_settings(tmp_path_factory.mktemp("arrays"), tiny_model_dir))
    yield built
    built.close()


@pytest.fixture(scope="module")
def api(services) -> Iterator[Api]:
    server = LocalServer(services, "127.0.0.1", 0).start()
    cloudinary.reset_config()
    cloudinary.config(
        cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=server.url, secure=False
    )
    yield Api(server.url)
    cloudinary.reset_config()
    server.stop()


def upload(public_id: str, seed: int, tags: tuple[str, ...] = ()) -> dict:
    return cloudinary.uploader.upload(images.png(64, 64, seed=seed), public_id=public_id, tags=list(tags))


@pytest.mark.parametrize(("transport", "spelling"), ENCODINGS)
def test_delete_resources_deletes_every_public_id_given(api, transport, spelling):
    # Given two assets
    ids = [f"del/{transport}-{spelling}/{n}" for n in ("a", "b")]
    for n, public_id in enumerate(ids):
        upload(public_id, seed=n)
    # When both are deleted in one call
    suffix, request = encode(transport, spelling, "public_ids", ids)
    status, body, _ = api.request("DELETE", f"{ADMIN}/image/upload{suffix}", **request)
    # Then both are reported deleted and both are gone
    assert status == 200, body
    assert body["deleted"] == dict.fromkeys(ids, "deleted")
    for public_id in ids:
        assert api.request("GET", f"{ADMIN}/image/upload/{public_id}")[0] == 404


@pytest.mark.parametrize(("transport", "spelling"), ENCODINGS)
def test_resources_by_asset_ids_returns_every_asset_asked_for(api, transport, spelling):
    asset_ids = [upload(f"byid/{transport}-{spelling}/{n}", seed=10 + n)["asset_id"] for n in range(2)]
    suffix, request = encode(transport, spelling, "asset_ids", asset_ids)
    status, body, _ = api.request("GET", f"{ADMIN}/by_asset_ids{suffix}", **request)
    assert status == 200, body
    assert sorted(r["asset_id"] for r in body["resources"]) == sorted(asset_ids)


@pytest.mark.parametrize(("transport", "spelling"), ENCODINGS)
def test_a_search_filter_on_tags_holds_every_tag_given(api, transport, spelling):
    # Given one asset with both tags and one with only the last (which a last-value-wins parse would find)
    both = upload(f"tagged/{transport}-{spelling}/both", seed=20, tags=("t-one", "t-two"))
    upload(f"tagged/{transport}-{spelling}/last", seed=21, tags=("t-two",))
    # When a search filters on both tags
    suffix, request = encode(transport, spelling, "tags", ["t-one", "t-two"])
    path = f"{ADMIN}/visual_search{suffix}{'&' if suffix else '?'}" + urlencode(
        {"text": "x", "asset_folder": f"tagged/{transport}-{spelling}"}
    )
    status, body, _ = api.request("POST" if transport != "query" else "GET", path, **request)
    # Then only the asset holding both is found
    assert status == 200, body
    assert [r["public_id"] for r in body["resources"]] == [both["public_id"]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_repeated_scalar_takes_its_last_value(api, transport):
    for n in range(3):
        upload(f"scalar/{transport}/{n}", seed=30 + n)
    suffix, request = TRANSPORTS[transport](
        [("prefix", f"scalar/{transport}/"), ("max_results", "1"), ("max_results", "2")]
    )
    status, body, _ = api.request("GET", f"{ADMIN}/image{suffix}", **request)
    assert status == 200, body
    assert len(body["resources"]) == 2


def test_a_signed_call_with_indexed_items_verifies_and_keeps_every_item_in_the_order_sent(api):
    # Given eleven assets, and Go's AddTag for all of them: a form without a Content-Type whose keys are
    # sorted as text (`public_ids[0]`, `[1]`, `[10]`, `[2]`…), signed as `public_ids` joined in that order
    ids = [f"indexed/{n}" for n in range(11)]
    for n, public_id in enumerate(ids):
        upload(public_id, seed=40 + n)
    items = sorted((f"public_ids[{n}]", public_id) for n, public_id in enumerate(ids))
    signed = {"command": "add", "tag": "go", "timestamp": str(int(time.time()))}
    signed["public_ids"] = ",".join(public_id for _, public_id in items)
    body = [("api_key", API_KEY), ("command", "add"), *items, ("signature", sign(signed, API_SECRET))]
    body += [("tag", "go"), ("timestamp", signed["timestamp"])]
    # When it is sent
    status, answer, _ = api.request("POST", f"/v1_1/{CLOUD}/image/tags", auth=False, body=urlencode(body))
    # Then the signature verifies and every asset is tagged, in the order sent
    assert status == 200, answer
    assert answer["public_ids"] == [public_id for _, public_id in items]
    assert all(cloudinary.api.resource(public_id)["tags"] == ["go"] for public_id in ids)
