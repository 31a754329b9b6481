"""One suite for every ImageStore: the local folder and S3 (through moto)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import urllib3
from moto import mock_aws

from visual_search.errors import ImageTooLarge
from visual_search.storage.local import LocalImageStore
from visual_search.storage.port import InvalidKey, KeyConflict, ObjectNotFound
from visual_search.storage.s3 import S3ImageStore

LIMIT = 1000


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        yield LocalImageStore(tmp_path, "http://127.0.0.1:9", b"k" * 32)
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="images")
        yield S3ImageStore("images", LIMIT, client=client)


def test_put_then_get_returns_the_same_bytes(store):
    store.put("a/b/photo one.jpg", b"\xff\xd8data")
    obj = store.get("a/b/photo one.jpg")
    assert obj.data == b"\xff\xd8data"
    assert obj.key == "a/b/photo one.jpg"
    assert obj.last_modified is not None


def test_put_replaces(store):
    store.put("k.jpg", b"old")
    store.put("k.jpg", b"new")
    assert store.get("k.jpg").data == b"new"


def test_missing_key_is_object_not_found(store):
    with pytest.raises(ObjectNotFound):
        store.get("nope.jpg")


def test_delete_removes_and_is_idempotent(store):
    store.put("k.jpg", b"x")
    store.delete("k.jpg")
    store.delete("k.jpg")
    with pytest.raises(ObjectNotFound):
        store.get("k.jpg")


def test_list_returns_keys_under_a_prefix(store):
    for key in ("a/1.jpg", "a/2.jpg", "b/3.jpg", "ab.jpg"):
        store.put(key, b"x")
    assert sorted(store.list("a/")) == ["a/1.jpg", "a/2.jpg"]
    assert sorted(store.list()) == ["a/1.jpg", "a/2.jpg", "ab.jpg", "b/3.jpg"]


@pytest.mark.parametrize(
    "key", ["", "../escape.jpg", "/abs.jpg", "a//b.jpg", "a/./b.jpg", "nul\x00.jpg", "x" * 1025]
)
def test_invalid_keys_are_refused(store, key):
    with pytest.raises(InvalidKey):
        store.put(key, b"x")


def test_url_is_signed_and_names_the_key(store):
    store.put("dir/pic.jpg", b"x")
    urls = store.urls("http://127.0.0.1:9")
    for key in ("dir/pic.jpg", "dir/other.jpg"):  # one response's URLs, made by one maker
        url = urls(key)
        assert key in urllib3.util.parse_url(url).path
        assert "ignature" in url  # signature= (local) or X-Amz-Signature= (S3)


def test_s3_refuses_objects_over_the_byte_limit(tmp_path):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="images")
        store = S3ImageStore("images", LIMIT, client=client)
        client.put_object(Bucket="images", Key="big.jpg", Body=b"x" * (LIMIT + 1))
        with pytest.raises(ImageTooLarge):
            store.get("big.jpg")


def test_head_tells_whether_an_object_is_there_now(store):
    assert store.head("k.jpg") is None
    store.put("k.jpg", b"12345")
    info = store.head("k.jpg")
    assert (info.key, info.size) == ("k.jpg", 5)
    assert info.last_modified is not None
    store.delete("k.jpg")
    assert store.head("k.jpg") is None


def test_scan_lists_objects_under_a_prefix_in_key_order_with_sizes(store):
    for key, body in (("a/2.jpg", b"22"), ("a/1.jpg", b"1"), ("b/3.jpg", b"333")):
        store.put(key, body)
    assert [(i.key, i.size) for i in store.scan("a/")] == [("a/1.jpg", 1), ("a/2.jpg", 2)]


def test_scan_is_in_byte_order_across_folders_and_resumes_after_a_key(store):
    # A folder's files and its subfolders interleave in byte order ("a/b/..." < "a/c.jpg" < "a/é.jpg").
    for key in ("a/é.jpg", "a/c.jpg", "a/b/z.jpg", "a.jpg", "b.jpg", "a/b.jpg"):
        store.put(key, b"x")
    expected = ["a.jpg", "a/b.jpg", "a/b/z.jpg", "a/c.jpg", "a/é.jpg", "b.jpg"]
    assert list(store.list()) == expected
    assert [i.key for i in store.scan("a/", start_after="a/b/z.jpg")] == ["a/c.jpg", "a/é.jpg"]
    assert [i.key for i in store.scan("", start_after="a/gone.jpg")] == ["a/é.jpg", "b.jpg"]


@pytest.mark.parametrize("key", [".upload-abc.jpg", "dir/.upload-x.png", "tmp1234.jpg"])
def test_no_key_is_hidden_as_a_staging_name_every_key_put_is_listed_and_deletable(store, key):
    store.put(key, b"x")
    store.put("other.jpg", b"y")  # a second write, whose staging must leave nothing behind
    assert sorted(store.list()) == sorted([key, "other.jpg"])
    store.delete(key)
    assert list(store.list()) == ["other.jpg"]


def test_nothing_a_write_stages_is_listed_outside_the_reserved_prefix(store):
    for i in range(3):
        store.put(f"f/{i}.jpg", b"x" * i)
    assert sorted(store.list()) == ["f/0.jpg", "f/1.jpg", "f/2.jpg"]


def test_put_if_absent_writes_only_where_nothing_is(store):
    assert store.put_if_absent("claims/one", b"first") is True
    assert store.put_if_absent("claims/one", b"second") is False
    assert store.get("claims/one").data == b"first"
    store.delete("claims/one")
    assert store.put_if_absent("claims/one", b"third") is True


def test_of_concurrent_put_if_absent_calls_one_wins(store):
    barrier = threading.Barrier(4)

    def claim(i: int) -> bool:
        barrier.wait()
        return store.put_if_absent("claims/race", str(i).encode())

    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(claim, range(4)))
    assert won.count(True) == 1
    assert store.get("claims/race").data == str(won.index(True)).encode()


@pytest.mark.parametrize(
    "keys", [("x.png/y", "x.png"), ("x.png", "x.png/y")], ids=["folder-first", "file-first"]
)
def test_a_key_that_is_also_a_folder_is_refused_or_both_objects_live(store, keys):
    store.put(keys[0], b"first")
    try:
        store.put(keys[1], b"second")
    except KeyConflict:  # a BadInput: the API answers 400
        assert store.head(keys[1]) is None
        with pytest.raises(ObjectNotFound):
            store.get(keys[1])
    else:
        assert store.get(keys[1]).data == b"second"
    store.delete(keys[1])  # never an error, whichever way it went
    assert store.get(keys[0]).data == b"first"


def test_metadata_is_kept_with_the_object_and_replaced_with_it(store):
    # Given an object stored with metadata
    store.put("m/a.jpg", b"one", metadata={"vs-asset-id": "0" * 32, "vs-tags": "x"})
    # Then its reads return it
    assert store.get("m/a.jpg").metadata == {"vs-asset-id": "0" * 32, "vs-tags": "x"}
    assert store.metadata("m/a.jpg") == {"vs-asset-id": "0" * 32, "vs-tags": "x"}
    # And an object stored again without metadata has none; a deleted one has nothing to read
    store.put("m/a.jpg", b"two")
    assert store.metadata("m/a.jpg") == {}
    store.put("m/a.jpg", b"three", metadata={"vs-asset-id": "1" * 32})
    store.delete("m/a.jpg")
    assert store.metadata("m/a.jpg") is None
    assert list(store.list("m/")) == []
    assert list(store.list("")) == []
