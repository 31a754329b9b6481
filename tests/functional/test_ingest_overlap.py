"""The ingest pipeline embeds in groups, decoding the next group on a worker thread while the model
embeds this one, and writes the whole batch to the index in one upsert. None of that may show from
outside: results keep the items' order, a bad image is refused alone with its reason, and the index
ends up exactly as the serial pipeline leaves it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import images
from visual_search.embedding.decode import DecodeLimits
from visual_search.index.embedded import EmbeddedIndex
from visual_search.ingest.pipeline import EMBED_BATCH, IngestItem, Ingestor, StageTimings, _groups
from visual_search.storage.port import RESERVED_PREFIX

CREATED = datetime(2026, 11, 29, tzinfo=UTC)  # else each document carries the time it was made
BAD = {3: images.truncated_jpeg, 9: images.text_file, 10: images.png_bomb, 17: images.empty}


def _items() -> list[IngestItem]:
    """20 items (three embedding groups), bad ones in every group and at group edges."""
    return [
        IngestItem(f"photos/{i:02d}.jpg", BAD[i]() if i in BAD else images.jpeg(seed=i), created_at=CREATED)
        for i in range(20)
    ] + [IngestItem(f"{RESERVED_PREFIX}renditions/x.jpg", images.jpeg(seed=99))]


class CountingIndex(EmbeddedIndex):
    upserts: list[int]

    def upsert(self, assets, known=None):
        self.upserts.append(len(assets))
        return super().upsert(assets, known)


def _ingest(tmp: Path, embedder, workers: int):
    index = CountingIndex(tmp / f"index-{workers}.sqlite3", embedder.dim)
    index.upserts = []
    ingestor = Ingestor(embedder, index, "local", DecodeLimits(), decode_workers=workers)
    timings = StageTimings()
    results = ingestor.ingest(_items(), timings)
    return index, results, timings


@pytest.fixture(scope="module")
def serial_and_overlapped(tmp_path_factory, tiny_embedder):
    tmp = tmp_path_factory.mktemp("overlap")
    serial = _ingest(tmp, tiny_embedder, workers=0)
    overlapped = _ingest(tmp, tiny_embedder, workers=1)
    yield serial, overlapped
    serial[0].close()
    overlapped[0].close()


def test_overlapped_results_keep_the_items_order_and_each_refusal_its_own_reason(serial_and_overlapped):
    (_, serial, _), (_, overlapped, _) = serial_and_overlapped
    items = _items()
    assert [r.key for r in overlapped] == [item.key for item in items]
    assert overlapped == serial
    refused = {i: r.reason for i, r in enumerate(overlapped) if r.status == "refused"}
    assert refused == {
        3: "corrupt",
        9: "unsupported_format",
        10: "too_many_pixels",
        17: "empty",
        20: "reserved_name",
    }
    assert all(r.status == "indexed" for i, r in enumerate(overlapped) if i not in refused)


def test_overlapped_ingest_indexes_exactly_what_serial_ingest_does(serial_and_overlapped):
    (serial_index, serial, _), (overlapped_index, _, _) = serial_and_overlapped
    for result in serial:
        a, b = serial_index.get(result.asset_id), overlapped_index.get(result.asset_id)
        assert (a is None) == (b is None) == (result.status == "refused")
        if a is not None:
            assert a.document == b.document
            np.testing.assert_allclose(a.vector, b.vector, atol=1e-6)


def test_a_batch_is_one_index_upsert_whatever_the_number_of_embedding_groups(serial_and_overlapped):
    for index, results, timings in serial_and_overlapped:
        assert index.upserts == [sum(r.status == "indexed" for r in results)]
        assert timings.decode_s > 0
        assert timings.embed_s > 0


def test_groups_are_near_equal_and_never_larger_than_an_embedding_batch():
    assert _groups([], 8) == []
    assert [len(g) for g in _groups(range(10), 8)] == [5, 5]
    assert [len(g) for g in _groups(range(21), 8)] == [7, 7, 7]
    assert _groups([1, 4, 6], 2) == [[1, 4], [6]]
    for n in range(1, 40):
        groups = _groups(list(range(n)), EMBED_BATCH)
        assert [i for g in groups for i in g] == list(range(n))
        assert max(len(g) for g in groups) - min(len(g) for g in groups) <= 1
        assert max(len(g) for g in groups) <= EMBED_BATCH
