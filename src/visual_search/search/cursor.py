"""Opaque, signed pagination cursors.

A cursor carries the `search_after` position (score, asset_id) of the last hit served and how many
hits were served, bound to the query it came from (a search's, to its model too). It is URL-safe
base64 of `version (1 byte) | HMAC-SHA256 truncated to 16 bytes | compact JSON`. The MAC covers the
version and the payload, so a forged or truncated cursor fails verification; a cursor from another
query fails the query-key check (ForeignCursor); both are InvalidCursor (HTTP 400), never a server
error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

from visual_search.errors import InvalidCursor

VERSION = 1
MAC_BYTES = 16
MAX_CURSOR_CHARS = 4096  # room for an OpenSearch point-in-time id


class ForeignCursor(InvalidCursor):
    """A genuine cursor, of another query than the one it came with."""


@dataclass(frozen=True)
class CursorState:
    query_key: str  # hash of the normalised query parameters the cursor belongs to
    score: float  # score of the last hit served
    asset_id: str  # asset_id of the last hit served (the tie-break)
    served: int  # hits served so far, to enforce the per-query ceiling
    snapshot: str | None = None  # the index's snapshot token (OpenSearch point in time), if any


def query_key(params: dict[str, Any]) -> str:
    """A stable digest of the parameters that define a result list (not the page size)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class CursorCodec:
    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise ValueError("the cursor secret must be at least 16 bytes")
        self._secret = secret

    def encode(self, state: CursorState) -> str:
        fields = [state.query_key, state.score, state.asset_id, state.served]
        if state.snapshot is not None:
            fields.append(state.snapshot)
        payload = json.dumps(fields, separators=(",", ":")).encode("utf-8")
        header = bytes([VERSION])
        token = header + self._mac(header + payload) + payload
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def decode(self, cursor: str, expected_query_key: str) -> CursorState:
        """Verify and unpack `cursor`; raises InvalidCursor with a message fit for the caller."""
        raw = self._unb64(cursor)
        if len(raw) < 1 + MAC_BYTES + 2:
            raise InvalidCursor("next_cursor is truncated")
        version, mac, payload = raw[0], raw[1 : 1 + MAC_BYTES], raw[1 + MAC_BYTES :]
        if version != VERSION:
            raise InvalidCursor(
                f"next_cursor is of version {version}, no longer valid: start the search again"
            )
        if not hmac.compare_digest(mac, self._mac(raw[:1] + payload)):
            raise InvalidCursor("next_cursor is not valid (altered, truncated or from another deployment)")
        state = self._parse(payload)
        if not hmac.compare_digest(state.query_key, expected_query_key):
            raise ForeignCursor(
                "next_cursor belongs to a different query: pass the same parameters as before"
            )
        return state

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._secret, data, hashlib.sha256).digest()[:MAC_BYTES]

    @staticmethod
    def _unb64(cursor: str) -> bytes:
        if not isinstance(cursor, str) or not cursor or len(cursor) > MAX_CURSOR_CHARS:
            raise InvalidCursor("next_cursor is empty or too long")
        try:
            return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor("next_cursor is not valid base64url") from None

    @staticmethod
    def _parse(payload: bytes) -> CursorState:
        # Reached only with a valid MAC, so a failure here means a bug or a leaked secret; still a 400.
        try:
            key, score, asset_id, served, *snapshot = json.loads(payload.decode("utf-8"))
            if len(snapshot) > 1:
                raise ValueError("too many fields")
            state = CursorState(
                str(key), float(score), str(asset_id), int(served), str(snapshot[0]) if snapshot else None
            )
        except (ValueError, TypeError, UnicodeDecodeError):
            raise InvalidCursor("next_cursor payload is malformed") from None
        if not math.isfinite(state.score) or state.served < 0:
            raise InvalidCursor("next_cursor payload is malformed")
        return state
