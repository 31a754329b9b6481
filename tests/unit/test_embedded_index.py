"""Embedded-only behaviour: persistence, the graph cache and its snapshots, crash safety, the ANN path.

Shared VectorIndex behaviour is in tests/conformance. Here `exact_threshold=0` forces queries through the
usearch graph, which the conformance suite's small indexes never reach.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.documents import document
from visual_search.domain.document import AssetDocument
from visual_search.errors import IndexInUse
from visual_search.index._usearch_graph import Graph
from visual_search.index.embedded import EmbeddedIndex
from visual_search.index.port import Filters, IndexedAsset, SearchAfter
from visual_search.index.ranking import exact_scores

DIM = 16
LOGGER = "visual_search.index.embedded"


def aid(number: int) -> str:
    return f"{number:032x}"


CENTRES = np.random.default_rng(99).standard_normal((20, DIM))


def clustered(rng: np.random.Generator, count: int) -> np.ndarray:
    """Unit vectors around fixed centres, like real embeddings (uniform noise has no neighbourhoods)."""
    vectors = CENTRES[rng.integers(0, len(CENTRES), count)] + 0.3 * rng.standard_normal((count, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def assets(vectors: np.ndarray, start: int = 0) -> list[IndexedAsset]:
    return [
        IndexedAsset(aid(start + n), vector, numbered(start + n, folder="odd" if n % 2 else "even"))
        for n, vector in enumerate(vectors)
    ]


def numbered(n: int, **fields: Any) -> AssetDocument:
    return document(aid(n), str(n), **fields)


def exact_top(
    vectors: np.ndarray, query: np.ndarray, count: int, among: range | list[int] | None = None
) -> list[str]:
    """Ids of the `count` best of `vectors` (asset n has vector n), optionally only among some numbers."""
    scores = vectors.astype(np.float64) @ query.astype(np.float64)
    numbers = range(len(vectors)) if among is None else among
    return [aid(n) for n in sorted(numbers, key=lambda n: (-scores[n], n))[:count]]


def snapshots(folder: Path) -> list[Path]:
    """A snapshot's files: the graph (`.usearch`) and the rows with the checksums (`.rows`)."""
    return sorted([*folder.glob("*.usearch"), *folder.glob("*.rows")])


def put_back(folder: Path, kept: dict[str, bytes]) -> None:
    """Only the snapshot files `kept` earlier, as if the process had died before writing later ones."""
    for path in snapshots(folder):
        path.unlink()
    for name, content in kept.items():
        (folder / name).write_bytes(content)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "index.sqlite3"


@pytest.fixture
def data() -> np.ndarray:
    return clustered(np.random.default_rng(0), 2000)


@pytest.fixture
def queries() -> np.ndarray:
    return clustered(np.random.default_rng(1), 8)


def open_ann(db: Path, **options: object) -> EmbeddedIndex:
    return EmbeddedIndex(db, DIM, exact_threshold=0, **options)


# --- persistence --------------------------------------------------------------------------------------


def test_reopened_index_sees_every_asset_and_answers_the_same(db, data, queries):
    with open_ann(db) as index:
        index.upsert(assets(data))
        index.delete([aid(3)])
        before = [index.knn_page(query, 10) for query in queries]

    with open_ann(db) as index:
        assert index.count() == len(data) - 1
        assert index.get(aid(3)) is None
        assert index.get(aid(4)).document == numbered(4, folder="even")
        assert [index.knn_page(query, 10) for query in queries] == before


