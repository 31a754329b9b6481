"""The image tower, published to the image bucket: too large to sit beside the text tower in the search
function's layers, it is fetched (checksum-verified) on the first image query."""

from __future__ import annotations

import re

from aws_cdk import Aws, aws_iam, aws_s3, aws_s3_deployment
from constructs import Construct

from infra.layers import Layers

MODELS_PREFIX = "_vs/models/"  # reserved prefix: ingest ignores it


def model_prefix(model_id: str) -> str:
    """Where the image tower of one model is published: a model change adds a prefix, never rewrites
    the files a running function is verifying against its manifest."""
    return MODELS_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", model_id) + "/"


class ImageTower(aws_s3_deployment.BucketDeployment):
    def __init__(self, scope: Construct, construct_id: str, *, layers: Layers, bucket: aws_s3.Bucket):
        prefix = model_prefix(layers.built["model_id"])
        super().__init__(
            scope,
            construct_id,
            sources=[aws_s3_deployment.Source.asset(str(layers.image_tower_dir))],
            destination_bucket=bucket,
            destination_key_prefix=prefix,
            prune=False,
            # Kept when the prefix changes: functions still on the previous model keep fetching theirs.
            retain_on_delete=True,
            memory_limit=1024,  # the deployment function unzips the ~90 MB tower: the 128 MB default is short
        )
        self.url = f"s3://{bucket.bucket_name}/{prefix}"
        # CDK grants the deployment the whole bucket; objects outside the tower's prefix (the users'
        # images) stay out of its reach. Reading its source asset (the cdk-* bootstrap bucket) remains.
        self.handler_role.add_to_principal_policy(
            aws_iam.PolicyStatement(
                effect=aws_iam.Effect.DENY,
                actions=["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:Abort*"],
                not_resources=[bucket.arn_for_objects(f"{prefix}*"), f"arn:{Aws.PARTITION}:s3:::cdk-*/*"],
            )
        )
