import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visual_search.errors import InvalidCursor
from visual_search.search.cursor import CursorCodec, CursorState, query_key

CODEC = CursorCodec(b"k" * 32)
KEY = query_key({"text": "red shirt", "threshold": 0.2})

states = st.builds(
    CursorState,
    query_key=st.just(KEY),
    score=st.floats(min_value=-1, max_value=1, allow_nan=False),
    asset_id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    served=st.integers(min_value=0, max_value=10_000),
    # OpenSearch point-in-time ids are base64 strings of a few hundred characters
    snapshot=st.none()
    | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", max_size=1200),
)


@given(states)
def test_a_cursor_round_trips_exactly(state):
    assert CODEC.decode(CODEC.encode(state), KEY) == state


@given(states)
def test_a_cursor_is_url_safe(state):
    token = CODEC.encode(state)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@given(st.text(max_size=2000))
def test_any_string_decodes_or_raises_invalid_cursor_never_anything_else(garbage):
    with contextlib.suppress(InvalidCursor):
        CODEC.decode(garbage, KEY)


@given(st.binary(max_size=600))
def test_any_bytes_in_base64url_raise_invalid_cursor(raw):
    token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor):
        CODEC.decode(token, KEY)


@given(states, st.data())
def test_flipping_any_character_is_detected(state, data):
    token = CODEC.encode(state)
    i = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    replacement = data.draw(st.sampled_from("AQgw-_"))
    forged = token[:i] + replacement + token[i + 1 :]
    if forged != token:
        with pytest.raises(InvalidCursor):
            CODEC.decode(forged, KEY)


@given(states, st.integers(min_value=1, max_value=40))
def test_a_truncated_cursor_is_refused(state, cut):
    token = CODEC.encode(state)
    with pytest.raises(InvalidCursor):
        CODEC.decode(token[: max(0, len(token) - cut)], KEY)


def test_a_cursor_from_another_query_is_refused_with_a_clear_message():
    token = CODEC.encode(CursorState(KEY, 0.5, "a" * 32, 50))
    with pytest.raises(InvalidCursor, match="different query"):
        CODEC.decode(token, query_key({"text": "blue shirt", "threshold": 0.2}))


def test_a_cursor_signed_with_another_secret_is_refused():
    token = CursorCodec(b"x" * 32).encode(CursorState(KEY, 0.5, "a" * 32, 50))
    with pytest.raises(InvalidCursor, match="not valid"):
        CODEC.decode(token, KEY)


def test_a_cursor_of_an_old_version_says_so():
    token = CODEC.encode(CursorState(KEY, 0.5, "a" * 32, 50))
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[0] = 0
    stale = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(InvalidCursor, match="version 0"):
        CODEC.decode(stale, KEY)


def test_a_cursor_without_a_snapshot_has_the_same_form_as_before_snapshots_existed():
    token = CODEC.encode(CursorState(KEY, 0.5, "a" * 32, 10))
    payload = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))[17:]
    assert payload == f'["{KEY}",0.5,"{"a" * 32}",10]'.encode()


def test_query_key_ignores_parameter_order():
    assert query_key({"a": 1, "b": [1, 2]}) == query_key({"b": [1, 2], "a": 1})


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        CursorCodec(b"short")
