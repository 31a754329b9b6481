"""Cloudinary's contextual metadata as text: `key=value` pairs joined by `|`, with `=` and `|` inside a
value (or a key) written `\\=` and `\\|`, as the SDKs encode a dict (`utils.encode_context`). The same
text is how an object carries its context in the store's metadata (`domain.object_metadata`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

Context = tuple[tuple[str, str], ...]  # pairs in the order given, each key once (the last value wins)

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_UNESCAPED_EQUALS = re.compile(r"(?<!\\)=")


def parse_context(text: str) -> Context:
    """Pairs from Cloudinary's context text; a pair without `=` is a key with an empty value.

    >>> parse_context(r"caption=Tom \\| Jerry|alt=a\\=b|alt=c|flag")
    (('caption', 'Tom | Jerry'), ('alt', 'c'), ('flag', ''))
    """
    pairs: dict[str, str] = {}
    for item in _UNESCAPED_PIPE.split(text):
        if not item.strip():
            continue
        key, value = _pair(item)
        pairs[key] = value
    return tuple(pairs.items())


def _pair(item: str) -> tuple[str, str]:
    parts = _UNESCAPED_EQUALS.split(item, maxsplit=1)
    value = parts[1] if len(parts) > 1 else ""
    return _unescape(parts[0]).strip(), _unescape(value)


def _unescape(text: str) -> str:
    return text.replace("\\|", "|").replace("\\=", "=")


def context_text(pairs: Iterable[tuple[str, str]]) -> str:
    """The text `parse_context` reads back.

    >>> context_text([("caption", "Tom | Jerry"), ("alt", "a=b")])
    'caption=Tom \\\\| Jerry|alt=a\\\\=b'
    >>> parse_context(context_text([("k|=", "v|=")]))
    (('k|=', 'v|='),)
    """
    return "|".join(f"{_escape(k)}={_escape(v)}" for k, v in pairs)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("=", "\\=")


def merged(current: Context, added: Context) -> Context:
    """`current` with `added`'s pairs set (Cloudinary's context `add`: a key given replaces its value).

    >>> merged((("a", "1"), ("b", "2")), (("b", "3"), ("c", "4")))
    (('a', '1'), ('b', '3'), ('c', '4'))
    """
    return tuple((dict(current) | dict(added)).items())
