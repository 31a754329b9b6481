"""Typed settings, read from `VS_*` environment variables and validated on first use.

One model per process kind, over shared `CoreSettings`: the search service (API, local server, CLI)
reads `ServiceSettings`; the ingest worker (Lambda, backfill) reads `IngestSettings`. CDK takes its
environment variable names from these models, so the deployed functions and the code cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from visual_search.defaults import DEFAULT_BUDGET_S, DEFAULT_MAX_RESULTS
from visual_search.errors import ConfigurationError
from visual_search.index.opensearch_mapping import IndexOptions

ENV_PREFIX = "VS_"


class CoreSettings(BaseSettings):
    """What every process kind needs: the model, where images and vectors live, and input bounds."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # Model. Unset: the default model (visual_search.model_build.default_model): `model_hub` built once
    # into `model_home`, else the tiny test model shipped in the package.
    model_dir: Path | None = None
    model_hub: str = "openai/clip-vit-base-patch32"  # hub id, optionally @revision
    model_home: Path | None = None  # unset: $XDG_CACHE_HOME/visual-search/models (~/.cache/...)
    model_precision: Literal["int8", "fp32"] = "int8"
    # Unset: the Lambda function's vCPU share by its memory, one thread elsewhere (encoder.default_threads).
    model_threads: int | None = Field(None, ge=1, le=64)
    # Model files missing from model_dir are fetched from here on first use (s3://bucket/prefix/) into
    # model_cache_dir, verified against the manifest: how a Lambda holds a tower its layers cannot.
    model_remote_url: str | None = None
    model_cache_dir: Path = Path("/tmp/visual-search-model")

    # Storage and index (embedded defaults: one machine, everything under data_dir)
    data_dir: Path = Path("var")
    index_backend: Literal["embedded", "opensearch"] = "embedded"
    store_backend: Literal["local", "s3"] = "local"
    store_name: str = "local"  # part of every asset_id: the same key in another store is another asset
    bucket: str | None = None  # the image bucket, when store_backend is s3
    # What gets indexed, whoever writes: the ingest worker and, on one machine, the service itself.
    ingest_prefix: str = ""  # only keys under this prefix are indexed
    ingest_opt_in: bool = False  # True: only objects tagged visual_search=true (upload: visual_search=true)

    # The CloudFormation stack a deployed function belongs to (CDK sets it): every custom metric carries
    # it as its `stack` dimension, which that stack's alarms select (visual_search/observability.py).
    stack_name: str | None = None

    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(50_000_000, ge=10_000)
    # Memory this process's image decodes may hold at once (DecodeGate), and the most one decode may
    # need. 512: the costliest image under the pixel limit (a progressive CMYK JPEG, ~430 MB) decodes
    # alone, two of every other kind at the limit decode side by side, and the growth stays under the
    # 600 MB docs/guarantees.md promises. Raise it with the function's memory if you raise max_image_pixels.
    decode_memory_mb: int = Field(512, ge=64)

    # OpenSearch, when index_backend is opensearch: a managed domain (or self-managed cluster) or an
    # OpenSearch Serverless vector collection. Readers use the alias `opensearch_index`; the physical
    # index behind it is per model.
    opensearch_endpoint: str | None = None  # https://search-....es.amazonaws.com or ...aoss.amazonaws.com
    opensearch_mode: Literal["managed", "serverless"] = "managed"
    # Serverless only: the collection's generation, which AWS documents no way to read from the data
    # plane. nextgen is what AWS's console creates and recommends for new collections; classic is the
    # original (and what the API creates without a generation). They accept different mappings and ids
    # (index/opensearch.py).
    opensearch_generation: Literal["nextgen", "classic"] = "nextgen"
    opensearch_auth: Literal["sigv4", "basic", "none"] = "sigv4"
    # The region SigV4 signs for: the cluster's, which for an existing one may not be the function's own.
    opensearch_region: str | None = None
    opensearch_index: str = "visual-search"
    opensearch_username: str | None = None  # basic auth (self-managed clusters)
    opensearch_password: SecretStr | None = None
    opensearch_timeout_s: float = Field(5.0, gt=0, le=60)
    # One index operation, retries included, gives up after this (plus one request timeout): below the
    # search function's 28 s, so a struggling cluster is our 429 + Retry-After, never a gateway timeout.
    opensearch_budget_s: float = Field(DEFAULT_BUDGET_S, gt=0, le=600)
    # A backfill for a new model writes into that model's own index, beside the one readers use, and
    # `visual-search backfill --activate` swaps the alias once it is complete.
    opensearch_reindex: bool = False
    # Seconds a search's point in time stays open between pages; 0: off. Unset: 60 on Serverless, where
    # AWS recommends point in time with search_after, off on a domain, where each open search holds one
    # within `search.max_open_pit_context` (300 per node by default).
    opensearch_point_in_time_s: int | None = Field(None, ge=0, le=3600)
    # How wide each k-NN query searches (see index/opensearch_query.py): the HNSW beam every query sends,
    # and the k of a page after `depth` hits, max(k_floor, (depth + size) * k_factor), at most max_hits.
    opensearch_ef_search: int = Field(IndexOptions.ef_search, ge=1, le=10_000)
    opensearch_k_floor: int = Field(IndexOptions.k_floor, ge=1, le=10_000)
    opensearch_k_factor: float = Field(IndexOptions.k_factor, ge=1, le=100)


