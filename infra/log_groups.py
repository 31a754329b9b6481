"""Every log group the stack creates, CDK's helper functions' included (bucket notifications, deployments,
custom resources) and the OpenSearch domain's: expires after a month and follows `removal_policy`. Left
alone, CDK keeps its helpers' and the domain's groups for ever (RETAIN whatever the stack's policy), and
Lambda creates one, kept for ever, on the first run of a function that has none. With `kms_key_arn`,
every one is encrypted with the team's key (whose policy must let CloudWatch Logs use it: docs/deploy.md)."""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, RemovalPolicy, aws_kms, aws_lambda, aws_logs
from constructs import Construct, IConstruct

RETENTION = aws_logs.RetentionDays.ONE_MONTH
DAYS = 30


@jsii.implements(IAspect)
class LogGroupPolicy:
    """An aspect over the whole stack (so it reaches the groups and functions CDK adds on its own)."""

    def __init__(self, removal: RemovalPolicy, key: aws_kms.IKey | None = None):
        self.removal = removal
        self.key = key

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, aws_logs.CfnLogGroup):
            if node.retention_in_days is None or node.retention_in_days > DAYS:
                node.retention_in_days = DAYS
            node.apply_removal_policy(self.removal)
            if self.key is not None:
                node.kms_key_id = self.key.key_arn
        elif (
            isinstance(node, CfnResource)
            and not isinstance(node, aws_lambda.CfnFunction)  # aws_lambda.Function: CDK gives it a group
            and node.cfn_resource_type == "AWS::Lambda::Function"
        ):
            # A raw function (S3 bucket notifications' handler): its own group, referenced, so it exists
            # before the function can run and log.
            scope = node.node.scope
            assert isinstance(scope, Construct)
            group = aws_logs.LogGroup(scope, "Logs", retention=RETENTION, removal_policy=self.removal)
            node.add_property_override("LoggingConfig.LogGroup", group.log_group_name)
