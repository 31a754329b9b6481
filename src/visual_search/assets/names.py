"""Names given through the API — public_ids, folders, tags and context — normalised and validated as
Cloudinary does, so one name is one asset and every name we accept is also one Cloudinary accepts.

Cloudinary's rules (https://cloudinary.com/documentation/ts_permitted_naming_conventions, tags:
https://cloudinary.com/documentation/tags), and where we differ:
- a public_id is 1 to 255 characters; leading and trailing whitespace and slashes are trimmed;
- `? & # \\ % < > +` are forbidden; a folder may not be `v` followed by digits (a version in a URL);
- Cloudinary replaces other special characters with `_`; we keep them instead (only control characters,
  lone surrogates and `,` are refused): silently renaming would merge different names into one asset,
  and a comma separates the items of list parameters (`public_ids=a,b`);
- a tag is at most 255 characters, an asset has at most 1000 tags;
- context (https://cloudinary.com/documentation/contextual_metadata): `key=value|...` "up to 255
  characters", which we read as each key and each value; at most 100 pairs (ours). On S3 all of an
  object's metadata (id, tags, context) fits in 2 KB, which the S3 store checks.
Our own additions: names are NFC-normalised (the same text typed on macOS and Linux is one asset);
`.`, `..` and empty path segments are refused; each segment of the stored key is at most 255 UTF-8
bytes (a file name on every common filesystem); the `_vs/` prefix is Visual Search's own (renditions,
model files), so no name given to the API may be under it.

Two strengths: `new_public_id` for names being created (every rule), `existing_public_id` for names
being looked up or deleted, which may have come straight from a bucket with characters or lengths the
API refuses (a `+` is common in S3 keys) but still cannot reach the reserved prefix or escape the store.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping

from visual_search.domain.context import Context, parse_context, parse_wanted
from visual_search.errors import BadInput
from visual_search.ingest.renditions import rendition_key
from visual_search.storage.port import MAX_KEY_BYTES, MAX_SEGMENT_BYTES, RESERVED_PREFIX

MAX_PUBLIC_ID_CHARS = 255
MAX_TAG_CHARS = 255
MAX_TAGS = 1000
# Ids one call takes (public_ids, asset_ids): Cloudinary's limit for resources_by_asset_ids and
# delete_resources; its tags and context calls take 1000, each a stored write here, and a call answers
# within the search function's 28 s.
MAX_IDS_PER_CALL = 100
MAX_CONTEXT_CHARS = 255  # each key, each value
MAX_CONTEXT_PAIRS = 100
FORBIDDEN = frozenset("?&#\\%<>+")
_ENDS = re.compile(r"^[\s/]+|[\s/]+$")
_VERSION_FOLDER = re.compile(r"v\d+")
_RESERVED_FOLDER = RESERVED_PREFIX.rstrip("/").casefold()


class InvalidName(BadInput):
    """A public_id, folder or tag outside the rules above."""


class ReservedName(InvalidName):
    """A name under the `_vs/` prefix, which belongs to Visual Search itself."""


def normalise(value: str) -> str:
    """NFC, then leading and trailing whitespace and slashes trimmed, as Cloudinary trims them.

    >>> normalise(" /dir/ ")
    'dir'
    """
    return _ENDS.sub("", unicodedata.normalize("NFC", value))


def new_public_id(public_id: str, folder: str = "") -> str:
    """The full public_id (`folder/public_id`) of an asset being created; raises InvalidName.

    >>> new_public_id("red", folder="/shoes/")
    'shoes/red'
    """
    name = normalise(public_id)
    if not name:
        raise InvalidName(f"public_id {public_id[:80]!r} is empty once trimmed of spaces and slashes")
    folder = normalise(folder)
    full = f"{folder}/{name}" if folder else name
    if len(full) > MAX_PUBLIC_ID_CHARS:
        raise InvalidName(
            f"public_id is {len(full)} characters with its folder; at most {MAX_PUBLIC_ID_CHARS} are allowed"
        )
    bad = sorted(FORBIDDEN.intersection(full))
    if bad:
        raise InvalidName(f"public_id may not contain {' '.join(bad)} (Cloudinary forbids ?&#\\%<>+)")
    if "," in full:
        raise InvalidName("public_id may not contain a comma: it separates the items of a list parameter")
    segments = _checked_segments(full)
    if any(len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES for segment in segments):
        raise InvalidName(f"each part of a public_id between slashes is at most {MAX_SEGMENT_BYTES} bytes")
    for segment in segments[:-1]:
        if _VERSION_FOLDER.fullmatch(segment):
            raise InvalidName(f"folder {segment!r} reads as a version: 'v' followed by digits is not allowed")
    return full


def existing_public_id(public_id: str) -> str:
    """A public_id to look up or delete: normalised, never reserved, never escaping the store."""
    name = normalise(public_id)
    if not name:
        raise InvalidName("public_id must not be empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidName(f"public_id is longer than {MAX_KEY_BYTES} bytes")
    _checked_segments(name)
    return name


def folder_filter(folder: str) -> str:
    """An asset_folder search filter; "" (no filter) when it trims to nothing."""
    name = normalise(folder)
    if name:
        _checked_segments(name)
    return name


def stored_key(public_id: str, extension: str) -> str:
    """`public_id.extension`; its last segment, and its rendition's (`.extension.jpg`), within the
    per-segment byte limit."""
    key = f"{public_id}.{extension}"
    longest = rendition_key(key).rpartition("/")[2]
    if len(longest.encode("utf-8")) > MAX_SEGMENT_BYTES:
        room = MAX_SEGMENT_BYTES - (len(longest) - len(public_id.rpartition("/")[2]))
        raise InvalidName(f"the last part of a public_id is at most {room} bytes in UTF-8")
    return key


def tags(values: str | Iterable[str]) -> tuple[str, ...]:
    """Tags from a comma-separated string (or a list): NFC, trimmed, empty ones dropped, each once."""
    raw = values.split(",") if isinstance(values, str) else [p for v in values for p in v.split(",")]
    seen = dict.fromkeys(t for t in (unicodedata.normalize("NFC", v).strip() for v in raw) if t)
    if len(seen) > MAX_TAGS:
        raise InvalidName(f"{len(seen)} tags given; at most {MAX_TAGS} are allowed")
    for tag in seen:
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidName(f"tag {tag[:40]!r}... is {len(tag)} characters; at most {MAX_TAG_CHARS}")
        _printable(tag, "tag")
    return tuple(seen)


def context(value: str | Mapping[str, object]) -> Context:
    """Context pairs from Cloudinary's text (`caption=Tom \\| Jerry|alt=shoe`) or a JSON object (a
    JSON body's `{"caption": "..."}`, which reaches here as its JSON text): NFC, keys trimmed and
    non-empty, each key once.

    >>> context('{"alt": "a|b"}'), context("alt=x|k=")
    ((('alt', 'a|b'),), (('alt', 'x'), ('k', '')))
    """
    pairs: Iterable[tuple[str, object]]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif value.lstrip().startswith("{") and isinstance(given := _json_object(value), dict):
        pairs = given.items()
    else:
        pairs = parse_context(value)
    found: dict[str, str] = {}
    for key, item in pairs:
        text = item if isinstance(item, str) else json.dumps(item)  # Cloudinary keeps a list as JSON
        key, text = unicodedata.normalize("NFC", str(key)).strip(), unicodedata.normalize("NFC", text)
        if not key:
            raise InvalidName("a context key must not be empty")
        for part, what in ((key, "key"), (text, "value")):
            if len(part) > MAX_CONTEXT_CHARS:
                raise InvalidName(
                    f"context {what} {part[:40]!r}... is longer than {MAX_CONTEXT_CHARS} characters"
                )
            _printable(part, f"context {what}")
        found[key] = text
    if len(found) > MAX_CONTEXT_PAIRS:
        raise InvalidName(f"{len(found)} context keys given; at most {MAX_CONTEXT_PAIRS} are allowed")
    return tuple(found.items())


def context_filter(text: str) -> tuple[tuple[str, str | None], ...]:
    """A search's context filter, `key=value|key` (a key alone: any value), checked as context is."""
    wanted = parse_wanted(text)
    context({k: v or "" for k, v in wanted})  # the same rules as context given to an asset
    return tuple((unicodedata.normalize("NFC", k), v and unicodedata.normalize("NFC", v)) for k, v in wanted)


def _json_object(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _checked_segments(name: str) -> list[str]:
    _printable(name, "public_id")
    segments = name.split("/")
    # Case-blind: on a case-insensitive disk (macOS) `_VS/` is the same folder.
    if segments[0].casefold() == _RESERVED_FOLDER:
        raise ReservedName(f"the {RESERVED_PREFIX} prefix is reserved for Visual Search's own files")
    if any(segment in ("", ".", "..") for segment in segments):
        raise InvalidName(f"public_id {name[:80]!r} has an empty, '.' or '..' path segment")
    return segments


def _printable(value: str, what: str) -> None:
    # Control characters corrupt logs and listings; a lone surrogate cannot even be encoded as UTF-8.
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise InvalidName(f"{what} must not contain control characters")
