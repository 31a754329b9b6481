"""The model towers some function fetches instead of holding them in its layers (layers/build.py
decides which, from their sizes, and records it in build.json), published to the image bucket: the
search function's image tower always, and any tower that would put its function over Lambda's 250 MB.
A function fetches them on first use, verified against its manifest's sha256."""

from __future__ import annotations

import math
import re

from aws_cdk import Aws, Size, aws_iam, aws_s3, aws_s3_deployment
from constructs import Construct

from infra.layers import Layers

MODELS_PREFIX = "_vs/models/"  # reserved prefix: ingest ignores it
# The deployment function downloads the asset's zip into /tmp and extracts it beside it: about twice the
# files (int8 weights hardly compress), more than Lambda's default 512 MB once they pass ~220 MB.
DEFAULT_TMP_MIB = 512


def model_prefix(model_id: str) -> str:
    """Where the towers of one model are published: a model change adds a prefix, never rewrites the
    files a running function is verifying against its manifest."""
    return MODELS_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", model_id) + "/"


def scratch_space(published_mib: float) -> Size | None:
    """/tmp for a deployment of `published_mib`: None (Lambda's default) while that holds the zip and
    its files, else enough in 512 MiB steps."""
    needed = 2 * published_mib + 64
    return None if needed <= DEFAULT_TMP_MIB else Size.mebibytes(math.ceil(needed / 512) * 512)


class PublishedTowers(aws_s3_deployment.BucketDeployment):
    def __init__(self, scope: Construct, construct_id: str, *, layers: Layers, bucket: aws_s3.Bucket):
        prefix = model_prefix(layers.built["model_id"])
        published = sum(p.stat().st_size for p in layers.published_dir.rglob("*") if p.is_file()) / 2**20
        super().__init__(
            scope,
            construct_id,
            sources=[aws_s3_deployment.Source.asset(str(layers.published_dir))],
            destination_bucket=bucket,
            destination_key_prefix=prefix,
            prune=False,
            # Kept when the prefix changes: functions still on the previous model keep fetching theirs.
            retain_on_delete=True,
            memory_limit=1024,  # the deployment function unzips towers of 90 MB and more: 128 MB is short
            ephemeral_storage_size=scratch_space(published),
        )
        self.url = f"s3://{bucket.bucket_name}/{prefix}"
        # CDK grants the deployment the whole bucket; objects outside the towers' prefix (the users'
        # images) stay out of its reach. Reading its source asset (the cdk-* bootstrap bucket) remains.
        self.handler_role.add_to_principal_policy(
            aws_iam.PolicyStatement(
                effect=aws_iam.Effect.DENY,
                actions=["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:Abort*"],
                not_resources=[bucket.arn_for_objects(f"{prefix}*"), f"arn:{Aws.PARTITION}:s3:::cdk-*/*"],
            )
        )
