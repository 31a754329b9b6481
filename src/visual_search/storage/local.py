"""A folder on disk as the image store: the embedded default. URLs are signed and expire, like S3
presigned URLs, so a link in a search result never opens the whole store to anyone."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from urllib.parse import quote

from visual_search.storage.port import (
    MAX_SEGMENT_BYTES,
    RESERVED_PREFIX,
    InvalidKey,
    KeyConflict,
    ObjectInfo,
    ObjectNotFound,
    StoredObject,
    listed,
    validate_key,
)

URL_TTL_S = 3600
# Half-written files live under the reserved prefix, never beside the key they will become: a staging
# name there could also be a public_id, and a scan that skipped it could never list that asset again.
STAGING = f"{RESERVED_PREFIX}staging"
# Each object's metadata (its asset id, its tags: what S3 keeps as user metadata) is a JSON file at the
# same key under this prefix: its folders mirror the objects', so it conflicts only where they would.
METADATA = f"{RESERVED_PREFIX}meta"
# What `quote(key)` leaves as it is (its always-safe characters and "/"): most keys, and checking costs a
# third of quoting (a page of 50 results quotes 100 keys).
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~/-]*").fullmatch


class LocalImageStore:
    def __init__(self, root: Path, base_url: str | None, signing_key: bytes, name: str = "local"):
        self.root = root
        self.name = name
        self._base_url = (base_url or "http://127.0.0.1:8000").rstrip("/")
        # Keyed BLAKE2b, a MAC by design (RFC 7693), keyed once; a URL then signs from a copy. A page of
        # 50 results signs 100 URLs: 0.43 us each, against 2.2 us from a copy of a keyed HMAC-SHA256.
        key = (
            signing_key
            if len(signing_key) <= hashlib.blake2b.MAX_KEY_SIZE
            else hashlib.sha256(signing_key).digest()
        )
        self._mac = hashlib.blake2b(key=key, digest_size=16)
        root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if any(len(part.encode("utf-8")) > MAX_SEGMENT_BYTES for part in validate_key(key).split("/")):
            raise InvalidKey(f"each part of a key between slashes is at most {MAX_SEGMENT_BYTES} bytes")
        return self.root / key

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        object_tags: Mapping[str, str] | None = None,
    ) -> None:
        """Object tags are not kept: a local folder is indexed inline, by the writer itself. The metadata
        is written after the file (a file refused as a conflict leaves no metadata behind); a crash in
        between leaves the file with no id, read as an object written around the API."""
        self._write(self._path(key), key, data, os.replace)  # a reader (or a crash) never sees half a file
        sidecar = self._sidecar(key)
        if metadata:
            self._write(sidecar, key, json.dumps(dict(metadata)).encode(), os.replace)
        else:
            with contextlib.suppress(NotADirectoryError, IsADirectoryError):
                sidecar.unlink(missing_ok=True)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        try:
            self._write(self._path(key), key, data, os.link)  # a hard link fails where the name exists
        except FileExistsError:
            return False
        return True

    def _sidecar(self, key: str) -> Path:
        self._path(key)  # the key's checks
        return self.root / METADATA / key

    def _write(self, path: Path, key: str, data: bytes, place: Callable[[str, Path], None]) -> None:
        """Write a whole temporary file, then `place` it at `path` (the key's, or its metadata's)."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise _conflict(key) from None
        if path.is_dir():
            raise _conflict(key)
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=staging)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                place(tmp, path)
            except (IsADirectoryError, NotADirectoryError):  # a folder made there since the check
                raise _conflict(key) from None
        finally:
            Path(tmp).unlink(missing_ok=True)  # gone already once renamed

    def tags(self, key: str) -> dict[str, str]:
        return {}

    def get(self, key: str, version_id: str | None = None) -> StoredObject:
        """`version_id` is accepted for the port's sake; a folder keeps one version."""
        path = self._path(key)
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        return StoredObject(key, data, None, datetime.fromtimestamp(mtime, UTC), self._read_metadata(key))

    def metadata(self, key: str) -> dict[str, str] | None:
        return self._read_metadata(key) if self.head(key) is not None else None

    def _read_metadata(self, key: str) -> dict[str, str]:
        try:
            return dict(json.loads(self._sidecar(key).read_bytes()))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return {}

    def delete(self, key: str) -> None:
        # A folder, or a path under a file: no object is there.
        with contextlib.suppress(IsADirectoryError, NotADirectoryError):
            self._path(key).unlink(missing_ok=True)
            self._sidecar(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> Iterator[str]:
        return (info.key for info in self.scan(prefix))

    def scan(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        # A walk visits a folder's files before its subfolders; S3 lists keys in byte order, and a
        # listing cursor (`start_after`) needs that order, so the keys are sorted first.
        keys = sorted(
            (key for key in self._keys(prefix) if start_after is None or _utf8(key) > _utf8(start_after)),
            key=_utf8,
        )
        for key in keys:
            if (info := self.head(key)) is not None:
                yield info

    def _keys(self, prefix: str) -> Iterator[str]:
        # Only the folders the prefix can reach are walked (never above the root).
        folder = prefix.rpartition("/")[0]
        safe = folder and "\x00" not in folder and all(s not in ("", ".", "..") for s in folder.split("/"))
        top = self.root / folder if safe else self.root
        for dirpath, _dirnames, filenames in os.walk(top):
            for name in filenames:
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if listed(key, prefix):
                    yield key

    def head(self, key: str) -> ObjectInfo | None:
        try:
            stat = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not S_ISREG(stat.st_mode):  # a folder named like the key holds other keys; it is not one
            return None
        return ObjectInfo(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def urls(self, base_url: str | None = None, now: float | None = None) -> Callable[[str], str]:
        """One response's URLs: they share the base, the expiry and what is made of them."""
        expires = int((now or time.time()) + URL_TTL_S)
        prefix = (base_url or self._base_url).rstrip("/") + "/files/"
        query = f"?expires={expires}&signature="
        signed_tail = f"\n{expires}".encode()  # after the key, what `sign` signs

        def url(key: str) -> str:
            path = key if _UNQUOTED(key) else quote(key)
            return prefix + path + query + self._digest(key.encode() + signed_tail)

        return url

    def sign(self, key: str, expires: int) -> str:
        return self._digest(f"{key}\n{expires}".encode())

    def _digest(self, message: bytes) -> str:
        mac = self._mac.copy()
        mac.update(message)
        return mac.hexdigest()

    def verify(self, key: str, expires: str, signature: str, now: float | None = None) -> bool:
        """True when a /files URL was made by `url` and has not expired."""
        try:
            when = int(expires)
        except ValueError:
            return False
        return when >= (now or time.time()) and hmac.compare_digest(self.sign(key, when), signature)


def _conflict(key: str) -> KeyConflict:
    return KeyConflict(
        f"{key[:200]!r} and another stored name would be both a file and a folder on this disk"
        " (like a/x.png and a/x.png/y): choose another public_id"
    )


def _utf8(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")
