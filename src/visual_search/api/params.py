"""Request parsing: the same parameters from a GET query string, a form, a multipart body or JSON.

The SDKs differ in how they send a search: Python POSTs multipart with `image_file` as a file part,
Node sends a data URI string, Java GETs everything in the query string. All arrive here as one dict
of strings or bytes, then become a validated SearchQuery.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

import multipart
from aws_lambda_powertools.utilities.data_classes.common import CaseInsensitiveDict

from visual_search.api import search_params
from visual_search.assets import names
from visual_search.errors import BadInput, BodyTooLarge
from visual_search.index.port import Filters
from visual_search.search.service import SearchQuery, decode_data_uri

# Fields per multipart or form body: an array is one field per item as the SDKs send it (Python's and
# Node's multipart, Java's form `public_ids[]=…`), and a call takes up to `MAX_IDS_PER_CALL` ids.
MAX_PARTS = names.MAX_IDS_PER_CALL + 32
# Cloudinary's array parameters: every value is kept (joined with ",", as the SDKs sign a list) whether
# the client spells the name `name[]` (Node, Python, Java), numbers its items `name[0]`, `name[1]`… (Go's
# `api.StructToParams` of a `[]string`) or repeats `name`; any other repeated name keeps its last value.
# No item of these holds a comma (`names` refuses one in a public_id or a tag).
ARRAYS = frozenset({"public_ids", "asset_ids", "tags", "format"})
# Items are joined in the order they arrive, which is the order a client signs them in: Go sorts its
# keys as text (`[0]`, `[1]`, `[10]`, `[2]`…) both to sign and to send.
_ARRAY_ITEM = re.compile(r"\[\d*\]$")


class FilePart(bytes):
    """A multipart file's bytes, with the file name the client gave (Cloudinary's `use_filename`)."""

    filename: str

    def __new__(cls, data: bytes, filename: str) -> FilePart:
        part = super().__new__(cls, data)
        part.filename = filename
        return part


# -- Body bounds. Every parsed body (form, multipart, JSON) is first bounded in size; JSON also in
# nesting, checked on the bytes before the parser runs (the parser recurses: 100,000 levels was a 500).
# The upload route's signature is in the body, so the body must be parsed to check it: these bounds
# make that parse cheap, and nothing else (data URI, image) is decoded before the signature is verified.
MAX_JSON_DEPTH = 8  # our bodies are flat objects whose values may be lists; 8 leaves room for SDK extras
MAX_FORM_FIELDS = names.MAX_IDS_PER_CALL + 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')


def max_body_bytes(max_image_bytes: int) -> int:
    """The largest body any route parses: one image as base64 (a data URI in a form or JSON field, 4/3 of
    its bytes) plus 64 KB of other fields and multipart framing."""
    return (max_image_bytes * 4) // 3 + 64 * 1024


def check_json_depth(body: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit`, without parsing it: brackets outside strings, counted."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    depth = 0
    for token in re.finditer(rb"[\[\]{}]", _JSON_STRING.sub(b'""', body)):
        depth += 1 if token.group() in (b"[", b"{") else -1
        if depth > limit:
            raise BadInput(f"JSON body is nested deeper than {limit} levels")


def raw_body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except ValueError:
            raise BadInput("request body is not valid base64") from None
    return body.encode("utf-8")


def collect_params(
    query: Mapping[str, list[str]], headers: Mapping[str, str], body: bytes, max_bytes: int
) -> dict[str, str | bytes]:
    """Merge query-string and body parameters (the body wins). Values are str, or bytes for files; the
    values of a repeated `name[]` (a list, as the SDKs send one) are joined with ",", as they sign it."""
    limit = max_body_bytes(max_bytes)
    if len(body) > limit:  # the local server refuses it while streaming; API Gateway hands it over whole
        raise BodyTooLarge(f"File size too large. Got {len(body)} bytes. Maximum is {limit:,}.")
    content_type = CaseInsensitiveDict(headers).get("content-type", "")
    return merge(query, _body_params(content_type, body, max_bytes) if body else {})


def merge(query: Mapping[str, list[str]], body_params: Mapping[str, str | bytes]) -> dict[str, str | bytes]:
    """Query-string and body parameters as one dict (the body wins), every text checked, `[]` and `[0]`
    dropped: an array's items join its earlier values (an array given both as `name[]` and `name` in one
    place keeps the values of both)."""
    params: dict[str, str | bytes] = {}
    for source in ({k: _one(k, v) for k, v in query.items() if v}, body_params):
        given: dict[str, str | bytes] = {}
        for name, value in source.items():
            check_text(name)
            if isinstance(value, str):
                check_text(value)
            bare = _ARRAY_ITEM.sub("", name)
            earlier = given.get(bare)
            if isinstance(earlier, str) and isinstance(value, str) and (bare in ARRAYS or bare != name):
                value = f"{earlier},{value}"
            given[bare] = value
        params.update(given)
    return params


def check_text(value: str) -> str:
    """`value` unless it holds a lone surrogate, which JSON's `\\ud800` escape can carry into a str
    although no UTF-8 can encode it (every later encode, a signature's or a store key's, would fail)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput("a parameter is not valid Unicode text (it holds a lone surrogate)") from None
    return value


