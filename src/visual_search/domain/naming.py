"""From a stored key to its Cloudinary names. A key is `public_id.format`: the public_id is what is left
of its last dot (within the last path segment), so each key has one public_id and no public_id reaches
another's key — `vb/photo.jpg` is the JPEG of `vb/photo`; the public_id `vb/photo.jpg` is stored as
`vb/photo.jpg.<format>`. A key without an extension is its own public_id."""

from __future__ import annotations

from pathlib import PurePosixPath


def public_id_for(key: str) -> str:
    """The key without its extension.

    >>> public_id_for("shoes/red.jpg"), public_id_for("a/photo.png.jpg"), public_id_for("readme")
    ('shoes/red', 'a/photo.png', 'readme')
    """
    if not _plain(key):
        path = PurePosixPath(key)
        return str(path.with_suffix("")) if path.suffix else key
    name = key[key.rfind("/") + 1 :]
    dot = name.rfind(".")
    # A suffix as a path has one: a dot inside the name, neither its first nor its last character.
    return key[: len(key) - len(name) + dot] if 0 < dot < len(name) - 1 else key


def format_for(key: str) -> str | None:
    """The format a key's extension names, as Cloudinary spells it; None without one.

    >>> format_for("a/b.JPEG"), format_for("readme")
    ('jpg', None)
    """
    suffix = PurePosixPath(key).suffix.lstrip(".").lower()
    return {"jpeg": "jpg", "tif": "tiff"}.get(suffix, suffix) or None


def folder_for(key: str) -> str:
    """The key's folder; "" at the top.

    >>> folder_for("a/b/c.jpg"), folder_for("c.jpg")
    ('a/b', '')
    """
    if not _plain(key):
        parent = PurePosixPath(key).parent.as_posix()
        return "" if parent == "." else parent
    return key.rpartition("/")[0]


def _plain(key: str) -> bool:
    """A key a path reads as it is spelled (no empty or '.' segment), so its names are plain slices of
    it: a page of 50 results reads 100 of them, and a path costs ten times the slicing."""
    return (
        bool(key)
        and "//" not in key
        and "/./" not in key
        and not key.startswith(("/", "./"))
        and not (key.endswith(("/", "/.")) or key == ".")
    )