def test_a_document_an_older_version_stored_is_read_as_it_is_and_written_back_byte_for_byte(db, data):
    # Given a row whose document an older version wrote (no context: it came later)
    old = (
        '{"asset_id":"00000000000000000000000000000001","key":"shoes/red.jpg","public_id":"shoes/red",'
        '"folder":"shoes","format":"jpg","width":640,"height":480,"bytes":51234,'
        '"etag":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","tags":["new","sale"],"created_at":"2026-11-24T10:00:00Z",'
        '"model_id":"clip"}'
    )
    with open_ann(db) as index:
        index.upsert([IndexedAsset(aid(1), data[0], numbered(1))])
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE assets SET document = ? WHERE asset_id = ?", (old, aid(1)))

    # When it is read, filtered on and written again as read
    with open_ann(db) as index:
        stored = index.get(aid(1))
        assert (stored.document.public_id, stored.document.tags) == ("shoes/red", ("new", "sale"))
        assert stored.document.etag == "e" * 32
        index.upsert([stored])

    # Then the row holds the same text
    with sqlite3.connect(db) as connection:
        (text,) = connection.execute("SELECT document FROM assets WHERE asset_id = ?", (aid(1),)).fetchone()
    assert text == old


def test_close_writes_a_snapshot_of_the_graph(db, data):
    with open_ann(db) as index:
        index.upsert(assets(data))

    assert [path.name for path in snapshots(db.parent)] == ["index.sqlite3.1.rows", "index.sqlite3.1.usearch"]


def test_an_index_whose_every_asset_was_deleted_snapshots_and_reopens_empty(db, data):
    # The snapshot's byte view of an empty column raised (memoryview refuses a zero in its shape).
    with open_ann(db) as index:
        index.upsert(assets(data[:5]))
        index.delete([aid(i) for i in range(5)])

    with open_ann(db) as index:
        assert index.count() == 0
        assert index.knn_page(data[0], 10) == []


def test_a_snapshot_is_written_every_n_changes(db, data):
    with open_ann(db, snapshot_every=100) as index:
        index.upsert(assets(data[:60]))
        assert snapshots(db.parent) == []

        index.upsert(assets(data[60:120], start=60))

        # (named after the change the graph had reached then: the builder may still be on the second)
        assert [path.suffix for path in snapshots(db.parent)] == [".rows", ".usearch"]


def test_reopen_without_a_snapshot_rebuilds_the_graph(db, data, queries, caplog):
    with open_ann(db) as index:
        index.upsert(assets(data))
    for path in snapshots(db.parent):
        path.unlink()

    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        hits = index.knn_page(queries[0], 10)

    assert "building the ANN graph" in caplog.text
    assert [hit.asset_id for hit in hits] == exact_top(data, queries[0], 10)


@pytest.mark.parametrize("suffix", [".usearch", ".rows"])
def test_reopen_with_a_truncated_snapshot_rebuilds_the_graph(db, data, queries, caplog, suffix):
    with open_ann(db) as index:
        index.upsert(assets(data))
    (snapshot,) = [path for path in snapshots(db.parent) if path.suffix == suffix]
    snapshot.write_bytes(snapshot.read_bytes()[:1000])

    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        hits = index.knn_page(queries[0], 10)

    assert "building the ANN graph" in caplog.text
    assert [hit.asset_id for hit in hits] == exact_top(data, queries[0], 10)


@pytest.mark.parametrize("suffix", [".usearch", ".rows"])
@pytest.mark.parametrize("where", [0.3, 0.6, 0.9])
def test_reopen_with_one_flipped_bit_in_a_snapshot_rebuilds_and_answers_exactly(
    db, data, queries, caplog, suffix, where
):
    # A flipped bit in a vector would change scores, one in the graph's links could crash usearch:
    # the checksums must catch it before either is used.
    with open_ann(db) as index:
        index.upsert(assets(data))
    (snapshot,) = [path for path in snapshots(db.parent) if path.suffix == suffix]
    content = bytearray(snapshot.read_bytes())
    # (the rows file ends in room for more rows, zeros no row is read from before it is written)
    content[int(len(content.rstrip(b"\0")) * where)] ^= 0x10
    snapshot.write_bytes(bytes(content))

    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        hits = index.knn_page(queries[0], 10)
        assert index.get(aid(5)).vector.tobytes() == data[5].tobytes()

    assert "building the ANN graph" in caplog.text
    assert [hit.asset_id for hit in hits] == exact_top(data, queries[0], 10)
    assert [hit.score for hit in hits] == exact_scores(data, queries[0])[
        [int(h.asset_id, 16) for h in hits]
    ].tolist()