def _body_params(content_type: str, body: bytes, max_bytes: int) -> dict[str, str | bytes]:
    mime, options = multipart.parse_options_header(content_type)
    if mime == "multipart/form-data":
        return _multipart(body, options.get("boundary", ""), max_bytes)
    if mime == "application/json":
        return _json(body)
    if mime in ("application/x-www-form-urlencoded", ""):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("form body is not UTF-8") from None
        try:
            # strict: a percent-escaped byte sequence that is not UTF-8 is refused, not replaced by U+FFFD
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict")
        except UnicodeDecodeError:
            raise BadInput("form body is not UTF-8 (after percent-decoding)") from None
        except ValueError:
            raise BadInput(f"form body has more than {MAX_FORM_FIELDS} fields") from None
        return {k: _one(k, v) for k, v in fields.items()}
    raise BadInput(f"unsupported Content-Type {mime!r}: use a query string, a form, multipart or JSON")


def _multipart(body: bytes, boundary: str, max_bytes: int) -> dict[str, str | bytes]:
    if not boundary:
        raise BadInput("multipart body without a boundary")
    parser = multipart.MultipartParser(
        io.BytesIO(body),
        boundary,
        content_length=len(body),
        part_limit=MAX_PARTS,
        partsize_limit=max_bytes,
        spool_limit=max_bytes + 1,
        memory_limit=max_bytes + 1024 * 1024,
        disk_limit=0,
    )
    try:
        return multipart_fields(
            (part.name, FilePart(part.raw, part.filename) if part.filename is not None else part.value)
            for part in parser
        )
    except multipart.MultipartError as exc:
        if "segment count" in str(exc):
            raise BadInput(f"multipart body has more than {MAX_PARTS} parts") from None
        raise BadInput(f"malformed multipart body: {exc}") from None
    except UnicodeDecodeError:  # a text part (or a part's name) that is not in the body's charset
        raise BadInput("malformed multipart body: a text field is not UTF-8") from None


def multipart_fields(parts: Iterable[tuple[str, str | bytes]]) -> dict[str, str | bytes]:
    """A multipart body's parts, in order, as parameters: a repeated array's text parts (`name[]`, or
    a name in ARRAYS) join their values with ",", any other repeated name keeps its last value."""
    out: dict[str, str | bytes] = {}
    for name, value in parts:
        earlier = out.get(name)
        if isinstance(earlier, str) and isinstance(value, str):
            value = _one(name, [earlier, value])
        out[name] = value
    return out


def _one(name: str, values: list[str]) -> str:
    """One value for a field given more than once: an array's items joined, else the last."""
    return ",".join(values) if name.endswith("[]") or name in ARRAYS else values[-1]


def _json(body: bytes) -> dict[str, str | bytes]:
    check_json_depth(body)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadInput("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadInput("JSON body must be an object")
    out: dict[str, str | bytes] = {}
    for key, value in data.items():
        if value is None:  # null is "not given", as an absent form field; never the text "null"
            continue
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def to_search_query(
    params: Mapping[str, str | bytes], default_max_results: int, max_bytes: int
) -> SearchQuery:
    """A validated SearchQuery from the parameters `search_params.SearchParams` declares."""
    given = search_params.read(params)
    image_url, image_bytes = given.image_url, None
    file_value = given.image_file
    if isinstance(file_value, bytes):
        image_bytes = file_value
    elif isinstance(file_value, str):
        if file_value.startswith(("http://", "https://")):
            if image_url is not None:
                raise BadInput("give image_url or an image_file URL, not both")
            image_url = file_value
        else:
            image_bytes = decode_data_uri(file_value, max_bytes)
    asset_id = given.image_asset_id
    if asset_id is not None and not _is_asset_id(asset_id):
        raise BadInput("image_asset_id must be 32 lowercase hexadecimal characters")
    folder = names.folder_filter(given.asset_folder or given.folder or "")
    return SearchQuery(
        text=given.text,
        image_url=image_url,
        image_bytes=image_bytes,
        asset_id=asset_id,
        max_results=default_max_results if given.max_results is None else given.max_results,
        next_cursor=given.next_cursor,
        threshold=0.0 if given.threshold is None else given.threshold,
        filters=Filters(
            folder=folder or None,
            tags=names.tags(given.tags),
            formats=tuple(f.lower() for f in given.format),
            context=names.context_filter(given.context or ""),
        ),
    )


def text(params: Mapping[str, str | bytes], name: str) -> str | None:
    """A text parameter; None when absent or empty."""
    value = params.get(name)
    if not value:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"{name} must be text") from None
    return value


def integer(params: Mapping[str, str | bytes], name: str, default: int, low: int, high: int) -> int:
    """An integer parameter within [low, high]; `default` when absent."""
    return _bounded(params, name, int, low, high, default)


def number(params: Mapping[str, str | bytes], name: str, default: float | None, low: float, high: float):
    """An optional number parameter within [low, high]; `default` when absent."""
    return _bounded(params, name, float, low, high, default)


def _bounded(params, name, kind, low, high, default):
    raw = text(params, name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:  # also refuses NaN
        raise BadInput(search_params.bound_message(name, kind, low, high))
    return value


def id_list(params: Mapping[str, str | bytes], name: str) -> list[str]:
    """The items of an array parameter as `merge` left it (`a,b`), in order, blanks dropped."""
    value = params.get(name)
    if not isinstance(value, str):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


def _is_asset_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)
