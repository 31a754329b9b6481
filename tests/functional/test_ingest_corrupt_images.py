"""A corrupt image at ingest is refused (ledger entry, metric), never retried, and never costs its
neighbours: a truncated PNG once raised out of `Ingestor.ingest`, so `visual-search add` stopped with a
traceback having indexed none of its folder, and through S3 -> SQS -> the handler its message failed on
every receive until the dead-letter queue."""

from __future__ import annotations

import pytest

from tests.fixtures import images
from visual_search.cli import main as cli_main
from visual_search.domain.identity import derived_asset_id
from visual_search.ingest.objects import IngestReport

CORRUPT = {"png_first_60_bytes": images.png_first_60_bytes, "png_corrupt_idat": images.png_corrupt_idat}


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_add_over_a_folder_with_a_corrupt_png_indexes_the_rest_and_lists_it_refused(
    kind, tmp_path, tiny_model_dir, monkeypatch, capsys
):
    monkeypatch.setenv("VS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VS_MODEL_DIR", str(tiny_model_dir))
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.png").write_bytes(CORRUPT[kind]())
    for i in range(3):
        (folder / f"good-{i}.jpg").write_bytes(images.jpeg(seed=i))

    assert cli_main(["add", str(folder), "--quiet"]) == 0

    out, err = capsys.readouterr()
    assert "indexed: 3" in out
    assert "refused: 1" in out
    assert "broken.png: corrupt" in err


@pytest.mark.parametrize("kind", sorted(CORRUPT))
def test_a_corrupt_png_through_s3_and_sqs_is_refused_once_and_its_neighbours_indexed(world, kind):
    services = world.worker()
    world.put("mixed/broken.png", CORRUPT[kind]())
    for i in range(3):
        world.put(f"mixed/good-{i}.jpg", images.jpeg(seed=i))

    report = IngestReport()
    responses = world.drain(services, report=report)

    assert all(r["batchItemFailures"] == [] for r in responses)  # nothing goes back to the queue
    assert world.peek(world.queue_url) == []
    broken = services.ledger.get(derived_asset_id(services.store.name, "mixed/broken.png"))
    assert (broken.state, broken.reason) == ("refused", "corrupt")
    for i in range(3):
        good = services.ledger.get(derived_asset_id(services.store.name, f"mixed/good-{i}.jpg"))
        assert good.state == "indexed"
    assert report.counts["refused"] == 1  # published as ImagesRefused
    assert [r.reason for r in report.refused] == ["corrupt"]
    assert services.index.count() == 3
    services.close()
