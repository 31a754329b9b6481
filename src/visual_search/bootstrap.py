"""The composition root: settings in, wired services out. The search Lambda, the ingest Lambda, the local
server, the CLI and the tests all build their services here, so there is one way the parts fit together.

Writes reach the index one way, through the ledger-guarded pipeline (`ingest.objects`): on one machine the
service runs it itself as it writes the local folder (`InlineIndexing`); on S3 the service only writes
the bucket and the ingest worker indexes each object once, from its event (`BucketEvents`)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from visual_search.assets.chunked_uploads import ChunkedUploads
from visual_search.assets.identity import stored_asset_id
from visual_search.assets.labels import Labels
from visual_search.assets.listing import Listing
from visual_search.assets.upload_staging import StagingBounds
from visual_search.assets.uploads import Uploads
from visual_search.assets.writers import BucketEvents, IndexWriter, InlineIndexing
from visual_search.embedding import Embedder
from visual_search.embedding.decode import DecodeGate, DecodeLimits
from visual_search.embedding.manifest import Manifest
from visual_search.errors import ConfigurationError
from visual_search.index.port import VectorIndex
from visual_search.ingest.pipeline import Ingestor
from visual_search.ingest.renditions import RenditionWriter
from visual_search.model_build.default_model import default_model
from visual_search.search.cursor import CursorCodec
from visual_search.search.duplicates import DuplicateFinder
from visual_search.search.remote_fetch import FetchLimits, RemoteFetcher
from visual_search.search.service import SearchService
from visual_search.settings import (
    CoreSettings,
    IngestSettings,
    ServiceSettings,
    derive_key,
    with_aws_secrets,
    with_local_secrets,
)
from visual_search.storage.local import LocalImageStore
from visual_search.storage.port import ImageStore

_log = logging.getLogger(__name__)
STAGED_FILES = 5  # upload_large's staging holds this many files at the limit, unless set

if TYPE_CHECKING:
    from visual_search.ingest.objects import ObjectIngest
    from visual_search.ledger.port import AssetLedger, Holds


@dataclass
class Services:
    settings: ServiceSettings
    embedder: Embedder
    index: VectorIndex
    store: ImageStore
    ingestor: Ingestor
    search: SearchService
    writer: IndexWriter
    uploads: Uploads
    chunks: ChunkedUploads
    listing: Listing
    duplicates: DuplicateFinder
    labels: Labels
    ledger: AssetLedger | None = None  # on one machine, where the service indexes its own writes

    def close(self) -> None:
        self.index.close()
        if self.ledger is not None:
            self.ledger.close()

    def collection_ids(self, limit: int | None = None) -> list[str]:
        """Asset ids of the stored images, in key order (at most `limit`)."""
        ids: list[str] = []
        for key in self.store.list():
            if limit is not None and len(ids) >= limit:
                break
            ids.append(stored_asset_id(self.store, key))
        return ids


@dataclass
class IngestServices:
    settings: IngestSettings
    index: VectorIndex
    store: ImageStore
    ledger: AssetLedger
    pipeline: ObjectIngest

    def close(self) -> None:
        self.index.close()
        self.ledger.close()


def build_ingest(settings: IngestSettings) -> IngestServices:
    """The ingest worker: S3 object events -> the same pipeline the local server writes through."""
    limits = _limits(settings)
    embedder = _build_embedder(settings, limits)
    index = _build_index(settings, embedder)
    store = _build_store(settings, signing_key=secrets.token_bytes(32))  # ingest signs no URLs
    ledger = _build_ledger(settings, scope=ledger_scope(settings, embedder.model_id))
    ingestor = Ingestor(embedder, index, store.name, limits, RenditionWriter(store))
    return IngestServices(settings, index, store, ledger, _pipeline(settings, store, ingestor, ledger))


def _pipeline(
    settings: CoreSettings, store: ImageStore, ingestor: Ingestor, ledger: AssetLedger
) -> ObjectIngest:
    """The one ledger-guarded pipeline every writer's commands and every S3 event go through."""
    from visual_search.ingest.objects import IngestPolicy, ObjectIngest

    policy = IngestPolicy(prefix=settings.ingest_prefix, opt_in=settings.ingest_opt_in)
    return ObjectIngest(store, ingestor, ledger, policy)


