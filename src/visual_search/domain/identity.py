"""An asset's id: 32 lowercase hex characters, as Cloudinary's asset_id."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NewType

from visual_search.errors import BadInput

AssetId = NewType("AssetId", str)
ASSET_ID = re.compile(r"[0-9a-f]{32}")


def asset_id(value: str) -> AssetId:
    """`value` as an AssetId; BadInput unless it is 32 lowercase hex characters.

    >>> asset_id("0" * 32)
    '00000000000000000000000000000000'
    """
    if not isinstance(value, str) or not ASSET_ID.fullmatch(value):
        raise BadInput("an asset_id is 32 lowercase hexadecimal characters")
    return AssetId(value)


def new_asset_id() -> AssetId:
    """A fresh id, for the first write of a public_id."""
    return AssetId(secrets.token_hex(16))


def derived_asset_id(store_name: str, key: str) -> AssetId:
    """The id of an object stored without one (written around the API: `aws s3 cp`, a file copied into
    the folder): every reader of that object (events, backfill) derives the same one.

    >>> derived_asset_id("local", "shoes/red.jpg") == derived_asset_id("local", "shoes/red.jpg")
    True
    """
    return AssetId(hashlib.sha256(f"{store_name}\x00{key}".encode()).hexdigest()[:32])
