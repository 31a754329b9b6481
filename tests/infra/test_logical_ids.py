"""CloudFormation knows a resource by its logical id, which CDK derives from the construct's path: a
refactor that moves a construct renames it, and the next deploy replaces the resource, deleting a secret
every SDK holds, a table, a bucket's images or an index's vectors (or failing on a fixed name). The
stateful resources' ids are pinned here, per configuration; a change must be deliberate (and keep the
id, e.g. with the same construct id at the same scope, or `override_logical_id`)."""

from __future__ import annotations

STATEFUL = {
    "AWS::SecretsManager::Secret",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SQS::Queue",
    "AWS::OpenSearchService::Domain",
    "AWS::OpenSearchServerless::Collection",
    "AWS::KMS::Key",  # none yet: the team's key is imported by ARN
    "AWS::Logs::LogGroup",
    "AWS::EC2::VPC",
}
ALWAYS = {
    "CredentialsF8F243AA",
    "ImagesB45AD88B",
    "ImagesAccessLogs6F198F2F",
    "IngestLedgerE45094C3",
    "IngestEventsEF99370A",
    "IngestDeadLetters1228E37E",
    "SearchLogsEC27CE1D",
    "IngestFunctionLogsECCE61FC",
    "ApiAccessLogs50B185DB",
    "ApiExecutionLogsB326CF6B",
    "BucketNotificationsHandler050a0587b7544547bf325f094a3db834LogsF7ED6DCE",
    "CustomCDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C1024MiBLogGroup73AD5141",
}
AUTHORIZER = {"AuthorizerLogsF64AA3CA"}  # auth=secret
DOMAIN = {
    "VectorIndexDomainB5BDE803",
    "VectorIndexDomainAppLogsAC2272DD",
    "VectorIndexDomainSlowIndexLogsC4A021FB",
    "VectorIndexDomainSlowSearchLogs13A1A29B",
    # CDK's custom-resource function that sets the domain's access and log-publishing policies
    "AWS679f53fac002430cb0da5b7982bd2287LogGroup449FB7C2",
}
COLLECTION = {"VectorIndexCollectionBC57E6B7"}
CREATED_VPC = {
    "NetworkVpc7FB7348F",
    "NetworkFlowLogs2BEC3212",
    "CustomVpcRestrictDefaultSGCustomResourceProviderLogs41F6175A",
}
EXPECTED = {
    "managed": ALWAYS | AUTHORIZER | DOMAIN,
    "single-node": ALWAYS | AUTHORIZER | DOMAIN,
    "serverless": ALWAYS | AUTHORIZER | COLLECTION,
    "existing-collection": ALWAYS | AUTHORIZER,
    "existing-iam": ALWAYS,
    "vpc-created": ALWAYS | AUTHORIZER | DOMAIN | CREATED_VPC,
    "vpc-nat": ALWAYS | AUTHORIZER | DOMAIN | CREATED_VPC,
    "vpc-existing": ALWAYS | AUTHORIZER | COLLECTION,
}


def test_every_stateful_resource_keeps_its_logical_id(synthesized):
    found = {
        logical_id
        for logical_id, resource in synthesized.json["Resources"].items()
        if resource["Type"] in STATEFUL
    }
    expected = EXPECTED[synthesized.name]
    assert found == expected, {"renamed or new": found - expected, "gone": expected - found}
