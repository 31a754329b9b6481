"""The ledger describes one index: a cluster made anew (new endpoint after a `cdk destroy` or a rename)
gets an empty ledger, so nothing is skipped as "indexed" when its vectors are gone."""

from __future__ import annotations

from visual_search.bootstrap import ledger_scope
from visual_search.ledger.port import LedgerEntry
from visual_search.ledger.sqlite import SqliteLedger
from visual_search.settings import IngestSettings

OLD = "https://abc123.eu-west-1.aoss.amazonaws.com"
NEW = "https://xyz789.eu-west-1.aoss.amazonaws.com"  # the same collection name, created again


def _scope(endpoint: str, index: str = "visual-search", model: str = "clip@1") -> str:
    settings = IngestSettings(
        index_backend="opensearch", opensearch_endpoint=endpoint, opensearch_index=index
    )
    return ledger_scope(settings, model)


def test_the_same_index_on_the_same_cluster_keeps_its_ledger():
    assert _scope(OLD) == _scope(OLD)


def test_another_cluster_another_index_name_or_another_model_is_another_ledger():
    assert len({_scope(OLD), _scope(NEW), _scope(OLD, index="other"), _scope(OLD, model="clip@2")}) == 4


def test_an_asset_indexed_into_a_lost_collection_is_not_skipped_on_its_replacement(tmp_path):
    # Given the ledger said "indexed" for an asset on the old collection
    entry = LedgerEntry("a1", "shoes/red.jpg", "0001", "indexed")
    old = SqliteLedger(tmp_path / "ledger.sqlite", _scope(OLD))
    assert old.record(entry)
    old.close()
    # When the ingest worker starts against the collection that replaced it
    new = SqliteLedger(tmp_path / "ledger.sqlite", _scope(NEW))
    # Then the same event is news to it, so the image is indexed again
    assert new.get("a1") is None
    assert new.record(entry)
    new.close()


def test_the_embedded_index_keeps_the_models_scope():
    assert ledger_scope(IngestSettings(), "clip@1") == "clip_1"