class ServiceSettings(CoreSettings):
    """The search service: API, local server, CLI."""

    # API identity and credentials (Cloudinary style: cloud name + key:secret)
    cloud_name: str = "demo"
    api_key: str = "visual-search"
    # Unset on one machine: generated once and kept in data_dir/credentials.json (mode 0600), so there
    # is never a default secret. Deployed functions read them from the Secrets Manager secret named by
    # credentials_secret_arn (JSON: api_key, api_secret, optionally cursor_secret).
    api_secret: SecretStr | None = None
    # basic: the key:secret above. iam: API Gateway verified a SigV4 signature (AWS_IAM methods) and the
    # identity it passes is trusted; the Authorization header is then never read (see api/auth.py).
    api_auth: Literal["basic", "iam"] = "basic"
    cursor_secret: SecretStr | None = None

    @property
    def api_secret_text(self) -> str:
        """The API secret as text ("" while unset: nothing then verifies against it)."""
        return self.api_secret.get_secret_value() if self.api_secret else ""

    credentials_secret_arn: str | None = None
    # The ingest worker's DynamoDB ledger, where uploads of one public_id take turns across function
    # instances (`AssetLedger.hold`); unset on AWS, they take turns within one instance only.
    ledger_table: str | None = None
    # Base of the file URLs the local store signs (https://images.example.com); unset, the scheme and
    # validated Host the request came to are used.
    public_base_url: str | None = None

    # Bounds
    max_text_chars: int = Field(1000, ge=1)
    rate_limit_per_hour: int = Field(5000, ge=1)  # advertised in X-FeatureRateLimit-Limit
    default_max_results: int = Field(DEFAULT_MAX_RESULTS, ge=1, le=500)
    max_hits_per_query: int = Field(1000, ge=1, le=9000)
    fetch_timeout_s: float = Field(10.0, gt=0, le=60)
    fetch_max_redirects: int = Field(3, ge=0, le=10)
    allow_private_urls: bool = False  # local development only: lets image_url reach private addresses

    # upload_large's parts wait in the store (assets/chunked_uploads.py) until their file is whole.
    upload_max_parts: int = Field(1000, ge=1)  # parts of one file (the SDKs send parts of 5 to 20 MB)
    # Bytes staged at once, all uploads together; unset: 5 x max_image_bytes. The service has one
    # api_key, so this is also the most one key (or one upload signature, under new ids) can stage.
    upload_staging_max_bytes: int | None = Field(None, ge=1024)
    upload_staging_max_parts: int = Field(10_000, ge=1)
    upload_parts_ttl_s: int = Field(24 * 3600, ge=1)  # an unfinished upload's parts are deleted after
    upload_sweep_interval_s: float = Field(60.0, gt=0)  # how often they are looked for

    # Duplicates: similarity at or above which two different files count as near-identical / similar
    near_duplicate_threshold: float = Field(0.97, gt=0, le=1)
    similar_threshold: float = Field(0.90, gt=0, le=1)

    # The local server (`visual-search serve`); API Gateway plays this part when deployed.
    server_max_connections: int = Field(100, ge=1)  # open connections, idle keep-alive ones included
    server_max_connections_per_client: int = Field(48, ge=1)  # from one client address
    server_max_concurrent_requests: int = Field(32, ge=1)  # requests being resolved at once (bodies read)
    server_max_concurrent_requests_per_client: int = Field(24, ge=1)  # of those, from one client address
    # Bytes of request bodies held at once (each request's from its head until its answer): the memory
    # bound whatever clients send, credentials or not. One client may hold half of it.
    server_body_budget_bytes: int = Field(96 * 1024 * 1024, ge=1024 * 1024)
    server_header_timeout_s: float = Field(10.0, gt=0, le=300)  # connect (or last response) -> full head
    server_body_timeout_s: float = Field(60.0, gt=0, le=3600)  # head -> full body, whatever the rate
    # After the grace period a body must keep arriving at this mean rate (Apache's mod_reqtimeout
    # MinRate): a client dripping a byte every few seconds is cut off, not held for the whole deadline.
    server_body_grace_s: float = Field(10.0, gt=0, le=300)
    server_body_min_rate: int = Field(1024, ge=1)  # bytes per second, over the whole body so far
    server_keep_alive_s: float = Field(5.0, gt=0, le=300)  # idle between requests on one connection
    server_max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)  # request line + headers


