"""Every cdk-nag finding we accept, with the reason, in one place. cdk-nag 3 reports through CDK's policy
validation; a finding is acknowledged by its exact id, so ids naming a resource are built from the
resource's logical id rather than pasted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Acknowledgment, CfnResource, Stack, Token, Validations

from infra.config import Config

if TYPE_CHECKING:
    from infra.stack import VisualSearchStack

RULE = "AwsSolutions::AwsSolutions-"
MANAGED = "arn:<AWS::Partition>:iam::aws:policy/service-role/"
ASSETS = "cdk-hnb659fds-assets-{account}-{region}/*"
BUCKET_GRANTS = (
    "CDK's grant helpers on the one image bucket (read objects, versions and tags; write and delete only "
    "where the function must): the wildcard is in the action family, not in the resource."
)
S3_ACTION_FAMILIES = ("Abort*", "DeleteObject*", "GetBucket*", "GetObject*", "List*")
STATIC = {
    f"{RULE}APIG3": "No WAF by default (cost); every route is authenticated and throttled. A WAF added later "
    "must override the managed rule that blocks bodies over 8 KB on the upload and search routes.",
    f"{RULE}IAM4[Policy::{MANAGED}AWSLambdaBasicExecutionRole]": "The AWS-managed minimum for writing a "
    "function's own logs; every data permission is inline and scoped.",
    f"{RULE}IAM4[Policy::{MANAGED}AmazonAPIGatewayPushToCloudWatchLogs]": "API Gateway's account-level role "
    "for access and execution logs, as AWS documents it.",
    f"{RULE}IAM5[Resource::*]": "Actions without resource-level permissions: X-Ray's PutTraceSegments and "
    "PutTelemetryRecords, and CloudWatch Logs' Put/DeleteResourcePolicy (CDK's domain log publishing).",
    f"{RULE}OS1": "Outside a VPC (without -c vpc_id / create_vpc), the domain answers only SigV4-signed "
    "requests of the named roles.",
    f"{RULE}OS3": "Access is by IAM identity (the two function roles, SigV4), not by IP address.",
    f"{RULE}OS4": "Dedicated master nodes are a sizing choice for large domains (docs/scaling.md).",
    f"{RULE}OS5": "No anonymous access: the domain access policy names the function roles only.",
    f"{RULE}SMG4": "The API secret is shared with SDK users: rotation is an operator action "
    "(docs/deploy.md), since an automatic rotation would break every configured client.",
    f"{RULE}L1": "Functions use Python 3.12, the runtime the layers are built for; CDK's helper functions "
    "(notifications, deployments, custom resources) choose their own runtime.",
    f"{RULE}APIG2": "Requests are validated by the function (Powertools OpenAPI validation), which "
    "answers in Cloudinary's error shape; an API Gateway validator would answer in its own.",
    f"{RULE}COG4": "Cloudinary-style key:secret (Lambda authorizer) or IAM by design: Cloudinary's SDKs "
    "cannot send Cognito tokens.",
    f"{RULE}APIG4": "Without an API Gateway authorizer: the routes src/visual_search/api/routes.py declares "
    "PUBLIC (the search page's static files: /, /ui, /ui/{name}; no data, no secret) or SIGNED (Cloudinary's "
    "Upload API: POST /v1_1/{cloud_name}/{resource_type}/upload, destroy, rename, tags, context, explicit), "
    "whose signature is in the body, where only the function can verify it (and does).",
    **{f"{RULE}IAM5[Action::s3:{action}]": BUCKET_GRANTS for action in S3_ACTION_FAMILIES},
}


def _logical_id(resource: object) -> str:
    child = resource.node.default_child  # type: ignore[attr-defined]
    assert isinstance(child, CfnResource)
    return Stack.of(child).get_logical_id(child)


def _assets(stack: Stack) -> str:
    """The bootstrap assets bucket's objects, as the synthesized policy names them: by pseudo parameters
    in an environment-agnostic stack, literally in one bound to an account (a looked-up VPC)."""
    if Token.is_unresolved(stack.account):
        bucket = ASSETS.format(account="<AWS::AccountId>", region="<AWS::Region>")
        return f"arn:<AWS::Partition>:s3:::{bucket}"
    return f"arn:{stack.partition}:s3:::{ASSETS.format(account=stack.account, region=stack.region)}"


SINGLE_NODE = {
    f"{RULE}OS7": "instance_count=1, a single-node dev domain (one AZ, no replica, the cheapest k-NN "
    "domain): Config refuses any other odd count, and every count above 1 gets two-AZ zone awareness.",
}


IN_VPC = {
    f"{RULE}IAM4[Policy::{MANAGED}AWSLambdaVPCAccessExecutionRole]": "The AWS-managed minimum for a "
    "function in a VPC: creating, describing and deleting its own network interfaces.",
}


KEYED = {
    f"{RULE}IAM5[Action::kms:{action}]": "CDK's grants on the team's one key (kms_key_arn), the only "
    "resource named: data keys for what the functions write, and the domain's access-policy custom "
    "resource describing the key the domain is encrypted with. The wildcard is in the action family."
    for action in ("GenerateDataKey*", "ReEncrypt*", "Describe*", "List*")
}


def apply(stack: VisualSearchStack, config: Config) -> None:
    domain = stack.index.domain
    reasons = dict(STATIC)
    if domain is not None and config.instance_count == 1:
        reasons |= SINGLE_NODE
    if config.in_vpc:
        reasons |= IN_VPC
    if config.kms_key_arn:
        reasons |= KEYED
    reasons[f"{RULE}IAM5[Resource::{_assets(stack)}]"] = (
        "CDK's bucket deployment reads the image tower from the CDK bootstrap assets bucket."
    )
    images = _logical_id(stack.images.bucket)
    reasons[f"{RULE}IAM5[Resource::<{images}.Arn>/*]"] = "Object keys inside the one image bucket."
    reasons[f"{RULE}IAM5[Resource::<{images}.Arn>/_vs/*]"] = "Renditions, under the reserved prefix only."
    index_paths = (
        "Index paths of the one OpenSearch domain; the domain access policy names the same two roles."
    )
    if domain is not None:
        reasons[f"{RULE}IAM5[Resource::<{_logical_id(domain)}.Arn>/*]"] = index_paths
    if config.existing_arn:
        reasons[f"{RULE}IAM5[Resource::{config.existing_arn}/*]"] = index_paths
    Validations.of(stack).acknowledge(*[Acknowledgment(id=rule, reason=why) for rule, why in reasons.items()])