def test_a_snapshot_of_another_database_at_the_same_path_is_not_used(db, data, queries, caplog):
    # Given the snapshot of one database, and then another database file put in its place, with as many
    # changes behind it
    with open_ann(db) as index:
        index.upsert(assets(data[:1000]))
    kept = {path.name: path.read_bytes() for path in snapshots(db.parent)}
    for path in db.parent.iterdir():
        path.unlink()
    with open_ann(db) as index:
        index.upsert(assets(data[1000:], start=1000))
    for path in snapshots(db.parent):
        path.unlink()
    for name, content in kept.items():
        (db.parent / name).write_bytes(content)

    # When it is opened, Then the other database's snapshot is not served
    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        hits = index.knn_page(queries[0], 10)

    assert "building the ANN graph" in caplog.text
    assert [hit.asset_id for hit in hits] == exact_top(data, queries[0], 10, among=range(1000, 2000))


def test_a_snapshot_newer_than_the_database_is_not_used(db, data, queries, caplog):
    # Given a database restored from a backup taken before the snapshot's changes
    with open_ann(db) as index:
        index.upsert(assets(data[:1000]))
    backup = {db.name: db.read_bytes()}  # closed, so the WAL was checkpointed into the file
    with open_ann(db) as index:
        index.upsert(assets(data[1000:], start=1000))
    newer = {path.name: path.read_bytes() for path in snapshots(db.parent)}
    for path in db.parent.iterdir():
        path.unlink()
    for name, content in {**backup, **newer}.items():
        (db.parent / name).write_bytes(content)

    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        assert index.count() == 1000
        hits = index.knn_page(queries[0], 10)

    assert "building the ANN graph" in caplog.text
    assert [hit.asset_id for hit in hits] == exact_top(data, queries[0], 10, among=range(1000))


def test_changes_after_reopening_never_write_into_the_snapshot_file(db, data, queries):
    # The snapshot's vectors are mapped copy-on-write: replacing, deleting (which moves the last row into
    # the hole) and inserting change memory only, and the file still checks out afterwards.
    with open_ann(db) as index:
        index.upsert(assets(data[:1500]))
    (rows_file,) = db.parent.glob("*.rows")
    before = rows_file.read_bytes()

    with open_ann(db) as index:
        index.upsert([IndexedAsset(aid(5), data[1999], numbered(5))])
        index.delete([aid(0), aid(700)])
        index.upsert(assets(data[1500:], start=1500))

        assert rows_file.read_bytes() == before
        current = data.copy()
        current[5] = data[1999]
        present = [n for n in range(len(data)) if n not in (0, 700)]
        for query in [*queries, data[1999], data[1499]]:
            assert [hit.asset_id for hit in index.knn_page(query, 10)] == exact_top(
                current, query, 10, present
            )


def test_an_index_reopened_from_a_snapshot_grows_past_the_room_kept_for_more_rows(db, data, queries):
    # Given a snapshot of 500 rows (room kept for 1,024 more)
    with open_ann(db) as index:
        index.upsert(assets(data[:500]))

    # When 1,500 rows are added after reopening, Then all are found, then and after another reopen
    with open_ann(db) as index:
        index.upsert(assets(data[500:], start=500))
        assert index.count() == len(data)
        for query in [*queries, data[1999]]:
            assert [hit.asset_id for hit in index.knn_page(query, 10)] == exact_top(data, query, 10)
    with open_ann(db) as index:
        for query in [*queries, data[1999]]:
            assert [hit.asset_id for hit in index.knn_page(query, 10)] == exact_top(data, query, 10)


