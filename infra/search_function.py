"""The function behind every API route (search, Cloudinary's Upload and Admin APIs, the search page):
it reads the API secret, reads, writes and deletes the users' images, and fetches the towers published
for its model that its layers do not hold (the image tower, on the first image query; the text tower
too where it does not fit, as SigLIP 2's)."""

from __future__ import annotations

from aws_cdk import aws_dynamodb, aws_kms, aws_s3
from constructs import Construct

from infra.api_credentials import ApiCredentials
from infra.config import Config
from infra.function import ServiceFunction, environment_for
from infra.layers import Layers
from infra.network import Network
from infra.published_towers import PublishedTowers
from infra.vector_index import VectorIndex
from visual_search.settings import ServiceSettings


class SearchFunction(ServiceFunction):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        layers: Layers,
        index: VectorIndex,
        credentials: ApiCredentials,
        bucket: aws_s3.Bucket,
        towers: PublishedTowers,
        network: Network | None = None,
        key: aws_kms.IKey | None = None,
    ):
        super().__init__(
            scope,
            construct_id,
            config=config,
            handler="search",
            settings_model=ServiceSettings,
            settings={
                **index.settings,
                "store_backend": "s3",
                "bucket": bucket.bucket_name,
                "credentials_secret_arn": credentials.secret_arn,
                "cloud_name": config.cloud_name,
                # iam: API Gateway verified the SigV4 signature; the function trusts the identity it passes.
                "api_auth": "iam" if config.auth == "iam" else "basic",
                "model_dir": "/opt/model",
                **({"model_remote_url": towers.url} if layers.fetches("search") else {}),
            },
            layers=layers.of("search"),
            memory_mb=config.search_memory_mb,
            timeout_s=28,  # below API Gateway's 29 s, so the client always gets our error shape
            network=network,
            key=key,
            grants=[
                credentials.grant_read,
                bucket.grant_read,
                lambda f: bucket.grant_put(f, "*"),  # Cloudinary upload API stores the file
                lambda f: bucket.grant_delete(f, "*"),
            ],
        )
        self.function.node.add_dependency(towers)  # a new model's towers are in place before its functions

    def hold_uploads_in(self, ledger: aws_dynamodb.Table) -> None:
        """Uploads to one public_id take turns through a hold in the ledger the ingest worker shares, so
        every instance of the function sees it: a conditional put and a delete, nothing else."""
        for name, value in environment_for(ServiceSettings, {"ledger_table": ledger.table_name}).items():
            self.function.add_environment(name, value)
        ledger.grant(self.function, "dynamodb:PutItem", "dynamodb:DeleteItem")