class IngestSettings(CoreSettings):
    """The ingest worker (S3 events -> index)."""

    ledger_backend: Literal["sqlite", "dynamodb"] = "sqlite"
    ledger_table: str | None = None  # DynamoDB table name, when ledger_backend is dynamodb


def with_local_secrets(settings: ServiceSettings) -> ServiceSettings:
    """Fill unset secrets from data_dir/credentials.json, creating it with random values if needed."""
    if settings.api_secret is not None and settings.cursor_secret is not None:
        return settings
    path = settings.data_dir / "credentials.json"
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
    else:
        stored = {"api_secret": secrets.token_urlsafe(24), "cursor_secret": secrets.token_urlsafe(32)}
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(stored, fh)
    return settings.model_copy(
        update={
            "api_secret": settings.api_secret or SecretStr(stored["api_secret"]),
            "cursor_secret": settings.cursor_secret or SecretStr(stored["cursor_secret"]),
        }
    )


def with_aws_secrets(settings: ServiceSettings) -> ServiceSettings:
    """Fill the credentials from Secrets Manager (cached by Powertools for the life of the process)."""
    if not settings.credentials_secret_arn:
        return settings
    arn = settings.credentials_secret_arn
    stored = _secrets(arn.split(":")[3] if arn.startswith("arn:") else None).get(
        arn, transform="json", max_age=300
    )
    if not isinstance(stored, dict) or not stored.get("api_secret"):
        raise ConfigurationError("the credentials secret must be JSON with api_secret (and api_key)")
    # Secrets Manager generates one value per secret; the cursor key is derived from it unless given.
    cursor = stored.get("cursor_secret") or derive_key(stored["api_secret"], "cursor").hex()
    return settings.model_copy(
        update={
            "api_key": stored.get("api_key", settings.api_key),
            "api_secret": SecretStr(stored["api_secret"]),
            "cursor_secret": SecretStr(cursor),
        }
    )


@lru_cache(maxsize=4)
def _secrets(region: str | None):
    """One Powertools secrets provider per region (it caches values for max_age across invocations)."""
    import boto3
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=boto3.client("secretsmanager", region_name=region))


def derive_key(secret: str, purpose: str) -> bytes:
    """Independent keys for independent uses (cursors, file URLs, listings), from one secret."""
    return hashlib.sha256(f"{purpose}\x00{secret}".encode()).digest()


@lru_cache(maxsize=1)
def service_settings() -> ServiceSettings:
    """Settings of this process, validated once (Lambda keeps them across invocations)."""
    return ServiceSettings()