def test_reopen_from_a_snapshot_reads_no_vector_from_sqlite(db, data, queries, monkeypatch):
    # The point of the rows snapshot: opening a large index must not read every vector back from SQLite.
    with open_ann(db) as index:
        index.upsert(assets(data))
        before = [index.knn_page(query, 10) for query in queries]
    monkeypatch.setattr(
        "visual_search.index._sqlite_store.SqliteStore.load_all",
        lambda self: pytest.fail("the snapshot was not used"),
    )

    with open_ann(db) as index:
        assert [index.knn_page(query, 10) for query in queries] == before


def test_reopen_with_a_stale_snapshot_replays_the_later_changes(db, data, caplog):
    # Given a snapshot taken before an insert, a replacement and a deletion
    with open_ann(db, snapshot_every=10**9) as index:
        index.upsert(assets(data[:1500]))
        index.upsert([IndexedAsset(aid(7), data[7], numbered(7, tags=["old"]))])
        index.save_snapshot()
        kept = {path.name: path.read_bytes() for path in snapshots(db.parent)}
        index.upsert(assets(data[1500:], start=1500))
        index.upsert([IndexedAsset(aid(0), data[1999], document(aid(0), "moved"))])
        index.upsert([IndexedAsset(aid(7), data[7], numbered(7, folder="new", tags=["new"]))])
        index.delete([aid(1999)])
    put_back(db.parent, kept)
    caplog.clear()

    # When reopening
    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        # Then the graph caught up instead of being rebuilt, and serves every change
        assert "building the ANN graph" not in caplog.text
        assert index.count() == 1999
        assert [hit.asset_id for hit in index.knn_page(data[1999], 1)] == [aid(0)]
        assert [hit.asset_id for hit in index.knn_page(data[1800], 1)] == [aid(1800)]
        assert aid(1999) not in [hit.asset_id for hit in index.knn_page(data[1999], 20)]
        # and the filters see the replaced fields, not the snapshot's
        assert [hit.asset_id for hit in index.knn_page(data[7], 5, filters=Filters(tags=("new",)))] == [
            aid(7)
        ]
        assert index.knn_page(data[7], 5, filters=Filters(tags=("old",))) == []
        assert [hit.asset_id for hit in index.knn_page(data[7], 5, filters=Filters(folder="new"))] == [aid(7)]


def test_an_index_written_before_snapshots_had_rows_opens_with_every_asset(db, data, queries, caplog):
    # Given the files of the previous version: no db_id, no deletion log, a graph snapshot alone
    with open_ann(db) as index:
        index.upsert(assets(data))
        index.delete([aid(3)])
    with sqlite3.connect(db) as connection:
        connection.execute("DELETE FROM meta WHERE name = 'db_id'")
        connection.execute("DROP TABLE deleted")
    for path in db.parent.glob("*.rows"):
        path.unlink()

    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        assert "building the ANN graph" in caplog.text
        assert index.count() == len(data) - 1
        assert [hit.asset_id for hit in index.knn_page(queries[0], 10)] == exact_top(
            data, queries[0], 10, among=[n for n in range(len(data)) if n != 3]
        )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        assert "building the ANN graph" not in caplog.text  # the new snapshot is used from then on
        assert index.count() == len(data) - 1


def test_a_second_open_of_the_same_file_is_refused(db):
    with EmbeddedIndex(db, DIM), pytest.raises(IndexInUse, match="already open"):
        EmbeddedIndex(db, DIM)


def test_opening_with_another_dimension_is_refused(db):
    EmbeddedIndex(db, DIM).close()

    with pytest.raises(ValueError, match="dimension 16"):
        EmbeddedIndex(db, DIM * 2)


def test_a_closed_index_refuses_calls(db):
    index = EmbeddedIndex(db, DIM)
    index.close()

    with pytest.raises(RuntimeError, match="closed"):
        index.count()


# --- crash safety -------------------------------------------------------------------------------------

# --- the ANN path -------------------------------------------------------------------------------------


def test_graph_search_top_10_equals_exact_brute_force(db, data, queries):
    with open_ann(db) as index:
        index.upsert(assets(data))

        for query in queries:
            assert [hit.asset_id for hit in index.knn_page(query, 10)] == exact_top(data, query, 10)


