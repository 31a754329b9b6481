"""The local store's file URLs are signed with keyed BLAKE2b from copies of one keyed hash: every URL a
response makes must verify, whatever its key, and signing one key must not change the next signature."""

import hashlib
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from visual_search.storage.local import LocalImageStore


def test_one_signer_serves_many_messages_independently(tmp_path):
    # The keyed hash is copied, never updated: signing one key must not change the next signature.
    store = LocalImageStore(tmp_path, None, b"k" * 32)
    first = store.sign("a.jpg", 100)
    store.sign("b.jpg", 100)
    assert store.sign("a.jpg", 100) == first
    assert first == hashlib.blake2b(b"a.jpg\n100", key=b"k" * 32, digest_size=16).hexdigest()


def test_a_signing_key_longer_than_blake2b_takes_is_hashed_to_one_it_takes(tmp_path):
    long_key = b"k" * 100
    store = LocalImageStore(tmp_path, None, long_key)
    expected = hashlib.blake2b(b"a.jpg\n100", key=hashlib.sha256(long_key).digest(), digest_size=16)
    assert store.sign("a.jpg", 100) == expected.hexdigest()


@given(key=st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=80))
def test_every_url_a_response_makes_verifies_for_its_key(tmp_path_factory, key):
    # The URL maker signs with a precomputed tail; `verify` (what /files checks) signs the key again.
    store = LocalImageStore(tmp_path_factory.mktemp("store"), None, b"k" * 32)
    url = store.urls("http://h:1", now=1_000.0)(key)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert urllib.parse.unquote(urllib.parse.urlsplit(url).path.removeprefix("/files/")) == key
    assert store.verify(key, query["expires"][0], query["signature"][0], now=1_000.0)
    assert not store.verify(key + "x", query["expires"][0], query["signature"][0], now=1_000.0)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])) | st.text(alphabet="abz09_.~/-%+ é?#"))
def test_a_url_names_its_key_as_quote_spells_it(tmp_path_factory, key):
    # Keys quote() would leave unchanged skip it; every other key must still be quoted.
    store = LocalImageStore(tmp_path_factory.mktemp("store"), None, b"k" * 32)
    url = store.urls("http://h:1")(key)
    assert url.startswith("http://h:1/files/" + urllib.parse.quote(key) + "?expires=")
