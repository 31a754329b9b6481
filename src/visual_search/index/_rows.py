"""The embedded index's in-memory mirror of the assets table: what scoring and filtering read.

Rows are dense (slot 0..n-1) so a scan is one contiguous block; deleting moves the last row into the
hole. Keys (SQLite's) map to slots. Folder and format are stored as small integer codes so a filter is a
vectorised `isin`; tags, being many per asset, are an inverted index from tag to keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from visual_search.index._sqlite_store import LoadedRows
from visual_search.index.port import Filters, folder_matches

Fields = tuple[str, str, tuple[str, ...]]


def filter_fields(document: Mapping[str, Any]) -> Fields:
    """(folder, format, tags) of a document, with absent values as empty."""
    return (
        str(document.get("folder") or ""),
        str(document.get("format") or ""),
        tuple(str(tag) for tag in document.get("tags") or ()),
    )


class _Vocabulary:
    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        return self._codes.setdefault(name, len(self._codes))

    def encode(self, names: list[str]) -> np.ndarray:
        """Codes of many names at once: (len(names),) int32."""
        distinct, inverse = np.unique(np.array(names, dtype=str), return_inverse=True)
        codes = np.array([self.code(name) for name in distinct.tolist()], dtype=np.int32)
        return codes[inverse].reshape(len(names))

    def codes_where(self, predicate: Callable[[str], bool]) -> np.ndarray:
        return np.array([code for name, code in self._codes.items() if predicate(name)], dtype=np.int32)


class Rows:
    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.vectors = np.empty((0, dim), dtype=np.float32)
        self.keys = np.empty(0, dtype=np.int64)
        self.ids = np.empty(0, dtype="U32")
        self._folders = np.empty(0, dtype=np.int32)
        self._formats = np.empty(0, dtype=np.int32)
        self._folder_names = _Vocabulary()
        self._format_names = _Vocabulary()
        self._tags_of: dict[int, tuple[str, ...]] = {}
        self._keys_with_tag: dict[str, set[int]] = {}
        self.slot_of: dict[int, int] = {}

    @classmethod
    def adopt(cls, loaded: LoadedRows, dim: int) -> Rows:
        """Rows over what the store loaded, taking its arrays as they are (the open path: no copies)."""
        rows = cls(dim)
        rows.n = len(loaded.keys)
        rows.vectors, rows.keys = loaded.vectors, loaded.keys
        rows.ids = np.array(loaded.asset_ids, dtype="U32").reshape(rows.n)
        rows._folders = rows._folder_names.encode(loaded.folders)
        rows._formats = rows._format_names.encode(loaded.formats)
        rows.slot_of = dict(zip(loaded.keys.tolist(), range(rows.n), strict=True))
        for key, tags in zip(loaded.keys.tolist(), loaded.tags, strict=True):
            if tags:
                rows._set_tags(key, tags)
        return rows

    def put(self, key: int, asset_id: str, vector: np.ndarray, fields: Fields) -> None:
        slot = self.slot_of.get(key)
        if slot is None:
            slot = self.n
            self._reserve(slot + 1)
            self.keys[slot], self.ids[slot] = key, asset_id
            self.slot_of[key] = slot
            self.n += 1
        folder, fmt, tags = fields
        self.vectors[slot] = vector
        self._folders[slot] = self._folder_names.code(folder)
        self._formats[slot] = self._format_names.code(fmt)
        self._set_tags(key, tags)

    def remove(self, key: int) -> None:
        slot = self.slot_of.pop(key)
        self._set_tags(key, ())
        last = self.n - 1
        if slot != last:
            for column in (self.vectors, self.keys, self.ids, self._folders, self._formats):
                column[slot] = column[last]
            self.slot_of[int(self.keys[slot])] = slot
        self.n = last

    def slots(self, keys: Sequence[int]) -> np.ndarray:
        return np.fromiter((self.slot_of[key] for key in keys), dtype=np.int64, count=len(keys))

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Boolean (n,) of the rows that pass, or None when the filters restrict nothing."""
        masks = []
        if filters.folder is not None:
            prefix = filters.folder
            codes = self._folder_names.codes_where(lambda folder: folder_matches(folder, prefix))
            masks.append(np.isin(self._folders[: self.n], codes))
        if filters.formats:
            wanted = set(filters.formats)
            masks.append(
                np.isin(self._formats[: self.n], self._format_names.codes_where(wanted.__contains__))
            )
        if filters.tags:
            keys = set.intersection(*(self._keys_with_tag.get(tag, set()) for tag in set(filters.tags)))
            tagged = np.zeros(self.n, dtype=bool)
            tagged[self.slots(list(keys))] = True
            masks.append(tagged)
        if not masks:
            return None
        return np.logical_and.reduce(masks)

    def _set_tags(self, key: int, tags: tuple[str, ...]) -> None:
        for tag in self._tags_of.pop(key, ()):
            holders = self._keys_with_tag[tag]
            holders.discard(key)
            if not holders:
                del self._keys_with_tag[tag]
        if tags:
            self._tags_of[key] = tags
            for tag in tags:
                self._keys_with_tag.setdefault(tag, set()).add(key)

    def _reserve(self, needed: int) -> None:
        if needed <= len(self.keys):
            return
        capacity = max(needed, 2 * len(self.keys), 1024)
        self.vectors = _grown(self.vectors, capacity)
        self.keys = _grown(self.keys, capacity)
        self.ids = _grown(self.ids, capacity)
        self._folders = _grown(self._folders, capacity)
        self._formats = _grown(self._formats, capacity)


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown
