"""Snapshots of the embedded index's memory beside its database, so opening does not rebuild it.

A snapshot taken at change `seq` is two files: `<db file name>.<seq>.usearch` (the graph, usearch's own
format) and `<db file name>.<seq>.rows` (the mirror's columns: keys, float32 vectors, ids, filter codes and
vocabularies). Each is written to a temporary name, fsynced and renamed, the rows file last: it is the
commit point, and its header records the database's `db_id`, `seq`, and the graph file's size and CRC-32.

The rows file is laid out to be mapped rather than read: each column starts on a page boundary, the
vectors last, followed by room for an eighth more rows that is a hole in the file (no disk, no I/O). It is
mapped copy-on-write and the vectors are used in place, so opening copies none of them into fresh memory
(reading 2 GB into new pages took most of a reopen at a million rows); rows written later land in the
hole or on the changed pages, which become private memory. The mapping outlives the file's replacement
by the next snapshot (the old file's space is freed once the vectors outgrow it or the index closes).

A snapshot is used only when all of that checks out: the header's own CRC, the payload's CRC, the graph
file's size and CRC, the same `db_id`, and a `seq` the database has reached. The caller then replays the
changes after `seq` from SQLite and compares the key sets. Anything else (a torn, truncated or bit-flipped
file, a snapshot of another database, one from the future of a restored backup) is ignored and the state
is rebuilt from SQLite: a snapshot can cost time, never a wrong result. Every byte is checked before use
(the spare room is not: a row there is written whole before it is read): the graph file is checksummed
and loaded on a second thread while this one checksums the mapped rows (zlib's CRC-32 runs at several
GB/s here and releases the GIL, as does usearch's load).
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import re
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from visual_search.index._rows import Rows
from visual_search.index._usearch_graph import Graph

log = logging.getLogger(__name__)

_MAGIC = b"VSROWS01"
_PREFIX = struct.Struct("<8sQI")  # magic, header length, header CRC-32
_READ_CHUNK = 16 << 20
_FORMAT = 2  # 1 read the columns into memory; 2 maps them (older files are ignored: rebuilt once)
_ALIGN = mmap.PAGESIZE
# Room for more rows past the snapshot's, so the next insert need not copy every vector into a larger
# array; a hole in the file, and untouched it costs address space only.
_SPARE_FRACTION = 8
_MIN_SPARE = 1024


class SnapshotError(Exception):
    """A snapshot file that cannot be trusted."""


@dataclass(frozen=True)
class Snapshot:
    seq: int
    rows: Rows
    graph: Graph


LoadGraph = Callable[[mmap.mmap], Graph | None]


class Snapshots:
    """The snapshot files beside one database file."""

    def __init__(self, db_path: Path) -> None:
        self._dir = db_path.parent
        self._prefix = db_path.name
        self._pattern = re.compile(re.escape(db_path.name) + r"\.(\d+)\.(usearch|rows)(\.partial)?")

    def write(self, graph: Graph, rows: Rows, db_id: int, seq: int) -> None:
        graph_path = self._dir / f"{self._prefix}.{seq}.usearch"
        rows_path = self._dir / f"{self._prefix}.{seq}.rows"
        _replace_atomically(graph_path, lambda partial: graph.save(partial))
        size, crc = _file_crc(graph_path)
        header = {
            "format": _FORMAT,
            "db_id": db_id,
            "seq": seq,
            "dim": rows.dim,
            "graph": {"name": graph_path.name, "size": size, "crc32": crc},
            **rows.vocabularies(),
        }
        _replace_atomically(rows_path, lambda partial: _write_rows(partial, header, rows.columns()))
        _fsync(self._dir)
        for path in self._dir.iterdir():  # older snapshots, and partial files a crash left behind
            if self._pattern.fullmatch(path.name) and path not in (graph_path, rows_path):
                path.unlink(missing_ok=True)

    def read(self, dim: int, db_id: int, last_seq: int, load_graph: LoadGraph) -> Snapshot | None:
        """The newest snapshot that checks out (see the module docstring), or None.

        `load_graph` loads a graph from its file's bytes once their checksum matched; it returns None
        if it cannot."""
        for seq, path in sorted(self._rows_files(), reverse=True):
            try:
                if seq > last_seq:
                    raise SnapshotError(f"it is at change {seq}, the database only at {last_seq}")
                return _read(path, dim, db_id, seq, load_graph)
            except (SnapshotError, OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring index snapshot %s: %s", path, exc)
        return None

    def _rows_files(self) -> list[tuple[int, Path]]:
        found = []
        for path in self._dir.iterdir():
            match = self._pattern.fullmatch(path.name)
            if match and match.group(2) == "rows" and not match.group(3):
                found.append((int(match.group(1)), path))
        return found


def _read(path: Path, dim: int, db_id: int, seq: int, load_graph: LoadGraph) -> Snapshot:
    """Raises SnapshotError (or OSError, ValueError...) on anything that does not check out."""
    with path.open("rb") as file, ThreadPoolExecutor(max_workers=1) as worker:
        magic, length, header_crc = _PREFIX.unpack(_read_exactly(file, _PREFIX.size))
        if magic != _MAGIC:
            raise SnapshotError("not a rows snapshot")
        raw_header = _read_exactly(file, length)
        if zlib.crc32(raw_header) != header_crc:
            raise SnapshotError("header checksum mismatch")
        header = json.loads(raw_header)
        if (header["format"], header["db_id"], header["seq"], header["dim"]) != (_FORMAT, db_id, seq, dim):
            raise SnapshotError("made for another format, database, change or dimension")
        start = _aligned(_PREFIX.size + length)
        if os.fstat(file.fileno()).st_size != start + header["payload_size"]:
            raise SnapshotError("file is truncated or has grown")
        graph = worker.submit(
            _verified_graph, path.with_name(header["graph"]["name"]), header["graph"], load_graph
        )
        columns, crc = {}, 0
        for name, dtype, shape, offset, capacity in header["arrays"]:
            if np.dtype(dtype).kind not in "iufS":
                raise SnapshotError(f"unexpected column type {dtype}")
            if name == "vectors":
                array = _mapped(file, np.dtype(dtype), shape, start + offset, capacity)
            else:  # small: read into memory of its own, so the file's pages need not stay mapped
                array = np.empty(shape, dtype=np.dtype(dtype))
                file.seek(start + offset)
                if file.readinto(_byte_view(array)) != array.nbytes:
                    raise SnapshotError("file is truncated")
            crc = zlib.crc32(_byte_view(array[: shape[0]]), crc)
            columns[name] = array
        if crc != header["payload_crc32"]:
            raise SnapshotError("payload checksum mismatch")
        rows = Rows.restore(dim, columns, header)
        return Snapshot(seq=seq, rows=rows, graph=graph.result())


def _mapped(
    file: IO[bytes], dtype: np.dtype[Any], shape: list[int], offset: int, capacity: int
) -> np.ndarray:
    """(capacity, *shape[1:]) over the file from `offset`, copy-on-write: changed in memory, never on disk."""
    mapped = mmap.mmap(file.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    mapped.madvise(mmap.MADV_WILLNEED)  # from a cold disk, read ahead while the checksum walks it
    array = np.frombuffer(mapped, dtype, capacity * _row_bytes(dtype, shape) // dtype.itemsize, offset)
    return array.reshape(capacity, *shape[1:])


def _verified_graph(path: Path, recorded: dict[str, int], load_graph: LoadGraph) -> Graph:
    """The graph file mapped, checked and loaded from the mapping: read from disk once, not twice."""
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size != recorded["size"] or not recorded["size"]:
            raise SnapshotError(f"graph file {path.name} is not the size recorded for it")
        mapped = mmap.mmap(file.fileno(), 0, prot=mmap.PROT_READ)
    with mapped:
        mapped.madvise(mmap.MADV_WILLNEED)
        if zlib.crc32(mapped) != recorded["crc32"]:
            raise SnapshotError(f"graph file {path.name} does not match the checksum recorded for it")
        graph = load_graph(mapped)
    if graph is None:
        raise SnapshotError(f"graph file {path.name} could not be loaded")
    return graph


def _write_rows(path: Path, header: dict[str, Any], columns: dict[str, np.ndarray]) -> None:
    # The vectors last, so their spare room is the file's end: a hole made by extending the file.
    names = sorted(columns, key=lambda name: name == "vectors")
    arrays = {name: np.ascontiguousarray(columns[name]) for name in names}
    crc, end = 0, 0
    layout: list[tuple[str, str, list[int], int, int]] = []  # name, dtype, shape, offset, capacity
    for name, array in arrays.items():
        crc = zlib.crc32(_byte_view(array), crc)
        spare = max(_MIN_SPARE, len(array) // _SPARE_FRACTION) if name == "vectors" else 0
        layout.append((name, array.dtype.str, list(array.shape), end, len(array) + spare))
        end = _aligned(end + (len(array) + spare) * _row_bytes(array.dtype, array.shape))
    header = {**header, "arrays": layout, "payload_crc32": crc, "payload_size": end}
    raw_header = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    start = _aligned(_PREFIX.size + len(raw_header))
    with path.open("wb") as file:
        file.write(_PREFIX.pack(_MAGIC, len(raw_header), zlib.crc32(raw_header)))
        file.write(raw_header)
        for (_, _, _, offset, _), array in zip(layout, arrays.values(), strict=True):
            file.seek(start + offset)
            file.write(_byte_view(array))
        file.truncate(start + end)


def _row_bytes(dtype: np.dtype[Any], shape: tuple[int, ...] | list[int]) -> int:
    return dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))


def _aligned(size: int) -> int:
    return -(-size // _ALIGN) * _ALIGN


def _byte_view(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy; an empty array too (memoryview.cast refuses a
    view with a zero in its shape: an index whose assets were all deleted)."""
    if not array.flags.c_contiguous:  # reshape would copy, and a read into the copy would be lost
        raise ValueError("a snapshot column must be C-contiguous")
    return array.reshape(-1).view(np.uint8).data


def _read_exactly(file: IO[bytes], size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise SnapshotError("file is truncated")
    return data


def _file_crc(path: Path) -> tuple[int, int]:
    size, crc = 0, 0
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK):
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
    return size, crc


def _replace_atomically(path: Path, write: Any) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    _fsync(partial)
    os.replace(partial, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(fd)
    finally:
        os.close(fd)
