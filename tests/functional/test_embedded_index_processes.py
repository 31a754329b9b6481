"""The embedded index across processes: a crash after a snapshot, kill -9 mid-write, and the import order
that once crashed onnxruntime. Each starts a Python process, so they live here rather than in the unit
tier (which starts none); the rest of the embedded index's behaviour is in tests/unit."""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.unit.test_embedded_index import DIM, LOGGER, aid, open_ann
from visual_search.index.embedded import EmbeddedIndex


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.sqlite3"


CRASH_AFTER_A_SNAPSHOT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import numpy as np
    from visual_search.domain.document import AssetDocument
    from visual_search.index.embedded import EmbeddedIndex
    from visual_search.index.port import IndexedAsset

    def asset(n, vector):
        document = AssetDocument(f"{n:032x}", f"{n}.jpg", "jpg", 1, "2026-11-24T10:00:00Z")
        return IndexedAsset(f"{n:032x}", vector, document)

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = EmbeddedIndex(Path(sys.argv[1]), 16, snapshot_every=10**9)
    index.upsert([asset(n, v) for n, v in enumerate(vectors[:200])])
    index.save_snapshot()
    index.delete([f"{3:032x}"])
    index.upsert([asset(n, vectors[n]) for n in range(200, 300)])
    os._exit(0)  # no close, so no newer snapshot: the next open catches up from SQLite
    """
)


def crash_after_a_snapshot(db: Path) -> None:
    subprocess.run([sys.executable, "-c", CRASH_AFTER_A_SNAPSHOT, str(db)], check=True, timeout=120)


def test_reopen_after_a_crash_catches_up_deletions_from_the_log(db, caplog):
    crash_after_a_snapshot(db)

    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        assert "building the ANN graph" not in caplog.text
        assert index.count() == 299
        assert index.get(aid(3)) is None
        assert aid(3) not in [hit.asset_id for hit in index.knn_page(index.get(aid(4)).vector, 300)]
        assert index.knn_page(index.get(aid(250)).vector, 1)[0].asset_id == aid(250)


def test_a_deletion_missing_from_the_log_is_detected_and_the_state_rebuilt(db, caplog):
    # Given a deletion after the snapshot that the log does not record (as an older version would do)
    crash_after_a_snapshot(db)
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM deleted")

    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        assert "disagrees with the database" in caplog.text
        assert "building the ANN graph" in caplog.text
        assert index.count() == 299
        assert aid(3) not in [hit.asset_id for hit in index.knn_page(index.get(aid(4)).vector, 300)]


# --- crash safety ---------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from visual_search.domain.document import AssetDocument
    from visual_search.index.embedded import EmbeddedIndex
    from visual_search.index.port import IndexedAsset

    # Snapshots every few changes, so kills also land while one is being written.
    index = EmbeddedIndex(Path(sys.argv[1]), 16, snapshot_every=7)
    rng = np.random.default_rng(0)
    for batch in range(100_000):
        vectors = rng.standard_normal((3, 16)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"{3 * batch + n:032x}" for n in range(3)]
        documents = [AssetDocument(i, f"{batch}/{i}.jpg", "jpg", 1, "2026-11-24T10:00:00Z") for i in ids]
        index.upsert([IndexedAsset(i, v, d) for i, v, d in zip(ids, vectors, documents)])
        print(" ".join("+" + i for i in ids), flush=True)
        if batch % 4 == 3:
            index.delete([ids[0]])
            print("-" + ids[0], flush=True)
    """
)


def test_kill_9_mid_write_loses_nothing_acknowledged(db):
    # Given a writer that prints "+id" once an upsert returned and "-id" once a delete returned
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        acknowledged += line.split()

    # When it is killed mid-way
    writer.send_signal(signal.SIGKILL)
    rest, _ = writer.communicate()
    acknowledged += rest.split()
    assert writer.returncode == -signal.SIGKILL
    assert len(acknowledged) >= 300

    # Then every acknowledged write holds, and the graph agrees with the table
    present = {token[1:]: token[0] == "+" for token in acknowledged}
    with EmbeddedIndex(db, DIM, exact_threshold=0) as index:
        assert {asset_id: index.get(asset_id) is not None for asset_id in present} == present
        last = index.get(acknowledged[-2][1:] if acknowledged[-1][0] == "-" else acknowledged[-1][1:])
        assert index.knn_page(last.vector, 1)[0].asset_id == last.asset_id


def test_onnxruntime_can_be_imported_after_the_embedded_index():
    # usearch's static libstdc++ used to crash onnxruntime's import in this order (see index/_preload.py)
    script = "import visual_search.index.embedded, onnxruntime"

    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stderr[-2000:]
