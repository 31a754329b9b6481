"""Snapshots of the embedded index's memory beside its database, so opening does not rebuild it.

A snapshot taken at change `seq` is two files: `<db file name>.<seq>.usearch` (the graph, usearch's own
format) and `<db file name>.<seq>.rows` (the mirror's columns: keys, float32 vectors, ids, filter codes and
vocabularies). Each is written to a temporary name, fsynced and renamed, the rows file last: it is the
commit point, and its header records the database's `db_id`, `seq`, and the graph file's size and CRC-32.

A snapshot is used only when all of that checks out: the header's own CRC, the payload's CRC, the graph
file's size and CRC, the same `db_id`, and a `seq` the database has reached. The caller then replays the
changes after `seq` from SQLite and compares the key sets. Anything else (a torn, truncated or bit-flipped
file, a snapshot of another database, one from the future of a restored backup) is ignored and the state
is rebuilt from SQLite: a snapshot can cost time, never a wrong result. The graph file is checked and
loaded on a second thread while this one reads the rows, and each chunk of rows is checksummed on a third
while the next is read (zlib, file reads and usearch's load release the GIL), so the checks overlap the
reading instead of adding to it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
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
_FORMAT = 1


class SnapshotError(Exception):
    """A snapshot file that cannot be trusted."""


@dataclass(frozen=True)
class Snapshot:
    seq: int
    rows: Rows
    graph: Graph


LoadGraph = Callable[[Path], Graph | None]


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

    def read(
        self, dim: int, db_id: int, last_seq: int, spare_fraction: int, load_graph: LoadGraph
    ) -> Snapshot | None:
        """The newest snapshot that checks out (see the module docstring), or None.

        `load_graph` loads a graph file once its checksum matched; it returns None if it cannot."""
        for seq, path in sorted(self._rows_files(), reverse=True):
            try:
                if seq > last_seq:
                    raise SnapshotError(f"it is at change {seq}, the database only at {last_seq}")
                return _read(path, dim, db_id, seq, spare_fraction, load_graph)
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


def _read(path: Path, dim: int, db_id: int, seq: int, spare_fraction: int, load_graph: LoadGraph) -> Snapshot:
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
            raise SnapshotError("made for another database, change or dimension")
        graph = worker.submit(
            _verified_graph, path.with_name(header["graph"]["name"]), header["graph"], load_graph
        )
        columns, crc = {}, 0
        for name, dtype, shape in header["arrays"]:
            if np.dtype(dtype).kind not in "iufS":
                raise SnapshotError(f"unexpected column type {dtype}")
            # Room for more rows past the loaded ones, so the next insert need not copy them all.
            spare = max(1024, shape[0] // spare_fraction) if name == "vectors" else 0
            array = np.empty((shape[0] + spare, *shape[1:]), dtype=np.dtype(dtype))
            crc = _read_into(file, array[: shape[0]], crc)
            columns[name] = array if spare else array[: shape[0]]
        if crc != header["payload_crc32"] or file.read(1):
            raise SnapshotError("payload checksum mismatch")
        rows = Rows.restore(dim, columns, header)
        return Snapshot(seq=seq, rows=rows, graph=graph.result())


def _verified_graph(path: Path, recorded: dict[str, int], load_graph: LoadGraph) -> Graph:
    if _file_crc(path) != (recorded["size"], recorded["crc32"]):
        raise SnapshotError(f"graph file {path.name} does not match the checksum recorded for it")
    graph = load_graph(path)
    if graph is None:
        raise SnapshotError(f"graph file {path.name} could not be loaded")
    return graph


def _write_rows(path: Path, header: dict[str, Any], columns: dict[str, np.ndarray]) -> None:
    arrays = {name: np.ascontiguousarray(array) for name, array in columns.items()}
    crc = 0
    for array in arrays.values():
        crc = zlib.crc32(_byte_view(array), crc)
    header = {
        **header,
        "arrays": [[name, array.dtype.str, list(array.shape)] for name, array in arrays.items()],
        "payload_crc32": crc,
    }
    raw_header = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode()
    with path.open("wb") as file:
        file.write(_PREFIX.pack(_MAGIC, len(raw_header), zlib.crc32(raw_header)))
        file.write(raw_header)
        for array in arrays.values():
            file.write(_byte_view(array))


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


def _read_into(file: io.BufferedIOBase, array: np.ndarray, crc: int) -> int:
    """Fill `array` from `file`; returns the CRC-32 continued over its bytes.

    Each chunk's CRC is computed on another thread while the next chunk is read, so reading and checking
    2 GB take about as long as the longer of the two rather than their sum."""
    view = _byte_view(array)
    with ThreadPoolExecutor(max_workers=1) as checker:
        checked = None
        for start in range(0, len(view), _READ_CHUNK):
            chunk = view[start : start + _READ_CHUNK]
            if file.readinto(chunk) != len(chunk):
                raise SnapshotError("file is truncated")
            crc = checked.result() if checked is not None else crc
            checked = checker.submit(zlib.crc32, chunk, crc)
        return checked.result() if checked is not None else crc


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
