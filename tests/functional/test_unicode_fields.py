"""Every text field on every route and transport is valid Unicode or a 400 — never a 500, with or without
credentials.

Found from outside: a lone surrogate in a JSON body (`"\\ud800"`) or a multipart text field that is not
UTF-8 crashed `/image/upload` and `/image/destroy` before authentication (the signature's encode, the part's
decode), and `resources/image` and `visual_search` with credentials. The fuzzer below generates what
found it (surrogates; overlong, truncated and surrogate-encoding UTF-8; stray continuation bytes) in every
field of every route, on every transport, rather than random bytes alone. Its budget is
`VS_UNICODE_FUZZ_EXAMPLES` (150 here; `make reliability` runs 2,000).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import API_KEY, CLOUD

BASE = f"/v1_1/{CLOUD}"
# (method, path, the fields it reads): every route that reads parameters.
ROUTES = [
    ("POST", f"{BASE}/image/upload", ["public_id", "folder", "tags", "context", "api_key", "timestamp"]),
    ("POST", f"{BASE}/image/destroy", ["public_id", "api_key", "timestamp", "signature"]),
    ("GET", f"{BASE}/resources/visual_search", ["text", "image_url", "next_cursor", "tags", "folder"]),
    ("POST", f"{BASE}/resources/visual_search", ["text", "image_asset_id", "next_cursor", "tags"]),
    ("GET", f"{BASE}/resources/image", ["prefix", "next_cursor", "max_results", "direction"]),
    ("GET", f"{BASE}/resources/image/upload", ["prefix", "next_cursor"]),
    ("GET", f"{BASE}/resources/by_asset_ids", ["asset_ids"]),
    ("DELETE", f"{BASE}/resources/image/upload", ["public_ids", "prefix"]),
    ("GET", f"{BASE}/duplicates", ["threshold", "next_cursor"]),
]
# Byte sequences no UTF-8 decoder may accept: a lone surrogate encoded (CESU), overlong '/', a stray
# continuation byte, a truncated sequence, bytes never used in UTF-8, a code point past U+10FFFF.
INVALID_UTF8 = [b"\xed\xa0\x80", b"\xc0\xaf", b"\x80", b"\xe2\x82", b"\xff", b"\xfe", b"\xf4\x90\x80\x80"]
LONE_SURROGATES = ["\ud800", "\udfff", "a\udc00b"]


def signed_fields() -> dict[str, str]:
    # A plausible unsigned-looking Upload API request: the server must refuse it without crashing.
    return {"api_key": API_KEY, "timestamp": str(int(time.time())), "signature": "0" * 40}


def send(api, method: str, path: str, transport: str, fields: dict[str, bytes | str], auth: bool):
    """One request carrying `fields` (str values are sent as UTF-8 where the transport can carry them,
    bytes as they are) over `transport`: query, form, multipart or json."""
    headers = dict(api.auth) if auth else {}
    raw = {k: v if isinstance(v, bytes) else v.encode("utf-8", "surrogatepass") for k, v in fields.items()}
    body: bytes | None = None
    if transport == "query":
        path += "?" + "&".join(
            f"{quote_from_bytes(k.encode())}={quote_from_bytes(v)}" for k, v in raw.items()
        )
    elif transport == "form":
        body = b"&".join(
            quote_from_bytes(k.encode()).encode() + b"=" + quote_from_bytes(v).encode()
            for k, v in raw.items()
        )
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif transport == "multipart":
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v + b"\r\n"
            for k, v in raw.items()
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    else:  # json: surrogates as \u escapes (what JSON allows); invalid bytes as they are
        items = []
        for k, v in fields.items():
            value = json.dumps(v) if isinstance(v, str) else b'"' + v + b'"'
            items.append(
                json.dumps(k).encode() + b":" + (value.encode() if isinstance(value, str) else value)
            )
        body = b"{" + b",".join(items) + b"}"
        headers["Content-Type"] = "application/json"
    response = api.http.request(method, api.base + path, body=body, headers=headers)
    return response.status, response.data


def assert_clear_error(status: int, data: bytes, expected: set[int]) -> None:
    assert status in expected, (status, data[:300])
    body = json.loads(data)
    assert set(body) == {"error"}, body
    assert body["error"]["message"]


# -- the findings, as they were reported


@pytest.mark.parametrize("route", ["upload", "destroy"])
@pytest.mark.parametrize("surrogate", LONE_SURROGATES)
def test_a_lone_surrogate_in_an_unauthenticated_upload_api_json_body_is_a_400(api, route, surrogate):
    fields = {**signed_fields(), "public_id": surrogate}
    status, data = send(api, "POST", f"{BASE}/image/{route}", "json", fields, auth=False)
    assert_clear_error(status, data, {400})


@pytest.mark.parametrize("route", ["upload", "destroy"])
@pytest.mark.parametrize("invalid", INVALID_UTF8)
def test_invalid_utf8_in_an_unauthenticated_multipart_field_is_a_400(api, route, invalid):
    fields = {**signed_fields(), "public_id": b"x" + invalid}
    status, data = send(api, "POST", f"{BASE}/image/{route}", "multipart", fields, auth=False)
    assert_clear_error(status, data, {400})


@pytest.mark.parametrize(("method", "path", "names"), ROUTES)
@pytest.mark.parametrize("transport", ["query", "form", "multipart", "json"])
def test_a_lone_surrogate_or_invalid_utf8_in_any_field_of_any_route_is_a_400(
    api, method, path, names, transport
):
    for name in names:
        for value in [*LONE_SURROGATES, *(b"a" + b for b in INVALID_UTF8)]:
            if transport in ("query", "form", "multipart") and isinstance(value, str):
                value = value.encode("utf-8", "surrogatepass")  # the only way these transports carry one
            status, data = send(api, method, path, transport, {name: value}, auth=True)
            assert_clear_error(status, data, {400})


def test_a_path_parameter_that_is_not_utf8_is_a_400(api):
    for invalid in INVALID_UTF8:
        path = f"{BASE}/resources/image/upload/x{quote_from_bytes(invalid)}"
        response = api.http.request("GET", api.base + path, headers=api.auth)
        assert_clear_error(response.status, response.data, {400})


def test_valid_non_ascii_text_still_works_on_every_transport(api):
    for transport in ("query", "form", "multipart", "json"):
        status, data = send(
            api,
            "POST" if transport != "query" else "GET",
            f"{BASE}/resources/visual_search",
            transport,
            {"text": "chaussure rouge été — 赤い靴 🥿"},
            auth=True,
        )
        assert status == 200, data[:300]


# -- the fuzzer


hostile_text = st.one_of(
    st.text(alphabet=st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
    st.builds(
        lambda a, s, b: a + s + b, st.text(max_size=5), st.sampled_from(LONE_SURROGATES), st.text(max_size=5)
    ),
)
hostile_bytes = st.builds(
    lambda a, bad, b: a.encode() + bad + b.encode(),
    st.text(max_size=5),
    st.sampled_from(INVALID_UTF8) | st.binary(min_size=1, max_size=4).filter(lambda b: not _is_utf8(b)),
    st.text(max_size=5),
)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(
    route=st.sampled_from(ROUTES),
    transport=st.sampled_from(["query", "form", "multipart", "json"]),
    auth=st.booleans(),
    data=st.data(),
)
@settings(
    max_examples=int(os.environ.get("VS_UNICODE_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_unicode_in_every_field_of_every_route_never_gets_a_server_error(
    api, route, transport, auth, data
):
    method, path, names = route
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names), unique=True))
    fields: dict[str, bytes | str] = {}
    for name in chosen:
        if transport == "json":
            fields[name] = data.draw(hostile_text | hostile_bytes)
        else:
            fields[name] = data.draw(
                hostile_bytes | hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass"))
            )
    status, body = send(api, method, path, transport, fields, auth)
    assert status < 500, (method, path, transport, fields, body[:300])
    assert set(json.loads(body)) == {"error"}
