"""The service commands of the CLI (serve, add, search, duplicates): argument wiring and printing
only; every command is one call into the services built by `build_services`."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from visual_search.assets import names
from visual_search.assets.identity import kept_asset_id, stored_asset_id
from visual_search.bootstrap import Services, build_services
from visual_search.domain.commands import IndexObject
from visual_search.errors import ImageRejected
from visual_search.index.port import Filters
from visual_search.model_build.default_model import default_model
from visual_search.remote_add import UploadClient
from visual_search.search.duplicates import DuplicateGroup
from visual_search.search.service import SearchQuery
from visual_search.settings import CoreSettings, service_settings
from visual_search.storage.port import RESERVED_PREFIX, is_reserved

BATCH = 16
S = TypeVar("S", bound=CoreSettings)


def services_from_env() -> Services:
    return build_services(with_model(service_settings()))


def with_model(settings: S) -> S:
    """The settings with the model folder resolved (the default model when none is configured),
    reporting on stderr what a first run downloads and builds, or why the tiny model stands in."""
    if settings.model_dir is not None:
        return settings
    chosen = default_model(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    if chosen.note:
        print(chosen.note, file=sys.stderr, flush=True)
    return settings.model_copy(update={"model_dir": chosen.folder})


def add_files(services: Services, sources: list[Path], prefix: str = "", progress: bool = True) -> Counter:
    """Index files and folders: store each under its path relative to the folder given, then embed in
    batches, through the same write path as an upload. Files already indexed with the same content are
    skipped, so re-running resumes. Each file is decoded before it is stored, as an upload is: one the
    pipeline would refuse is never stored, so it cannot replace the file of an asset already indexed."""
    pairs = list(_walk(sources, prefix))
    totals: Counter = Counter()
    refused: list[tuple[str, str]] = []
    with tqdm(total=len(pairs), unit="img", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(pairs), BATCH):
            batch = []
            for path, key in pairs[start : start + BATCH]:
                data = path.read_bytes()
                if _already_indexed(services, key, data):
                    totals["unchanged"] += 1
                    continue
                try:
                    decoded = services.ingestor.decode(data)
                except ImageRejected as exc:
                    totals["refused"] += 1
                    refused.append((key, _refusal(services, key, exc.reason, str(exc))))
                    continue
                asset_id = kept_asset_id(services.store, [key])
                batch.append(IndexObject(key, data, (), True, asset_id, decoded))
            report = services.writer.put_many(batch)
            totals.update(report.counts)
            if not services.writer.indexes_now:
                totals["stored"] += len(batch)
            for result in report.refused:  # refused after it was stored: removed as a destroy removes
                services.writer.delete(result.key)
                refused.append((result.key, f"{result.reason} — {result.message}"))
            bar.update(len(pairs[start : start + BATCH]))
    _print_refused(refused)
    return totals


def _refusal(services: Services, key: str, reason: str, message: str) -> str:
    """Why a file was not added, in one line; and that an asset already under its name is untouched."""
    why = f"{reason} — {message}"
    if services.store.head(key) is not None:
        why += "; the asset already under this name and its file are kept as they were"
    return why


def add_files_through(
    client: UploadClient, sources: list[Path], prefix: str = "", progress: bool = True
) -> Counter:
    """`add_files` through a running server's Upload API (`visual-search add --server URL`)."""
    client.check()
    pairs = list(_walk(sources, prefix))
    totals: Counter = Counter()
    refused: list[tuple[str, str]] = []
    with tqdm(total=len(pairs), unit="img", disable=not progress, file=sys.stderr) as bar:
        for path, key in pairs:
            result = client.add(key, path.read_bytes())
            totals[result.status] += 1
            if result.status == "refused":
                refused.append((key, result.message))
            bar.update(1)
    _print_refused(refused)
    return totals


def _print_refused(refused: list[tuple[str, str]]) -> None:
    if refused:
        print(f"refused {len(refused)} file(s):", file=sys.stderr)
        for key, why in refused:
            print(f"  {key}: {why}", file=sys.stderr)


def _walk(sources: list[Path], prefix: str) -> Iterator[tuple[Path, str]]:
    for source in sources:
        if source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")):
                yield from _unreserved(path, _key(prefix, path.relative_to(source).as_posix()))
        elif source.is_file():
            yield from _unreserved(source, _key(prefix, source.name))
        else:
            print(f"skipped {source}: no such file or folder", file=sys.stderr)


def _unreserved(path: Path, key: str) -> Iterator[tuple[Path, str]]:
    # Checked before the file is stored: under the reserved prefix it would replace our own files.
    if is_reserved(key):
        print(f"skipped {path}: {RESERVED_PREFIX} holds Visual Search's own files", file=sys.stderr)
    else:
        yield path, key


def _key(prefix: str, relative: str) -> str:
    return f"{prefix.strip('/')}/{relative}" if prefix.strip("/") else relative


def _already_indexed(services: Services, key: str, data: bytes) -> bool:
    import hashlib

    stored = services.index.get(stored_asset_id(services.store, key))
    return stored is not None and stored.document.etag == hashlib.md5(data, usedforsecurity=False).hexdigest()


def run_search(services: Services, args) -> int:
    image_bytes = Path(args.file).read_bytes() if args.file else None
    query = SearchQuery(
        text=args.text,
        image_url=args.url,
        image_bytes=image_bytes,
        asset_id=args.asset_id,
        max_results=args.max_results,
        next_cursor=args.cursor,
        threshold=args.threshold,
        filters=Filters(folder=names.folder_filter(args.folder or "") or None),
    )
    page = services.search.search(query)
    print(f"{'score':>7}  {'asset_id':32}  {'size':>11}  public_id")
    for hit in page.hits:
        doc = hit.document
        size = f"{doc.width}x{doc.height}"
        print(f"{max(0.0, hit.score):7.4f}  {hit.asset_id}  {size:>11}  {doc.public_id}")
    print(
        f"{len(page.hits)} hit(s) in {page.took_ms} ms"
        + (f"; next_cursor {page.next_cursor}" if page.next_cursor else "")
    )
    return 0


def run_duplicates(services: Services, args) -> int:
    finder = services.duplicates
    if args.asset_id:
        for dup in finder.of_asset(args.asset_id, args.threshold):
            print(f"{dup.tier:8} {dup.score:7.4f}  {dup.asset_id}  {dup.document.public_id}")
        return 0
    ids = services.collection_ids()
    groups = 0
    with tqdm(total=len(ids), unit="img", file=sys.stderr, disable=args.quiet) as bar:
        for item in finder.report(ids, args.threshold):
            if isinstance(item, DuplicateGroup):
                groups += 1
                names = sorted(_public_id(services, a) for a in item.asset_ids)  # ids are random: by name
                tqdm.write(f"{item.tier:8} {len(names)} assets: " + ", ".join(names))
            else:
                bar.update(1)
    print(f"{groups} group(s)", file=sys.stderr)
    return 0


def _public_id(services: Services, asset_id: str) -> str:
    stored = services.index.get(asset_id)
    return stored.document.public_id if stored else asset_id