def build_services(settings: ServiceSettings) -> Services:
    if settings.credentials_secret_arn:
        settings = with_aws_secrets(settings)
    elif settings.store_backend == "local":
        settings = with_local_secrets(settings)
    if settings.api_secret is None or settings.cursor_secret is None:
        raise ConfigurationError("VS_API_SECRET and VS_CURSOR_SECRET must be set outside local mode")
    limits = _limits(settings)
    embedder = _build_embedder(settings, limits)
    index = _build_index(settings, embedder)
    files_key = derive_key(settings.cursor_secret.get_secret_value(), "files")
    store = _build_store(settings, files_key, settings.public_base_url)
    ingestor = Ingestor(embedder, index, store.name, limits, RenditionWriter(store))
    ledger: AssetLedger | None = None
    if settings.store_backend == "local":
        # The same scope as the ingest worker's for this index (`ledger_scope`): one index, one ledger.
        ledger = _sqlite_ledger(settings, scope=ledger_scope(settings, embedder.model_id))
        writer: IndexWriter = InlineIndexing(store, _pipeline(settings, store, ingestor, ledger))
    else:
        writer = BucketEvents(store)
    fetcher = RemoteFetcher(
        FetchLimits(
            max_bytes=settings.max_image_bytes,
            total_timeout=settings.fetch_timeout_s,
            max_redirects=settings.fetch_max_redirects,
            allow_private=settings.allow_private_urls,
        )
    )
    search = SearchService(
        embedder,
        index,
        CursorCodec(derive_key(settings.cursor_secret.get_secret_value(), "cursor")),
        lambda url: fetcher.fetch(url).data,
        limits,
        max_hits=settings.max_hits_per_query,
        max_text_chars=settings.max_text_chars,
    )
    uploads = Uploads(store, writer, index, ingestor.decode, embedder.model_id, _holds(settings, ledger))
    chunks = ChunkedUploads(store, staging_bounds(settings), settings.upload_sweep_interval_s)
    listing = Listing(
        store, index, CursorCodec(derive_key(settings.cursor_secret.get_secret_value(), "listing"))
    )
    duplicates = DuplicateFinder(index, settings.near_duplicate_threshold, settings.similar_threshold)
    return Services(
        settings,
        embedder,
        index,
        store,
        ingestor,
        search,
        writer,
        uploads,
        chunks,
        listing,
        duplicates,
        Labels(uploads, store, writer),
        ledger,
    )


def staging_bounds(settings: ServiceSettings) -> StagingBounds:
    total = settings.upload_staging_max_bytes or STAGED_FILES * settings.max_image_bytes
    if total < settings.max_image_bytes:
        raise ConfigurationError("VS_UPLOAD_STAGING_MAX_BYTES must hold one file: VS_MAX_IMAGE_BYTES or more")
    return StagingBounds(
        file_bytes=settings.max_image_bytes,
        file_parts=settings.upload_max_parts,
        total_bytes=total,
        total_parts=settings.upload_staging_max_parts,
        ttl_s=settings.upload_parts_ttl_s,
    )


def _limits(settings: CoreSettings) -> DecodeLimits:
    budget = settings.decode_memory_mb * 2**20
    return DecodeLimits(
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
        max_decode_bytes=budget,
        gate=DecodeGate(budget),  # one per process: every decode of these services shares it
    )


def _build_embedder(settings: CoreSettings, limits: DecodeLimits) -> Embedder:
    folder = settings.model_dir
    if folder is None:  # the CLI resolves it first, to show progress; deployed functions always set it
        chosen = default_model(settings, log=_log.info)
        if chosen.note:
            _log.warning(chosen.note)
        folder = chosen.folder
    manifest = Manifest.load(folder)
    if settings.model_remote_url:
        from visual_search.embedding.remote_files import S3ModelFiles

        manifest = replace(manifest, remote=S3ModelFiles(settings.model_remote_url, settings.model_cache_dir))
    return Embedder(
        manifest, precision=settings.model_precision, threads=settings.model_threads, limits=limits
    )


