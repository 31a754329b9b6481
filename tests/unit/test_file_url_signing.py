"""The local store's file URLs are signed with HMAC-SHA256 computed from pre-hashed key blocks: it must
give exactly what the standard library's HMAC gives, for every key length and message."""

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from visual_search.storage.local import HmacSha256, LocalImageStore


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
def test_hmac_sha256_matches_the_standard_library(key, message):
    assert HmacSha256(key).digest(message) == hmac.digest(key, message, hashlib.sha256)


def test_hmac_sha256_matches_rfc_4231_case_2():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    digest = HmacSha256(b"Jefe").digest(b"what do ya want for nothing?")
    assert digest.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_one_signer_serves_many_messages_independently(tmp_path):
    # The pre-hashed blocks are copied, never updated: signing one key must not change the next signature.
    store = LocalImageStore(tmp_path, None, b"k" * 32)
    first = store.sign("a.jpg", 100)
    store.sign("b.jpg", 100)
    assert store.sign("a.jpg", 100) == first
    assert first == hmac.digest(b"k" * 32, b"a.jpg\n100", "sha256").hex()[:32]
