from __future__ import annotations

from visual_search.bootstrap import Services
from visual_search.ingest import IngestItem


def ingest_keys(services: Services, files: dict[str, bytes], tags: dict[str, tuple[str, ...]] | None = None):
    """Put files in the store and index them, as `visual-search add` does."""
    tags = tags or {}
    for key, data in files.items():
        services.store.put(key, data)
    return services.ingestor.ingest([IngestItem(k, d, tags.get(k, ())) for k, d in files.items()])
