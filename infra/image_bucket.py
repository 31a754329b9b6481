"""The bucket users drop images into: encrypted, TLS only, never public, versioned by default."""

from __future__ import annotations

from aws_cdk import Duration, aws_kms, aws_s3
from constructs import Construct

from infra.config import Config
from visual_search.assets.chunked_uploads import ANSWERS, STAGING


class ImageBucket(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, key: aws_kms.IKey | None = None
    ):
        super().__init__(scope, construct_id)
        self.access_logs = aws_s3.Bucket(
            self,
            "AccessLogs",
            # S3 delivers server access logs only to a bucket under SSE-S3, never SSE-KMS.
            encryption=aws_s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=aws_s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=aws_s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            # Versioned: a log deleted or overwritten before its 90 days stays recoverable for 30.
            versioned=True,
            lifecycle_rules=[
                aws_s3.LifecycleRule(
                    expiration=Duration.days(90), noncurrent_version_expiration=Duration.days(30)
                )
            ],
            removal_policy=config.removal,
        )
        self.bucket = aws_s3.Bucket(
            self,
            "Images",
            encryption=aws_s3.BucketEncryption.KMS if key else aws_s3.BucketEncryption.S3_MANAGED,
            encryption_key=key,
            bucket_key_enabled=bool(key),  # one data key per bucket, not a KMS call per object
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=aws_s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=aws_s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=config.bucket_versioning,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="images/",
            lifecycle_rules=lifecycle_rules(config.bucket_versioning),
            removal_policy=config.removal,
        )


def lifecycle_rules(versioned: bool) -> list[aws_s3.LifecycleRule]:
    """upload_large's staged parts and kept answers expire after a day (S3's shortest). The search
    function sweeps them itself only when parts arrive; this rule is what removes an abandoned upload's
    parts when none do. Versioned, their deleted copies go after a day too, not with the images' 30."""
    staging = [
        aws_s3.LifecycleRule(
            id=f"expire-{prefix.strip('/').replace('/', '-')}",
            prefix=prefix,
            expiration=Duration.days(1),
            noncurrent_version_expiration=Duration.days(1) if versioned else None,
        )
        for prefix in (STAGING, ANSWERS)
    ]
    if not versioned:
        return staging
    return [*staging, aws_s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))]