def test_graph_search_pages_equal_one_big_call(db, data, queries):
    with open_ann(db) as index:
        index.upsert(assets(data))
        query = queries[0]

        paged, after = [], None
        while page := index.knn_page(query, 7, after=after, max_hits=100):
            paged += page
            after = SearchAfter(page[-1].score, page[-1].asset_id)

        assert paged == index.knn_page(query, 100, max_hits=100)
        assert [hit.asset_id for hit in paged] == exact_top(data, query, 100)


def test_graph_search_with_a_broad_filter_equals_exact(db, data, queries):
    # Given half the assets in folder "odd": too many to scan, so the graph is asked and post-filtered
    with open_ann(db) as index:
        index.upsert(assets(data))
        query = queries[1]

        hits = index.knn_page(query, 10, filters=Filters(folder="odd"))

        assert [hit.asset_id for hit in hits] == exact_top(data, query, 10, among=range(1, len(data), 2))


def test_graph_search_respects_min_score(db, data, queries):
    with open_ann(db) as index:
        index.upsert(assets(data))
        query = queries[2]
        scores = np.sort(data.astype(np.float64) @ query)[::-1]
        threshold = float(scores[40] + scores[41]) / 2

        hits = index.knn_page(query, 100, min_score=threshold)

        assert [hit.asset_id for hit in hits] == exact_top(data, query, 41)


# --- the graph, built on another thread ---------------------------------------------------------------


