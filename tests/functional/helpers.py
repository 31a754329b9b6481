from __future__ import annotations

from visual_search.bootstrap import Services
from visual_search.domain.commands import IndexObject
from visual_search.ingest.objects import IngestReport


def ingest_keys(
    services: Services, files: dict[str, bytes], tags: dict[str, tuple[str, ...]] | None = None
) -> IngestReport:
    """Store files and index them through the one write path, as `visual-search add` does."""
    tags = tags or {}
    return services.writer.put_many(
        [IndexObject(k, d, tags.get(k, ()), opted_in=True) for k, d in files.items()]
    )
