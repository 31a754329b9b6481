"""The upload and destroy use cases, as Cloudinary's Upload API defines them.

One asset per public_id, as in Cloudinary: a re-upload replaces the stored file and its index entry, in
any format (the files of that public_id in other formats are deleted once the new one is stored), and
answers `"overwritten": true`. The asset_id is made at the first write of a public_id and stored with the
object (`domain.object_metadata`); every later write of that public_id, in any format, reads it under
the public_id's hold and keeps it, as Cloudinary keeps an asset's id.

Naming, as Cloudinary's upload parameters: `public_id` (else the file name with `use_filename`, plus a
random 6-character suffix unless `unique_filename=false`, else 20 random hex characters), under `folder`
(or `asset_folder`); `overwrite=false` returns the existing asset, marked `"existing": true`.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import PurePosixPath

from visual_search.assets import names
from visual_search.assets.identity import kept_asset_id, keys_of, stored_asset_id
from visual_search.assets.writers import IndexWriter
from visual_search.domain.commands import IndexObject, RenameObject
from visual_search.domain.document import AssetDocument
from visual_search.domain.naming import format_for, public_id_for
from visual_search.domain.object_metadata import (
    asset_id_from_metadata,
    context_from_metadata,
    tags_from_metadata,
)
from visual_search.embedding.decode import DecodedImage
from visual_search.errors import BadInput, NotFound
from visual_search.index.port import VectorIndex
from visual_search.ingest.documents import build_document
from visual_search.ledger.port import Holds
from visual_search.storage.port import ImageStore, validate_key

SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
TRUE, FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


@dataclass(frozen=True)
class Uploaded:
    """An upload's outcome: the asset's document, and what Cloudinary's answer says of it — `existing`:
    the asset already there, returned unchanged (`overwrite=false`); `overwritten`: it was replaced."""

    document: AssetDocument
    existing: bool = False
    overwritten: bool = False


class Uploads:
    def __init__(
        self,
        store: ImageStore,
        writer: IndexWriter,
        index: VectorIndex,
        decode: Callable[[bytes], DecodedImage],
        model_id: str,
        holds: Holds,
    ):
        # `decode` is the ingest pipeline's: the model's scale and this process's decoding budget, so an
        # image search accepts is never refused on upload (a full-scale decode of 49 MP needed 630 MB).
        self._store, self._writer, self._index = store, writer, index
        self._decode, self._model_id = decode, model_id
        self._holds = holds

    def held(self, public_id: str) -> AbstractContextManager[None]:
        """Writes to one public_id one at a time (in every process sharing the ledger): between reading
        which files it has and replacing them, no other write may store one."""
        return self._holds.hold(f"{self._store.name}\x00{public_id}")

    def upload(self, data: bytes, fields: Mapping[str, str], filename: str | None = None) -> Uploaded:
        """Store and index one image; its document as the index holds it (or will)."""
        # Names and files are refused before anything is stored.
        public_id = self._public_id(fields, filename)
        tags = names.tags(fields.get("tags", ""))
        context = names.context(fields.get("context", ""))
        opted_in = flag(fields, "visual_search", False)
        decoded = self._decode(data)
        key = validate_key(names.stored_key(public_id, decoded.format))
        overwrite = flag(fields, "overwrite", True)
        with self.held(public_id):
            existing = self.keys_of(public_id)
            if existing and not overwrite:
                return Uploaded(self.document_of(existing[0]), existing=True)
            asset_id = kept_asset_id(self._store, existing)
            command = IndexObject(key, data, tuple(tags), opted_in, asset_id, decoded, context=context)
            report = self._writer.put_many([command])
            if report.refused:
                self._writer.delete(key)
                raise BadInput(report.refused[0].message or "image refused")
            for other in existing:
                if other != key:
                    self._writer.delete(other)
        stored = self._index.get(asset_id) if self._writer.indexes_now else None
        if stored is not None:
            return Uploaded(stored.document, overwritten=bool(existing))
        document = build_document(
            asset_id=asset_id,
            key=key,
            image=decoded,
            data=data,
            model_id=self._model_id,
            tags=tags,
            context=context,
        )
        return Uploaded(document, overwritten=bool(existing))

    def rename(self, from_public_id: str, to_public_id: str, overwrite: bool = False) -> AssetDocument:
        """The Upload API's rename: the asset moves to `to_public_id`, keeping its asset_id, format, tags
        and context; an asset already there is replaced with `overwrite`, else the rename is refused.
        Both names are held (in name order, so two renames never wait for each other's second name)."""
        source = names.existing_public_id(from_public_id)
        target = names.new_public_id(to_public_id)
        first, second = sorted((source, target))
        with self.held(first), self.held(second) if second != first else nullcontext():
            keys = self.keys_of(source)
            if not keys:
                raise NotFound(f"Resource not found - {from_public_id[:255]}")
            if source == target:
                return self.document_of(keys[0])
            taken = self.keys_of(target)
            if taken and not overwrite:
                raise BadInput(f"to_public_id {target[:255]!r} already exists: rename with overwrite=true")
            key = keys[0]
            to_key = validate_key(names.stored_key(target, format_for(key) or "jpg"))
            metadata = self._store.metadata(key) or {}
            asset_id = asset_id_from_metadata(self._store.name, key, metadata)
            tags, context = tags_from_metadata(metadata), context_from_metadata(metadata)
            for other in taken:  # the asset replaced, in every format
                self._writer.delete(other)
            report = self._writer.rename(RenameObject(key, to_key, asset_id, tags, context))
            if report.refused:
                raise BadInput(report.refused[0].message or "image refused")
        return self.document_of(to_key)

    def destroy(self, public_id: str) -> bool:
        """Remove every stored file of this public_id, its index entry and rendition; False if none."""
        public_id = names.existing_public_id(public_id)
        with self.held(public_id):
            keys = self.keys_of(public_id)
            for key in keys:
                self._writer.delete(key)
        return bool(keys)

    def delete_key(self, key: str) -> str:
        """Remove one stored file (found by a listing) and its index entry: "deleted"."""
        with self.held(public_id_for(key)):
            self._writer.delete(key)
        return "deleted"

    def delete(self, public_id: str) -> str:
        """The Admin API's per-id outcome: "deleted" or "not_found"."""
        return "deleted" if self.destroy(public_id) else "not_found"

    def keys_of(self, public_id: str) -> list[str]:
        return keys_of(self._store, public_id)

    def document_of(self, key: str) -> AssetDocument:
        """The index's document of the asset stored at `key`, or one made from its object where the
        index does not hold it (yet)."""
        asset_id = stored_asset_id(self._store, key)
        stored = self._index.get(asset_id)
        if stored is not None:
            return stored.document
        obj = self._store.get(key)
        return build_document(
            asset_id=asset_id,
            key=key,
            image=self._decode(obj.data),
            data=obj.data,
            model_id=self._model_id,
            tags=tags_from_metadata(obj.metadata),
            context=context_from_metadata(obj.metadata),
            created_at=obj.last_modified,
        )

    def _public_id(self, fields: Mapping[str, str], filename: str | None) -> str:
        folder = fields.get("asset_folder") or fields.get("folder") or ""
        given = fields.get("public_id")
        if given:
            return names.new_public_id(given, folder=folder)
        if flag(fields, "use_filename", False) and filename:
            stem = PurePosixPath(filename.replace("\\", "/")).name
            stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
            # Cloudinary replaces the characters a public_id may not hold; so do we, for file names only.
            stem = "".join("_" if c in names.FORBIDDEN or c == "," else c for c in stem).strip() or "file"
            if flag(fields, "unique_filename", True):
                stem += "_" + "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(6))
            return names.new_public_id(stem, folder=folder)
        return names.new_public_id(secrets.token_hex(10), folder=folder)


def flag(fields: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean upload parameter as the SDKs send it: true/false or 1/0."""
    value = fields.get(name)
    if value is None or value == "":
        return default
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise BadInput(f"{name} must be true or false")
