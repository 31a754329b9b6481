"""Tags and context on assets already stored, as Cloudinary's calls change them: the Upload API's `tags`
(add, remove, replace, remove_all) and `context` (add, remove_all) over a list of public_ids, `explicit`
with tags and context, and the Admin API's `update`.

An asset's tags and context live with its object (`domain.object_metadata`), so a change stores the
object again with its new metadata through the writer, under the public_id's hold, and the index
follows as it follows any write: the same bytes at the same key keep their vector (nothing is embedded
again). Where S3 events index (`BucketEvents`), the index shows the change after the ingest lag, as it
does an upload; the answer already shows the new tags and context.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from visual_search.assets import names
from visual_search.assets.uploads import Uploads
from visual_search.assets.writers import IndexWriter
from visual_search.domain.commands import UpdateTags
from visual_search.domain.context import Context, merged
from visual_search.domain.document import AssetDocument
from visual_search.domain.object_metadata import (
    asset_id_from_metadata,
    context_from_metadata,
    tags_from_metadata,
)
from visual_search.errors import BadInput, NotFound
from visual_search.storage.port import ImageStore

TAG_COMMANDS: tuple[str, ...] = ("add", "remove", "replace", "remove_all")
CONTEXT_COMMANDS: tuple[str, ...] = ("add", "remove_all")

TagsAndContext = tuple[tuple[str, ...], Context]
Change = Callable[[tuple[str, ...], Context], TagsAndContext]


class Labels:
    def __init__(self, uploads: Uploads, store: ImageStore, writer: IndexWriter):
        self._uploads, self._store, self._writer = uploads, store, writer

    def tags(self, command: str, tag: str | None, public_ids: Sequence[str]) -> list[str]:
        """Cloudinary's `tags` call; the public_ids changed (those that exist), in the order given.
        `add` may give several tags (comma-separated); `remove` and `replace` take them alike."""
        if command not in TAG_COMMANDS:
            raise BadInput(
                f"command must be one of {', '.join(TAG_COMMANDS)} (set_exclusive is not supported)"
            )
        given = names.tags(tag or "")
        if command != "remove_all" and not given:
            raise BadInput("tag is required")

        def change(tags: tuple[str, ...], context: Context) -> TagsAndContext:
            if command == "add":
                return tuple(dict.fromkeys(tags + given)), context
            if command == "remove":
                return tuple(t for t in tags if t not in given), context
            return (given if command == "replace" else ()), context

        return self._each(public_ids, change)

    def context(self, command: str, context: str | None, public_ids: Sequence[str]) -> list[str]:
        """Cloudinary's `context` call: `add` sets the pairs given (a key given again takes the new
        value), `remove_all` clears them; the public_ids changed."""
        if command not in CONTEXT_COMMANDS:
            raise BadInput(f"command must be one of {', '.join(CONTEXT_COMMANDS)}")
        pairs = names.context(context or "")
        if command == "add" and not pairs:
            raise BadInput("context is required")
        return self._each(
            public_ids, lambda tags, current: (tags, merged(current, pairs) if command == "add" else ())
        )

    def update(self, public_id: str, tags: str | None = None, context: str | None = None) -> AssetDocument:
        """The Admin API's `update` and the Upload API's `explicit`: the tags and the context given
        replace the asset's (an empty value clears them; one not given is kept). Its document."""
        new_tags = None if tags is None else names.tags(tags)
        new_context = None if context is None else names.context(context)

        def change(current_tags: tuple[str, ...], current_context: Context) -> TagsAndContext:
            return (
                current_tags if new_tags is None else new_tags,
                current_context if new_context is None else new_context,
            )

        return self._change(names.existing_public_id(public_id), change)

    def _each(self, public_ids: Sequence[str], change: Change) -> list[str]:
        if not public_ids:
            raise BadInput("public_ids is required")
        if len(public_ids) > names.MAX_IDS_PER_CALL:
            raise BadInput(f"at most {names.MAX_IDS_PER_CALL} public_ids per call")
        checked = [names.existing_public_id(p) for p in public_ids]  # every id before any change
        changed = []
        for public_id in dict.fromkeys(checked):
            with self._uploads.held(public_id):
                if self._apply(public_id, change) is not None:
                    changed.append(public_id)
        return changed

    def _change(self, public_id: str, change: Change) -> AssetDocument:
        """Apply `change` under the asset's hold; its document after (where events index, the index
        may not have the change yet: the answer has it)."""
        with self._uploads.held(public_id):
            applied = self._apply(public_id, change)
            if applied is None:
                raise NotFound(f"Resource not found - {public_id[:255]}")
            key, tags, context = applied
            document = self._uploads.document_of(key)
        return replace(document, tags=tags, context=context)

    def _apply(self, public_id: str, change: Change) -> tuple[str, tuple[str, ...], Context] | None:
        """Store the asset's new tags and context (the caller holds its public_id); None if it has no
        file. Reads no document: a tags or context call over 100 ids answers with the ids alone."""
        keys = self._uploads.keys_of(public_id)
        if not keys:
            return None
        key = keys[0]
        metadata = self._store.metadata(key) or {}
        current = tags_from_metadata(metadata), context_from_metadata(metadata)
        tags, context = change(*current)
        if (tags, context) != current:
            asset_id = asset_id_from_metadata(self._store.name, key, metadata)
            report = self._writer.update(UpdateTags(key, asset_id, tags, context))
            if report.refused:
                raise BadInput(report.refused[0].message or "image refused")
        return key, tags, context
