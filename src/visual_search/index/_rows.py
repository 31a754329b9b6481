"""The embedded index's in-memory mirror of the assets table: what scoring and filtering read.

Rows are dense (slot 0..n-1) so a scan is one contiguous block; deleting moves the last row into the
hole. Keys (SQLite's, AUTOINCREMENT, so dense enough) map to slots through an array indexed by key. Folder
and format are stored as small integer codes so a filter is a vectorised `isin`; tags, being many per
asset, are an inverted index from tag to keys.

The float32 vectors here (after a reopen, a copy-on-write mapping of the snapshot file: see
`_snapshots.py`) are the only copy in memory that scores are computed from; the graph holds a
coarser one (see `_usearch_graph.py`), built on another thread: a row is `pending` from the moment it is
put here until the graph holds its current vector, and a search scores the pending rows exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from visual_search.domain.document import AssetDocument
from visual_search.index._sqlite_store import LoadedRows
from visual_search.index.port import Filters, filter_labels, folder_matches

Fields = tuple[str, str, tuple[str, ...]]
_ABSENT = -1


def filter_fields(document: AssetDocument) -> Fields:
    """(folder, format, labels) of a document, with no format as empty: the labels are its tags and its
    context's keywords (`port.filter_labels`), kept where tags are."""
    return document.folder, document.format or "", filter_labels(document)


