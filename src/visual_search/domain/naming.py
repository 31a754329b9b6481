"""From a stored key to its Cloudinary names. A key is `public_id.format`: the public_id is what is left
of its last dot (within the last path segment), so each key has one public_id and no public_id reaches
another's key — `vb/photo.jpg` is the JPEG of `vb/photo`; the public_id `vb/photo.jpg` is stored as
`vb/photo.jpg.<format>`. A key without an extension is its own public_id."""

from __future__ import annotations

from pathlib import PurePosixPath


def public_id_for(key: str) -> str:
    """>>> public_id_for("shoes/red.jpg"), public_id_for("a/photo.png.jpg"), public_id_for("readme")
    ('shoes/red', 'a/photo.png', 'readme')
    """
    path = PurePosixPath(key)
    return str(path.with_suffix("")) if path.suffix else key


def format_for(key: str) -> str | None:
    """The format a key's extension names, as Cloudinary spells it; None without one.

    >>> format_for("a/b.JPEG"), format_for("readme")
    ('jpg', None)
    """
    suffix = PurePosixPath(key).suffix.lstrip(".").lower()
    return {"jpeg": "jpg", "tif": "tiff"}.get(suffix, suffix) or None


def folder_for(key: str) -> str:
    """>>> folder_for("a/b/c.jpg"), folder_for("c.jpg")
    ('a/b', '')
    """
    parent = PurePosixPath(key).parent.as_posix()
    return "" if parent == "." else parent
