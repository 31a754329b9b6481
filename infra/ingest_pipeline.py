"""Bucket events -> SQS (with a dead-letter queue) -> the ingest function -> the index; the asset ledger
(DynamoDB, conditional writes) keeps ordering and idempotency."""

from __future__ import annotations

import jsii
from aws_cdk import (
    Duration,
    Stack,
    aws_cloudwatch,
    aws_dynamodb,
    aws_iam,
    aws_kms,
    aws_lambda,
    aws_lambda_event_sources,
    aws_s3,
    aws_sqs,
)
from aws_cdk.interfaces.aws_s3 import IBucketRef
from constructs import Construct

from infra.config import Config
from infra.function import ServiceFunction
from infra.network import Network
from infra.published_towers import PublishedTowers
from visual_search.settings import IngestSettings

FUNCTION_TIMEOUT_S = 120
# S3 silently drops notifications to a queue whose maximum message size is below 64 KB.
MAX_MESSAGE_BYTES = 262_144
MAX_RECEIVES = 5


@jsii.implements(aws_s3.IBucketNotificationDestination)
class QueueDestination:
    """CDK's SqsDestination, with the confused-deputy guard AWS recommends: S3 may send only for this
    bucket (aws:SourceArn) *and* from this account (aws:SourceAccount), since a bucket name, once deleted,
    can be claimed in another account."""

    def __init__(self, queue: aws_sqs.Queue):
        self.queue = queue

    def bind(self, scope: Construct, bucket: IBucketRef) -> aws_s3.BucketNotificationDestinationConfig:
        s3 = aws_iam.ServicePrincipal(
            "s3.amazonaws.com",
            conditions={
                "ArnLike": {"aws:SourceArn": bucket.bucket_ref.bucket_arn},
                "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
            },
        )
        self.queue.grant_send_messages(s3)
        return aws_s3.BucketNotificationDestinationConfig(
            arn=self.queue.queue_arn,
            type=aws_s3.BucketNotificationDestinationType.QUEUE,
            dependencies=[self.queue],  # with its policy: S3 checks it may send when the rule is saved
        )


class IngestPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        bucket: aws_s3.Bucket,
        layers: list[aws_lambda.ILayerVersion],
        index_settings: dict[str, str],
        towers: PublishedTowers | None = None,
        network: Network | None = None,
        key: aws_kms.IKey | None = None,
    ):
        super().__init__(scope, construct_id)
        encryption = aws_sqs.QueueEncryption.KMS if key else aws_sqs.QueueEncryption.SQS_MANAGED
        self.dead_letters = aws_sqs.Queue(
            self,
            "DeadLetters",
            encryption=encryption,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = aws_sqs.Queue(
            self,
            "Events",
            encryption=encryption,
            encryption_master_key=key,  # S3 must be allowed to use it: the key policy's (docs/deploy.md)
            enforce_ssl=True,
            max_message_size_bytes=MAX_MESSAGE_BYTES,
            visibility_timeout=Duration.seconds(6 * FUNCTION_TIMEOUT_S),  # AWS: at least 6x the timeout
            retention_period=Duration.days(4),
            dead_letter_queue=aws_sqs.DeadLetterQueue(
                queue=self.dead_letters, max_receive_count=MAX_RECEIVES
            ),
        )
        filters = [aws_s3.NotificationKeyFilter(prefix=config.ingest_prefix)] if config.ingest_prefix else []
        destination = QueueDestination(self.queue)
        bucket.add_event_notification(aws_s3.EventType.OBJECT_CREATED, destination, *filters)
        bucket.add_event_notification(aws_s3.EventType.OBJECT_REMOVED, destination, *filters)

        self.ledger = aws_dynamodb.Table(
            self,
            "Ledger",
            partition_key=aws_dynamodb.Attribute(name="pk", type=aws_dynamodb.AttributeType.STRING),
            billing_mode=aws_dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=aws_dynamodb.TableEncryption.CUSTOMER_MANAGED
            if key
            else aws_dynamodb.TableEncryption.AWS_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=aws_dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=config.removal,
        )
        self.worker = ServiceFunction(
            self,
            "Function",
            config=config,
            handler="ingest",
            settings_model=IngestSettings,
            settings={
                **index_settings,
                "store_backend": "s3",
                "bucket": bucket.bucket_name,
                "ledger_backend": "dynamodb",
                "ledger_table": self.ledger.table_name,
                "model_dir": "/opt/model",
                # Where its layers cannot hold the image tower (e.g. MobileCLIP-S2): fetched on first use.
                **({"model_remote_url": towers.url} if towers else {}),
                "ingest_prefix": config.ingest_prefix,
                "ingest_opt_in": str(config.ingest_opt_in).lower(),
            },
            layers=layers,
            memory_mb=config.ingest_memory_mb,
            timeout_s=FUNCTION_TIMEOUT_S,
            network=network,
            key=key,
            grants=[
                bucket.grant_read,  # objects, versions and tags
                lambda f: bucket.grant_put(f, "_vs/*"),  # renditions only
                lambda f: bucket.grant_delete(f, "_vs/*"),
                self.ledger.grant_read_write_data,
            ],
        )
        if towers:
            self.worker.function.node.add_dependency(towers)  # in place before the function that fetches it
        self.worker.function.add_event_source(
            aws_lambda_event_sources.SqsEventSource(
                self.queue,
                batch_size=config.ingest_batch_size,
                max_batching_window=Duration.seconds(2),
                max_concurrency=config.ingest_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        self.dead_letter_alarm = aws_cloudwatch.Alarm(
            self,
            "DeadLettersWaiting",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=aws_cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            alarm_description="Images wait in the ingest DLQ: fix the cause, then `visual-search redrive`",
        )