class Gate:
    """Holds `Graph.add` while closed (it starts open), as a slow graph build would."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.entered = threading.Event()  # an add is waiting at the closed gate

    def close(self) -> None:
        self._open.clear()
        self.entered.clear()

    def open(self) -> None:
        self._open.set()

    def pass_through(self) -> None:
        if self._open.is_set():
            return
        if threading.current_thread() is threading.main_thread():
            raise AssertionError("the graph was added to on the writer's thread, before the write returned")
        self.entered.set()
        assert self._open.wait(timeout=30)


@pytest.fixture
def gate(monkeypatch) -> Gate:
    gate, add = Gate(), Graph.add

    def gated_add(graph: Graph, keys: np.ndarray, vectors: np.ndarray) -> None:
        gate.pass_through()
        add(graph, keys, vectors)

    monkeypatch.setattr(Graph, "add", gated_add)
    return gate


def test_an_upsert_returns_before_the_graph_holds_it_and_searches_find_it_meanwhile(db, data, queries, gate):
    # Given an index whose graph holds 1,700 assets, and then is held back
    current = data.copy()
    current[7] = data[1999]
    present = [n for n in range(len(data)) if n != 1600]
    with open_ann(db) as index:
        index.upsert(assets(data[:1700]))
        assert index.wait_for_graph(timeout=30)
        gate.close()

        # When 300 more are written, one replaced and one deleted (fewer than a quarter of the index, so
        # searches still ask the graph and score the rest exactly)
        index.upsert(assets(data[1700:], start=1700))
        index.upsert([IndexedAsset(aid(7), data[1999], numbered(7))])
        index.delete([aid(1600)])

        # Then the writes returned, and every search sees them
        assert not index.wait_for_graph(timeout=0)
        probes = [*queries, data[1999], data[7], data[1600], data[1750]]
        for query in probes:
            assert [hit.asset_id for hit in index.knn_page(query, 10)] == exact_top(
                current, query, 10, present
            )
        # and once the graph caught up, it answers the same
        gate.open()
        assert index.wait_for_graph(timeout=30)
        for query in probes:
            assert [hit.asset_id for hit in index.knn_page(query, 10)] == exact_top(
                current, query, 10, present
            )


def test_a_row_replaced_or_deleted_while_the_builder_adds_it_leaves_no_stale_vector_in_the_graph(
    db, data, gate, caplog
):
    # Given the builder in the middle of adding ten new rows
    with open_ann(db) as index:
        index.upsert(assets(data[:1990]))
        assert index.wait_for_graph(timeout=30)
        gate.close()
        index.upsert(assets(data[1990:], start=1990))
        assert gate.entered.wait(timeout=30)

        # When one of them is replaced (by the opposite vector) and another deleted before it is done
        opposite = -data[1993]
        index.upsert([IndexedAsset(aid(1993), opposite, numbered(1993))])
        index.delete([aid(1994)])
        gate.open()
        assert index.wait_for_graph(timeout=30)

        # Then the graph holds the replacement's vector (the first is the last a search for it would
        # propose) and not the deleted row
        assert index.knn_page(opposite, 1)[0].asset_id == aid(1993)
        assert aid(1994) not in [hit.asset_id for hit in index.knn_page(data[1994], 10)]
    # and its snapshot agrees with the database
    caplog.clear()  # the first open logged building its (empty) graph, if another test set INFO
    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        assert "disagrees" not in caplog.text
        assert "building the ANN graph" not in caplog.text
        assert index.count() == 1999


def test_a_snapshot_taken_while_the_graph_lags_replays_what_it_lacks_on_reopen(
    db, data, queries, gate, caplog
):
    # Given a snapshot taken while the graph held only the first write's rows
    with open_ann(db, snapshot_every=10**9) as index:
        index.upsert(assets(data[:1000]))
        assert index.wait_for_graph(timeout=30)
        gate.close()
        index.upsert(assets(data[1000:], start=1000))
        threading.Timer(0.3, gate.open).start()  # the snapshot waits for a chunk the builder holds
        index.save_snapshot()
        kept = {path.name: path.read_bytes() for path in snapshots(db.parent)}
    # (it is named after the change the graph held in full)
    assert sorted(kept) == ["index.sqlite3.1.rows", "index.sqlite3.1.usearch"]
    put_back(db.parent, kept)  # as if the process had died before closing

    # When reopening, Then the second write's rows are replayed into the graph, not rebuilt
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER), open_ann(db) as index:
        assert "building the ANN graph" not in caplog.text
        assert "disagrees" not in caplog.text
        assert index.count() == 2000
        assert index.wait_for_graph(timeout=30)
        for query in [*queries, data[1500]]:
            assert [hit.asset_id for hit in index.knn_page(query, 10)] == exact_top(data, query, 10)


# --- scores and threads -------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(
    rows=st.integers(1, 3000),
    dim=st.sampled_from([7, 16, 512]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_rows_score_does_not_depend_on_the_rows_scored_with_it(rows, dim, seed):
    # A cursor's score must compare exactly with the same asset's score computed in another batch.
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    query = rng.standard_normal(dim).astype(np.float32)
    subset = rng.choice(rows, size=int(rng.integers(1, rows + 1)), replace=False)

    together, apart = exact_scores(vectors, query), exact_scores(vectors[subset], query)

    np.testing.assert_array_equal(apart, together[subset])
    np.testing.assert_array_equal(exact_scores(vectors[subset[:1]], query), together[subset[:1]])


def test_concurrent_writes_and_searches_keep_the_index_consistent(db, data, queries):
    errors: list[BaseException] = []

    def guarded(work):
        def run():
            try:
                work()
            except BaseException as exc:  # collected, then re-raised by the test thread
                errors.append(exc)

        return run

    with open_ann(db, snapshot_every=250) as index:

        def write(start: int) -> None:
            for offset in range(0, 500, 50):
                index.upsert(assets(data[start + offset : start + offset + 50], start=start + offset))
                index.delete([aid(start + offset)])

        def search() -> None:
            for query in np.tile(queries, (10, 1)):
                hits = index.knn_page(query, 10, filters=Filters(folder="odd") if query[0] > 0 else None)
                assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)

        threads = [threading.Thread(target=guarded(lambda s=s: write(s))) for s in (0, 500, 1000)]
        threads += [threading.Thread(target=guarded(search)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert index.count() == 1500 - 30
    with open_ann(db) as index:
        assert index.count() == 1500 - 30
