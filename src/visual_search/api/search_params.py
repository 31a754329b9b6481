"""visual_search's parameters: one pydantic model with real types, declared once. The OpenAPI document
lists it (the GET route declares it as its query) and `read` validates a request's parameters with it,
once, whatever the transport: query string, form, multipart or JSON all arrive as text (bytes for a
file part), a repeated parameter's last value having already won in `params.collect_params`.

Pydantic's errors become Cloudinary-style messages that name the parameter and its range
(`max_results must be an integer from 1 to 500`), made from each field's own bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from visual_search.errors import BadInput

Raw = Mapping[str, str | bytes]


def _comma_list(value: Any) -> tuple[str, ...]:
    return tuple(t.strip() for t in str(value).split(",") if t.strip()) if value else ()


CommaList = Annotated[tuple[str, ...], BeforeValidator(_comma_list)]


class SearchParams(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    text: str | None = Field(None, description="What the images show, in words.")
    image_url: str | None = Field(
        None, description="An http(s) image URL, fetched server-side (public addresses only)."
    )
    image_file: bytes | str | None = Field(
        None, description="The image: a multipart file part, a data: URI, or an http(s) URL (as image_url)."
    )
    image_asset_id: str | None = Field(
        None, description="An indexed asset's asset_id (32 hex): images like it, itself left out."
    )
    max_results: int | None = Field(
        None, ge=1, le=500, description="Hits per page, 1 to 500 (default VS_DEFAULT_MAX_RESULTS, 50)."
    )
    next_cursor: str | None = Field(
        None, description="The previous page's next_cursor, with the same other parameters."
    )
    threshold: float | None = Field(
        None, ge=0.0, le=1.0, allow_inf_nan=False, description="Minimum score, 0 to 1 (default 0)."
    )
    asset_folder: str | None = Field(None, description="Only images under this folder.")
    folder: str | None = Field(None, description="The same as asset_folder.")
    tags: CommaList = Field((), description="Only images with all these tags (a,b).")
    format: CommaList = Field((), description="Only images in one of these formats.")
    context: str | None = Field(
        None, description="Only images whose context holds all these: key=value|key (a key alone: any value)."
    )


FIELDS = tuple(SearchParams.model_fields)


def _message(name: str) -> str:
    """What a bad value of this field is told, from the field's own type and bounds."""
    field = SearchParams.model_fields[name]
    low = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
    if field.annotation == int | None:
        return bound_message(name, int, low, high)
    if field.annotation == float | None:
        return bound_message(name, float, low, high)
    return f"{name} must be text"


def bound_message(name: str, kind: type, low: Any, high: Any) -> str:
    """`max_results must be an integer from 1 to 500`: the message of a number out of its range."""
    return f"{name} must be {'an integer' if kind is int else 'a number'} from {low} to {high}"


def read(params: Raw) -> SearchParams:
    """The request's search parameters, validated once; BadInput naming the first bad one. An empty
    value is not given; bytes are a file part, which only image_file takes (any other field reads
    them as UTF-8 text)."""
    given: dict[str, str | bytes] = {}
    for name in FIELDS:
        value = params.get(name)
        if not value:
            continue
        if isinstance(value, bytes) and name != "image_file":
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(_message(name)) from None
        given[name] = value
    try:
        return SearchParams.model_validate(given)
    except ValidationError as exc:
        raise BadInput(_message(str(exc.errors()[0]["loc"][0]))) from None
