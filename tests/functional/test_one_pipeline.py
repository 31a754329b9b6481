"""One ledger-guarded pipeline, built one way: the local service (which indexes its own writes) and the
ingest worker keep their ledger entries in the same scope for the same index, so neither answers
"indexed" for vectors the other's index does not hold (a cluster made anew starts an empty scope)."""

from __future__ import annotations

from tests.functional.conftest import make_settings
from visual_search import bootstrap
from visual_search.bootstrap import build_ingest, build_services, ledger_scope
from visual_search.index.embedded import EmbeddedIndex
from visual_search.settings import IngestSettings


def test_the_service_and_the_ingest_worker_record_into_one_scope_for_one_index(
    tmp_path, tiny_model_dir, monkeypatch
):
    # Given a local service in front of an OpenSearch index (here an embedded one stands in for it)
    made = iter(range(2))

    def embedded(settings, embedder):
        return EmbeddedIndex(tmp_path / f"index-{next(made)}.sqlite", embedder.dim)

    monkeypatch.setattr(bootstrap, "_build_index", embedded)
    where = {"index_backend": "opensearch", "opensearch_endpoint": "https://search.example:9200"}
    service = build_services(make_settings(tmp_path / "data", tiny_model_dir, **where))
    worker = build_ingest(IngestSettings(model_dir=tiny_model_dir, data_dir=tmp_path / "data", **where))
    try:
        # Then both record into the scope of that index, the cluster's endpoint included
        assert service.ledger is not None
        assert service.ledger.scope == worker.ledger.scope
        assert service.ledger.scope == ledger_scope(worker.settings, service.embedder.model_id)
        assert "@" in service.ledger.scope
    finally:
        service.close()
        worker.close()
