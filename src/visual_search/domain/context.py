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
    return tuple((key, value or "") for key, value in parse_wanted(text))


def parse_wanted(text: str) -> tuple[tuple[str, str | None], ...]:
    """The same text as a filter: a key without `=` is wanted with any value (None).

    >>> parse_wanted("team=red|alt")
    (('team', 'red'), ('alt', None))
    """
    pairs: dict[str, str | None] = {}
    for item in _UNESCAPED_PIPE.split(text):
        if not item.strip():
            continue
        parts = _UNESCAPED_EQUALS.split(item, maxsplit=1)
        pairs[_unescape(parts[0]).strip()] = _unescape(parts[1]) if len(parts) > 1 else None
    return tuple(pairs.items())


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


# The keywords a search filters context by, beside the tags in one keyword field: `\x1fkey` and
# `\x1fkey\x1fvalue`. No tag, key or value holds a control character (`assets.names` refuses them), so
# none of these is ever a tag, nor one pair's keyword another's.
LABEL = "\x1f"


def labels(pairs: Iterable[tuple[str, str | None]]) -> tuple[str, ...]:
    """A document's context keywords (every pair), or what a filter wants (a key alone: any value).

    >>> labels([("team", "red"), ("alt", None)])
    ('\\x1fteam\\x1fred', '\\x1falt')
    """
    return tuple(LABEL + k + ("" if v is None else LABEL + v) for k, v in pairs)


def document_labels(context: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """Both keywords of each pair a document holds: its key's and the pair's."""
    pairs = list(context)
    return labels([(k, None) for k, _ in pairs]) + labels(pairs)


def merged(current: Context, added: Context) -> Context:
    """`current` with `added`'s pairs set (Cloudinary's context `add`: a key given replaces its value).

    >>> merged((("a", "1"), ("b", "2")), (("b", "3"), ("c", "4")))
    (('a', '1'), ('b', '3'), ('c', '4'))
    """
    return tuple((dict(current) | dict(added)).items())
