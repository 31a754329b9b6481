"""What the stack tells whoever deploys it. Each output sits at the stack's scope under a fixed name:
scripts and the README read them by it (`aws cloudformation describe-stacks ... ApiUrl`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import CfnOutput, Fn

if TYPE_CHECKING:
    from infra.stack import VisualSearchStack


def add_outputs(stack: VisualSearchStack) -> None:
    api, images, index, ingest = stack.api, stack.images, stack.index, stack.ingest
    CfnOutput(
        stack, "ApiUrl", value=api.api.url, description="Cloudinary SDK upload_prefix / page at <url>ui/"
    )
    CfnOutput(stack, "BucketName", value=images.bucket.bucket_name, description="drop images here")
    CfnOutput(stack, "IndexEndpoint", value=index.endpoint)
    CfnOutput(
        stack,
        "IndexRoleArns",
        value=Fn.join(",", [stack.functions["search"].role.role_arn, ingest.worker.role.role_arn]),
        description="roles an existing cluster's access policy (or collection data policy) must admit",
    )
    CfnOutput(
        stack,
        "AlarmTopic",
        value=stack.monitoring.topic.topic_arn,
        description="every alarm notifies this topic: aws sns subscribe --topic-arn <arn> ...",
    )
    CfnOutput(stack, "DeadLetterQueueUrl", value=ingest.dead_letters.queue_url)
    CfnOutput(stack, "IngestQueueUrl", value=ingest.queue.queue_url)
    CfnOutput(stack, "LedgerTable", value=ingest.ledger.table_name, description="for backfills")
    CfnOutput(
        stack,
        "GetApiSecret",
        value=f"aws secretsmanager get-secret-value --secret-id {stack.credentials.secret_arn} "
        "--query SecretString --output text",
    )
    if stack.network is not None:
        CfnOutput(stack, "VpcId", value=stack.network.vpc.vpc_id)
        CfnOutput(
            stack,
            "FunctionSecurityGroup",
            value=stack.network.function_group.security_group_id,
            description="the group the index admits: give it to an operator's host (backfill), or "
            "admit it in an existing index's own group",
        )