class _Vocabulary:
    def __init__(self, names: Sequence[str] = ()) -> None:
        self._codes: dict[str, int] = {name: code for code, name in enumerate(names)}

    @property
    def names(self) -> list[str]:
        """Every name, in code order."""
        return list(self._codes)

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
        # ASCII bytes, a quarter of numpy's UCS-4 strings: 96 MB less at a million rows.
        self.ids = np.empty(0, dtype="S32")
        self._folders = np.empty(0, dtype=np.int32)
        self._formats = np.empty(0, dtype=np.int32)
        # True while the graph lacks this row's current vector (one byte a row; moves with the row).
        self._pending = np.empty(0, dtype=bool)
        self.pending_count = 0
        self._folder_names = _Vocabulary()
        self._format_names = _Vocabulary()
        self._tags_of: dict[int, tuple[str, ...]] = {}
        self._keys_with_tag: dict[str, set[int]] = {}
        self._slot_of_key = np.empty(0, dtype=np.int64)

    @classmethod
    def adopt(cls, loaded: LoadedRows, dim: int) -> Rows:
        """Rows over what the store loaded, taking its arrays as they are (no copies); all pending."""
        rows = cls(dim)
        rows.n = len(loaded.keys)
        rows.vectors, rows.keys = loaded.vectors, loaded.keys
        rows.ids = np.array(loaded.asset_ids, dtype="S32").reshape(rows.n)
        rows._folders = rows._folder_names.encode(loaded.folders)
        rows._formats = rows._format_names.encode(loaded.formats)
        rows._pending = np.ones(rows.n, dtype=bool)
        rows.pending_count = rows.n
        rows._index_keys()
        for key, tags in zip(loaded.keys.tolist(), loaded.tags, strict=True):
            if tags:
                rows._set_tags(key, tags)
        return rows

    def put_many(self, loaded: LoadedRows) -> None:
        """Insert or replace these rows (distinct keys); they are pending until `mark_in_graph`."""
        count = len(loaded.keys)
        if not count:
            return
        slots = self.slots_or_absent(loaded.keys)
        new = slots == _ABSENT
        added = int(np.count_nonzero(new))
        self._reserve(self.n + added)
        slots[new] = np.arange(self.n, self.n + added)
        self._grow_key_index(int(loaded.keys.max()))
        self._slot_of_key[loaded.keys[new]] = slots[new]
        self.keys[slots] = loaded.keys
        self.ids[slots] = np.array(loaded.asset_ids, dtype="S32")
        self.vectors[slots] = loaded.vectors
        self._folders[slots] = self._folder_names.encode(loaded.folders)
        self._formats[slots] = self._format_names.encode(loaded.formats)
        self.n += added
        self.pending_count += count - int(np.count_nonzero(self._pending[slots] & ~new))
        self._pending[slots] = True
        for key, tags in zip(loaded.keys.tolist(), loaded.tags, strict=True):
            if tags or key in self._tags_of:
                self._set_tags(key, tags)

    def remove(self, key: int) -> None:
        slot = int(self._slot_of_key[key])
        self._slot_of_key[key] = _ABSENT
        self._set_tags(key, ())
        self.pending_count -= int(self._pending[slot])
        last = self.n - 1
        if slot != last:
            for column in (self.vectors, self.keys, self.ids, self._folders, self._formats, self._pending):
                column[slot] = column[last]
            self._slot_of_key[self.keys[slot]] = slot
        self.n = last

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns (allocated, including room reserved for more rows)."""
        columns = (
            self.vectors,
            self.keys,
            self.ids,
            self._folders,
            self._formats,
            self._pending,
            self._slot_of_key,
        )
        return sum(column.nbytes for column in columns)

    def slots(self, keys: np.ndarray) -> np.ndarray:
        """Slots of these keys, which must all be present: int64."""
        slots = self.slots_or_absent(keys)
        if np.any(slots == _ABSENT):
            raise KeyError("a key is not in the mirror")
        return slots

    def pending_slots(self) -> np.ndarray:
        """Slots of the rows whose current vector the graph lacks: int64, (pending_count,)."""
        if not self.pending_count:
            return np.empty(0, dtype=np.int64)
        return np.flatnonzero(self._pending[: self.n])

    def is_pending(self, slots: np.ndarray) -> np.ndarray:
        return self._pending[slots]

    def mark_in_graph(self, slots: np.ndarray) -> None:
        """The graph now holds these rows' current vectors."""
        self.pending_count -= int(np.count_nonzero(self._pending[slots]))
        self._pending[slots] = False

    def slots_or_absent(self, keys: np.ndarray) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        slots = np.full(len(keys), _ABSENT, dtype=np.int64)
        known = (keys >= 0) & (keys < len(self._slot_of_key))
        slots[known] = self._slot_of_key[keys[known]]
        return slots

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
        if wanted_labels := set(filters.labels()):
            keys = set.intersection(*(self._keys_with_tag.get(tag, set()) for tag in wanted_labels))
            tagged = np.zeros(self.n, dtype=bool)
            tagged[self.slots(np.fromiter(keys, dtype=np.int64, count=len(keys)))] = True
            masks.append(tagged)
        if not masks:
            return None
        return np.logical_and.reduce(masks)

    # --- snapshots: the columns and vocabularies as plain arrays and lists, and back -----------------

    def columns(self) -> dict[str, np.ndarray]:
        n = self.n
        return {
            "keys": self.keys[:n],
            "vectors": self.vectors[:n],
            "ids": self.ids[:n],
            "folders": self._folders[:n],
            "formats": self._formats[:n],
        }

    def vocabularies(self) -> dict[str, Any]:
        return {
            "folder_names": self._folder_names.names,
            "format_names": self._format_names.names,
            "tags": [[key, list(tags)] for key, tags in self._tags_of.items()],
        }

    @classmethod
    def restore(cls, dim: int, columns: Mapping[str, np.ndarray], vocabularies: Mapping[str, Any]) -> Rows:
        """Rows from `columns()` and `vocabularies()`; ValueError if they do not fit together."""
        rows = cls(dim)
        rows.n = len(columns["keys"])
        # `vectors` may have spare rows past n, so the next insert need not copy them all.
        rows.vectors = columns["vectors"]
        capacity = len(rows.vectors)
        shapes_fit = (  # checked before the other columns grow (in place) to the same capacity
            rows.vectors.ndim == 2
            and rows.vectors.shape[1] == dim
            and capacity >= rows.n
            and all(len(columns[name]) == rows.n for name in ("ids", "folders", "formats"))
        )
        rows.keys = _grown(columns["keys"], capacity)
        rows.ids = _grown(columns["ids"].astype("S32"), capacity)
        rows._folders = _grown(columns["folders"], capacity)
        rows._formats = _grown(columns["formats"], capacity)
        rows._pending = np.zeros(capacity, dtype=bool)  # a snapshot's graph holds its rows' vectors
        rows._folder_names = _Vocabulary(vocabularies["folder_names"])
        rows._format_names = _Vocabulary(vocabularies["format_names"])
        codes_fit = shapes_fit and all(
            rows.n == 0 or (codes[: rows.n].min() >= 0 and codes[: rows.n].max() < len(vocabulary.names))
            for codes, vocabulary in (
                (rows._folders, rows._folder_names),
                (rows._formats, rows._format_names),
            )
        )
        if not codes_fit or (rows.n and rows.keys[: rows.n].min() < 0):
            raise ValueError("snapshot columns do not fit together")
        rows._index_keys()
        for key, tags in vocabularies["tags"]:
            rows._set_tags(int(key), tuple(tags))
        return rows

    def _index_keys(self) -> None:
        self._slot_of_key = np.empty(0, dtype=np.int64)
        if self.n:
            self._grow_key_index(int(self.keys[: self.n].max()))
            self._slot_of_key[self.keys[: self.n]] = np.arange(self.n)

    def _grow_key_index(self, max_key: int) -> None:
        if max_key < len(self._slot_of_key):
            return
        grown = np.full(max(max_key + 1, len(self._slot_of_key) * 5 // 4, 1024), _ABSENT, dtype=np.int64)
        grown[: len(self._slot_of_key)] = self._slot_of_key
        self._slot_of_key = grown

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
        # A quarter more, not double: at a million 512-d rows, doubling would reserve another 2 GB.
        capacity = max(needed, len(self.keys) * 5 // 4, 1024)
        self.vectors = _grown(self.vectors, capacity)
        self.keys = _grown(self.keys, capacity)
        self.ids = _grown(self.ids, capacity)
        self._folders = _grown(self._folders, capacity)
        self._formats = _grown(self._formats, capacity)
        self._pending = _grown(self._pending, capacity)


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    if array.flags.owndata and array.base is None:
        # In place: realloc can move a large block's pages (mremap) without copying them, so growing
        # a million rows does not briefly need room for two copies. No view of the old array is kept
        # anywhere (the index's lock serialises every use).
        array.resize((capacity, *array.shape[1:]), refcheck=False)
        return array
    grown = np.empty((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array[: len(grown)]
    return grown
