import base64
import contextlib
import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visual_search.api.auth import check_basic_auth
from visual_search.api.params import MAX_FORM_FIELDS, collect_params, max_body_bytes, to_search_query
from visual_search.errors import BadInput, Unauthorized
from visual_search.search.service import normalise_text

MAX = 1024 * 1024


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_body_parameters_override_the_query_string():
    params = collect_params(
        {"text": ["from-query"]},
        {"Content-Type": "application/json"},
        json.dumps({"text": "from-body"}).encode(),
        MAX,
    )
    assert params["text"] == "from-body"


def test_multipart_file_parts_arrive_as_bytes_and_fields_as_text():
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="image_file"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\x00\r\n"
        b'--XX\r\nContent-Disposition: form-data; name="max_results"\r\n\r\n7\r\n--XX--\r\n'
    )
    params = collect_params({}, {"content-type": "multipart/form-data; boundary=XX"}, body, MAX)
    assert params == {"image_file": b"\xff\xd8\xff\x00", "max_results": "7"}


def test_bracketed_list_names_from_the_sdks_are_accepted():
    params = collect_params({"tags[]": ["a"]}, {}, b"", MAX)
    assert params == {"tags": "a"}


def test_json_lists_become_comma_separated():
    params = collect_params({}, {"Content-Type": "application/json"}, b'{"tags": ["a", "b"]}', MAX)
    assert to_search_query({**params, "text": "x"}, 50, MAX).filters.tags == ("a", "b")


def test_unsupported_content_type_is_bad_input():
    with pytest.raises(BadInput, match="Content-Type"):
        collect_params({}, {"Content-Type": "text/xml"}, b"<a/>", MAX)


def test_defaults_make_the_first_page_useful_without_optional_parameters():
    query = to_search_query({"text": "red shirt"}, 50, MAX)
    assert (query.max_results, query.threshold, query.next_cursor) == (50, 0.0, None)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "text",
                "image_url",
                "image_file",
                "image_asset_id",
                "max_results",
                "threshold",
                "next_cursor",
                "tags",
                "format",
                "asset_folder",
            ]
        ),
        st.one_of(st.text(max_size=50), st.binary(max_size=50)),
    )
)
def test_any_parameters_parse_or_raise_bad_input(params):
    with contextlib.suppress(BadInput):
        to_search_query(params, 50, MAX)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300),
    st.sampled_from(
        [
            "multipart/form-data; boundary=b",
            "application/json",
            "application/x-www-form-urlencoded",
            "",
            "image/png",
        ]
    ),
)
def test_any_body_parses_or_raises_bad_input(body, content_type):
    with contextlib.suppress(BadInput):
        collect_params({}, {"Content-Type": content_type}, body, MAX)


def test_basic_auth_accepts_the_right_pair_only():
    check_basic_auth(_basic("k", "s"), "k", "s")
    for headers in (
        {},
        _basic("k", "x"),
        _basic("x", "s"),
        {"Authorization": "Bearer t"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"ks").decode()},
    ):
        with pytest.raises(Unauthorized):
            check_basic_auth(headers, "k", "s")


# -- Body bounds: nesting and size refused before the parsers run
def _json_body(body: bytes):
    return collect_params({}, {"Content-Type": "application/json"}, body, MAX)


def test_json_nested_deeper_than_the_limit_is_bad_input_before_parsing():
    with pytest.raises(BadInput, match="nested deeper than 8"):
        _json_body(b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(BadInput, match="nested deeper"):
        _json_body(b'{"a": ' + b"{" * 9 + b"}" * 9 + b"}")


def test_brackets_inside_json_strings_are_not_nesting():
    text = 'a "quoted" [[[[[[[[[[ {{{{{{{{{{ \\\\'
    assert _json_body(json.dumps({"text": text, "tags": ["x", "y"]}).encode())["text"] == text


def test_nesting_within_the_limit_is_parsed():
    assert _json_body(b'{"a": {"b": [[[[[1]]]]]}}')["a"] == '{"b": [[[[[1]]]]]}'  # 7 levels


def test_a_body_over_one_base64_image_and_its_fields_is_a_413_as_on_the_local_server():
    from visual_search.api.errors import status_for
    from visual_search.errors import BodyTooLarge

    limit = max_body_bytes(MAX)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert collect_params({}, form, b"x=" + b"y" * (limit - 2), MAX)["x"]  # at the limit: parsed
    with pytest.raises(BodyTooLarge, match="File size too large") as refused:
        collect_params({}, form, b"x=" + b"y" * (limit - 1), MAX)  # one byte past it
    assert status_for(refused.value) == 413


def test_a_form_with_too_many_fields_is_bad_input():
    body = "&".join(f"f{i}=1" for i in range(MAX_FORM_FIELDS + 1)).encode()
    with pytest.raises(BadInput, match=f"more than {MAX_FORM_FIELDS} fields"):
        collect_params({}, {"Content-Type": "application/x-www-form-urlencoded"}, body, MAX)


@pytest.mark.parametrize(
    ("query", "content_type", "body"),
    [
        ({"text": ["first", "last"]}, "", b""),
        ({}, "application/x-www-form-urlencoded", b"text=first&text=last"),
        ({}, "application/json", b'{"text": "first", "text": "last"}'),
        (
            {},
            "multipart/form-data; boundary=XX",
            b'--XX\r\nContent-Disposition: form-data; name="text"\r\n\r\nfirst\r\n'
            b'--XX\r\nContent-Disposition: form-data; name="text"\r\n\r\nlast\r\n--XX--\r\n',
        ),
    ],
)
def test_a_repeated_parameter_takes_its_last_value_on_every_transport(query, content_type, body):
    assert collect_params(query, {"Content-Type": content_type}, body, MAX)["text"] == "last"


def test_a_json_null_is_an_absent_parameter_not_the_text_null():
    params = collect_params({}, {"Content-Type": "application/json"}, b'{"text": null, "tags": null}', MAX)
    assert params == {}
    params = collect_params(
        {"text": ["from-query"]}, {"Content-Type": "application/json"}, b'{"text": null}', MAX
    )
    assert to_search_query(params, 50, MAX).text == "from-query"


def test_folder_and_tag_filters_are_normalised_and_bounded():
    nfd = unicodedata.normalize("NFD", "été")
    query = to_search_query({"text": "x", "asset_folder": f" /{nfd}/ ", "tags": f"{nfd}, a ,a"}, 50, MAX)
    assert query.filters.folder == "été"
    assert query.filters.tags == ("été", "a")
    assert to_search_query({"text": "x", "asset_folder": "/"}, 50, MAX).filters.folder is None
    with pytest.raises(BadInput, match="reserved"):
        to_search_query({"text": "x", "asset_folder": "_vs/renditions"}, 50, MAX)
    with pytest.raises(BadInput, match="1000"):
        to_search_query({"text": "x", "tags": ",".join(map(str, range(1001)))}, 50, MAX)


@given(st.text(max_size=60))
def test_query_text_normalisation_is_idempotent_and_blind_to_spacing_and_unicode_form(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert normalise_text(f"  {unicodedata.normalize('NFD', text)}\t ") == once