def ledger_scope(settings: CoreSettings, model_id: str) -> str:
    """The index the ledger's entries describe: the model's, on this cluster. A domain or collection
    made anew (a `cdk destroy` or a rename) has another endpoint, so its ledger starts empty instead of
    saying "indexed" for vectors that are gone — and ingest and backfill index everything again."""
    scope = _safe_name(model_id)
    if settings.index_backend == "opensearch":
        where = f"{settings.opensearch_endpoint}/{settings.opensearch_index}"
        scope += "@" + hashlib.sha256(where.encode()).hexdigest()[:12]
    return scope


def _holds(settings: ServiceSettings, ledger: AssetLedger | None) -> Holds:
    """Where writes to one public_id are serialised: the ledger on one machine, the DynamoDB ledger the
    ingest worker shares when the service is given its table, else within this process only."""
    if ledger is not None:
        return ledger
    if settings.ledger_table:
        from visual_search.ledger.dynamodb import DynamoDbLedger

        return DynamoDbLedger(settings.ledger_table, scope="holds")
    from visual_search.ledger.process_holds import ProcessHolds

    return ProcessHolds()


def _build_ledger(settings: IngestSettings, scope: str) -> AssetLedger:
    if settings.ledger_backend == "dynamodb":
        from visual_search.ledger.dynamodb import DynamoDbLedger

        if not settings.ledger_table:
            raise ConfigurationError("VS_LEDGER_TABLE is required with VS_LEDGER_BACKEND=dynamodb")
        return DynamoDbLedger(settings.ledger_table, scope)
    return _sqlite_ledger(settings, scope)


def _sqlite_ledger(settings: CoreSettings, scope: str) -> AssetLedger:
    from visual_search.ledger.sqlite import SqliteLedger

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteLedger(settings.data_dir / "ledger.sqlite", scope)


def _build_index(settings: CoreSettings, embedder: Embedder) -> VectorIndex:
    if settings.index_backend == "embedded":
        from visual_search.index.embedded import EmbeddedIndex

        folder = settings.data_dir / "index" / _safe_name(embedder.model_id)
        folder.mkdir(parents=True, exist_ok=True)
        return EmbeddedIndex(folder / "index.sqlite", embedder.dim)
    from visual_search.index.opensearch import OpenSearchIndex, connect
    from visual_search.index.opensearch_mapping import IndexOptions

    if not settings.opensearch_endpoint:
        raise ConfigurationError("VS_OPENSEARCH_ENDPOINT is required with VS_INDEX_BACKEND=opensearch")
    password = settings.opensearch_password.get_secret_value() if settings.opensearch_password else None
    client = connect(
        settings.opensearch_endpoint,
        auth=settings.opensearch_auth,
        mode=settings.opensearch_mode,
        region=settings.opensearch_region,
        username=settings.opensearch_username,
        password=password,
        timeout=settings.opensearch_timeout_s,
    )
    return OpenSearchIndex(
        client,
        settings.opensearch_index,
        embedder.dim,
        embedder.model_id,
        mode=settings.opensearch_mode,
        generation=settings.opensearch_generation,
        reindex=settings.opensearch_reindex,
        point_in_time_s=settings.opensearch_point_in_time_s,
        budget_s=settings.opensearch_budget_s,
        options=IndexOptions(
            ef_search=settings.opensearch_ef_search,
            k_floor=settings.opensearch_k_floor,
            k_factor=settings.opensearch_k_factor,
        ),
        # The functions' init runs before any request deadline and an error there is a 502 followed by
        # a whole new init: the cluster is first reached by the first request instead (429 if it cannot).
        set_up_on_first_use=True,
    )


def _build_store(settings: CoreSettings, signing_key: bytes, base_url: str | None = None) -> ImageStore:
    if settings.store_backend == "s3":
        from visual_search.storage.s3 import S3ImageStore

        if not settings.bucket:
            raise ConfigurationError("VS_BUCKET is required with VS_STORE_BACKEND=s3")
        return S3ImageStore(settings.bucket, settings.max_image_bytes)
    return LocalImageStore(settings.data_dir / "images", base_url, signing_key, name=settings.store_name)


def _safe_name(model_id: str) -> str:
    # One index per model: a model change builds a new index instead of mixing embedding spaces.
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in model_id)
