"""Moving messages parked in the dead-letter queue back to the ingest queue, bounded and resumable:
each message is deleted from the DLQ only after it has been sent to the queue, so an interruption
at any point duplicates at most one message (harmless: ingest is idempotent) and loses none."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from visual_search.ingest.pacing import Pacer

SQS_CONFIG = Config(connect_timeout=3, read_timeout=25, retries={"mode": "standard", "max_attempts": 5})


@dataclass
class RedriveResult:
    moved: int = 0
    remaining_estimate: int = 0


def redrive(
    dlq_url: str,
    queue_url: str,
    max_messages: int | None = None,
    per_second: float | None = None,
    client: Any = None,
    progress: Callable[[int], None] | None = None,
) -> RedriveResult:
    sqs = client or boto3.client("sqs", config=SQS_CONFIG)
    result = RedriveResult()
    pacer = Pacer(per_second)
    while max_messages is None or result.moved < max_messages:
        want = 10 if max_messages is None else min(10, max_messages - result.moved)
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=want, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            pacer.wait()
            attributes = message.get("MessageAttributes") or {}
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], MessageAttributes=attributes)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            result.moved += 1
            if progress:
                progress(1)
    attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    result.remaining_estimate = int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))
    return result
