"""visual_search's parameters, declared once. `SearchParams` is what the OpenAPI document lists (the GET
route declares it as its query), and `read` parses a request's parameters with the rule each field
carries, whatever the transport (query string, form, multipart, JSON: all arrive as text, or bytes for a
file part; a repeated parameter's last value already won in `params.collect_params`).

Fields are typed as lists of strings on purpose: Powertools validates a declared query model before the
route runs, and its generic 400 would replace the messages below, which name the parameter and its range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from visual_search.errors import BadInput

Raw = Mapping[str, str | bytes]


@dataclass(frozen=True)
class Text:
    def read(self, params: Raw, name: str) -> str | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"{name} must be text") from None
        return value


@dataclass(frozen=True)
class FileOrText:
    """A file part (bytes), or text (a URL or a data: URI)."""

    def read(self, params: Raw, name: str) -> str | bytes | None:
        value = params.get(name)
        return value if value else None


@dataclass(frozen=True)
class Integer:
    low: int
    high: int

    def read(self, params: Raw, name: str) -> int | None:
        raw = Text().read(params, name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise BadInput(f"{name} must be an integer from {self.low} to {self.high}") from None
        if not self.low <= value <= self.high:
            raise BadInput(f"{name} must be an integer from {self.low} to {self.high}")
        return value


@dataclass(frozen=True)
class Number:
    low: float
    high: float

    def read(self, params: Raw, name: str) -> float | None:
        raw = Text().read(params, name)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            raise BadInput(f"{name} must be a number from {self.low} to {self.high}") from None
        if not self.low <= value <= self.high:  # also refuses NaN
            raise BadInput(f"{name} must be a number from {self.low} to {self.high}")
        return value


@dataclass(frozen=True)
class CommaList:
    def read(self, params: Raw, name: str) -> tuple[str, ...]:
        raw = Text().read(params, name)
        return tuple(t.strip() for t in raw.split(",") if t.strip()) if raw else ()


Param = list[str] | None


class SearchParams(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: Annotated[Param, Text()] = Field(None, description="What the images show, in words.")
    image_url: Annotated[Param, Text()] = Field(
        None, description="An http(s) image URL, fetched server-side (public addresses only)."
    )
    image_file: Annotated[Param, FileOrText()] = Field(
        None, description="The image: a multipart file part, a data: URI, or an http(s) URL (as image_url)."
    )
    image_asset_id: Annotated[Param, Text()] = Field(
        None, description="An indexed asset's asset_id (32 hex): images like it, itself left out."
    )
    max_results: Annotated[Param, Integer(1, 500)] = Field(
        None, description="Hits per page, 1 to 500 (default VS_DEFAULT_MAX_RESULTS, 50)."
    )
    next_cursor: Annotated[Param, Text()] = Field(
        None, description="The previous page's next_cursor, with the same other parameters."
    )
    threshold: Annotated[Param, Number(0.0, 1.0)] = Field(
        None, description="Minimum score, 0 to 1 (default 0)."
    )
    asset_folder: Annotated[Param, Text()] = Field(None, description="Only images under this folder.")
    folder: Annotated[Param, Text()] = Field(None, description="The same as asset_folder.")
    tags: Annotated[Param, CommaList()] = Field(None, description="Only images with all these tags (a,b).")
    format: Annotated[Param, CommaList()] = Field(None, description="Only images in one of these formats.")
    context: Annotated[Param, Text()] = Field(
        None, description="Only images whose context holds all these: key=value|key (a key alone: any value)."
    )


def _rule(metadata: list[Any]) -> Any:
    (rule,) = [m for m in metadata if hasattr(m, "read")]
    return rule


# Each field's rule, found once rather than on every search.
RULES = tuple((name, _rule(field.metadata)) for name, field in SearchParams.model_fields.items())


def read(params: Raw) -> dict[str, Any]:
    """Every declared parameter, parsed by its field's rule (None or () when absent)."""
    return {name: rule.read(params, name) for name, rule in RULES}
