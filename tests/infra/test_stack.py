"""Security and wiring properties of the synthesized stack, for every deployment configuration."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest
from aws_cdk.assertions import Match

from app import cdk_json_context
from infra.config import Config
from infra.ingest_pipeline import FUNCTION_TIMEOUT_S
from infra.monitoring import INGEST_SERVICE
from infra.search_api import gateway_paths
from tests.fixtures.routes import request_paths
from tests.infra.conftest import ADMIN_ROLE, CONFIGURATIONS, ROOT, ensure_layers, ref
from tests.infra.gateway_routing import reached, tree
from visual_search import observability
from visual_search.api.routes import ROUTES, Auth
from visual_search.observability import NAMESPACE, publish_ingest
from visual_search.settings import ENV_PREFIX, IngestSettings, ServiceSettings

# Values of the route table's path parameters, as clients send them.
SAMPLES = {
    "cloud_name": ("demo",),
    "resource_type": ("image", "auto", "raw", "video"),
    "public_id": ("photo", "folder/photo"),
}
SETTINGS_OF = {"search": ServiceSettings, "authorizer": ServiceSettings, "ingest": IngestSettings}
# Actions AWS offers without resource-level permissions, so "*" is the only possible resource.
UNSCOPABLE = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "logs:PutResourcePolicy",
    "logs:DeleteResourcePolicy",
}


def _method_paths(s) -> dict[str, tuple[str, str]]:
    resources = s.resources("AWS::ApiGateway::Resource")

    def path_of(resource_id) -> str:
        if isinstance(resource_id, dict) and "Fn::GetAtt" in resource_id:
            return "/"  # the API's root resource
        props = resources[ref(resource_id)]["Properties"]
        parent = path_of(props["ParentId"])
        return parent.rstrip("/") + "/" + props["PathPart"]

    return {
        logical_id: (m["Properties"]["HttpMethod"], path_of(m["Properties"]["ResourceId"]))
        for logical_id, m in s.resources("AWS::ApiGateway::Method").items()
    }


def _role_of(function_id: str, s) -> str:
    return ref(s.json["Resources"][function_id]["Properties"]["Role"])


def _statements_of_role(role_id: str, s) -> list[dict]:
    statements = []
    for policy in s.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# --- the API: authentication and error shapes ---------------------------------------------------------


def test_every_api_method_is_authenticated_except_those_of_the_signed_and_public_routes(synthesized):
    expected = "AWS_IAM" if synthesized.name == "existing-iam" else "CUSTOM"
    methods = synthesized.resources("AWS::ApiGateway::Method")
    routes = _method_paths(synthesized)
    assert ("ANY", "/{proxy+}") in routes.values()
    assert ("ANY", "/") in routes.values()
    assert ("ANY", "/v1_1/{cloud_name}/{proxy+}") in routes.values()
    unguarded = {
        (route.method, path)
        for route in ROUTES
        if route.auth is not Auth.CREDENTIALS
        for path in gateway_paths(route)
    }
    assert set(routes.values()) >= unguarded
    for logical_id, (verb, path) in routes.items():
        props = methods[logical_id]["Properties"]
        if (verb, path) in unguarded:
            assert props["AuthorizationType"] == "NONE"
        else:
            assert props["AuthorizationType"] == expected, f"{verb} {path} is not authenticated"
        assert props["Integration"]["Type"] == "AWS_PROXY", f"{verb} {path} does not reach the function"


@pytest.mark.parametrize("backtrack", [False, True], ids=["no-backtrack", "backtrack"])
def test_signed_and_public_routes_reach_the_function_without_an_authorizer_and_every_other_only_with_one(
    synthesized, backtrack
):
    # The function verifies a signed call's signature in its body (SDKs send no Authorization header),
    # so API Gateway must not ask for credentials; every other route must be behind them at both.
    expected = {
        Auth.CREDENTIALS: "AWS_IAM" if synthesized.name == "existing-iam" else "CUSTOM",
        Auth.SIGNED: "NONE",
        Auth.PUBLIC: "NONE",
    }
    root = tree(synthesized)
    for route in ROUTES:
        for path in request_paths(route, SAMPLES):
            method = reached(root, route.method, path, backtrack)
            assert method is not None, f"{route.method} {path} reaches no method"
            assert method["AuthorizationType"] == expected[route.auth], f"{route.method} {path}: {route.auth}"


def test_the_authorizer_checks_the_authorization_header_with_a_cached_request_authorizer(managed):
    managed.template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {
            "Type": "REQUEST",
            "IdentitySource": "method.request.header.Authorization",
            "AuthorizerResultTtlInSeconds": Match.any_value(),
        },
    )
    (authorizer,) = managed.resources("AWS::ApiGateway::Authorizer").values()
    assert 0 < authorizer["Properties"]["AuthorizerResultTtlInSeconds"] <= 3600
    assert "authorizer" in managed.our_functions()


def test_iam_mode_has_no_authorizer_and_no_credentials_function(existing_iam):
    assert existing_iam.resources("AWS::ApiGateway::Authorizer") == {}
    assert "authorizer" not in existing_iam.our_functions()


def test_every_function_serving_the_api_answers_the_configured_cloud_name(synthesized):
    # Cloudinary clients put their cloud name in every path; any other one is a 404.
    expected = CONFIGURATIONS[synthesized.name].get("cloud_name", "demo")
    serving = {n: f for n, f in synthesized.our_functions().items() if SETTINGS_OF[n] is ServiceSettings}
    assert "search" in serving
    for name, fn in serving.items():
        assert fn["Environment"]["Variables"].get("VS_CLOUD_NAME") == expected, name


def test_the_default_cloud_name_is_still_the_one_the_service_answered_before():
    assert cdk_json_context()["cloud_name"] == Config().cloud_name == ServiceSettings().cloud_name == "demo"


def test_the_search_function_checks_callers_the_way_its_routes_authenticate_them(synthesized):
    # AWS_IAM routes: the function trusts requestContext.identity (test_search_handler_auth.py).
    expected = "iam" if synthesized.name == "existing-iam" else "basic"
    search = synthesized.our_functions()["search"]
    assert search["Environment"]["Variables"]["VS_API_AUTH"] == expected


def test_every_gateway_response_answers_in_cloudinarys_error_shape(synthesized):
    responses = synthesized.resources("AWS::ApiGateway::GatewayResponse")
    kinds = {r["Properties"]["ResponseType"] for r in responses.values()}
    assert {
        "DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED", "UNAUTHORIZED", "ACCESS_DENIED",
        "REQUEST_TOO_LARGE", "INTEGRATION_TIMEOUT", "MISSING_AUTHENTICATION_TOKEN",
    } <= kinds  # fmt: skip
    for response in responses.values():
        props = response["Properties"]
        template = props["ResponseTemplates"]["application/json"]
        # $context.error.messageString is already a quoted JSON string (AWS docs).
        rendered = json.loads(template.replace("$context.error.messageString", '"Unauthorized"'))
        if props["ResponseType"] == "REQUEST_TOO_LARGE":  # names the limit and the part size to use
            assert "6 MB" in rendered["error"]["message"]
            assert "chunk_size=4000000" in rendered["error"]["message"]
        else:
            assert rendered == {"error": {"message": "Unauthorized"}}
        assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"


def test_the_api_is_throttled_logged_traced_and_accepts_multipart_bodies(managed):
    (api,) = managed.resources("AWS::ApiGateway::RestApi").values()
    assert "multipart/form-data" in api["Properties"]["BinaryMediaTypes"]
    (stage,) = managed.resources("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    parts = props["AccessLogSetting"]["DestinationArn"]["Fn::Join"][1]
    assert ":log-group:" in parts
    assert ref(parts[-1]) in managed.resources("AWS::Logs::LogGroup")
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] > 0
    assert settings["ThrottlingBurstLimit"] > 0


def test_the_search_function_times_out_before_api_gateway_so_errors_keep_our_shape(synthesized):
    search = synthesized.our_functions()["search"]
    for method in synthesized.resources("AWS::ApiGateway::Method").values():
        integration_ms = method["Properties"]["Integration"].get("TimeoutInMillis", 29_000)
        assert search["Timeout"] * 1000 < integration_ms


# --- the bucket and its events ------------------------------------------------------------------------


def test_the_image_bucket_is_encrypted_private_tls_only_and_versioned(synthesized):
    images = synthesized.stack.images.bucket.node.default_child
    logical_id = synthesized.stack.get_logical_id(images)
    props = synthesized.json["Resources"][logical_id]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"]["DestinationBucketName"]
    (policy,) = [
        p for p in synthesized.resources("AWS::S3::BucketPolicy").values()
        if ref(p["Properties"]["Bucket"]) == logical_id
    ]  # fmt: skip
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    denies = {json.dumps(s["Condition"]) for s in statements if s["Effect"] == "Deny"}
    assert json.dumps({"Bool": {"aws:SecureTransport": "false"}}) in denies
    assert json.dumps({"NumericLessThan": {"s3:TlsVersion": 1.2}}) in denies


def test_object_created_and_removed_events_go_to_the_ingest_queue_filtered_by_prefix(synthesized):
    (notifications,) = synthesized.resources("Custom::S3BucketNotifications").values()
    configs = notifications["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    queue = synthesized.stack.get_logical_id(synthesized.stack.ingest.queue.node.default_child)
    assert sorted(e for c in configs for e in c["Events"]) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert all(ref(c["QueueArn"]) == queue for c in configs)
    prefix = {"serverless": "photos/"}.get(synthesized.name)
    for config in configs:
        rules = config.get("Filter", {}).get("Key", {}).get("FilterRules", [])
        assert rules == ([{"Name": "prefix", "Value": prefix}] if prefix else [])


# --- the ingest pipeline ------------------------------------------------------------------------------


def test_the_ingest_queue_accepts_s3_events_outlives_retries_and_parks_failures(synthesized):
    stack = synthesized.stack
    queue_id = stack.get_logical_id(stack.ingest.queue.node.default_child)
    dlq_id = stack.get_logical_id(stack.ingest.dead_letters.node.default_child)
    queue = synthesized.json["Resources"][queue_id]["Properties"]
    ingest = synthesized.our_functions()["ingest"]
    assert queue["MaximumMessageSize"] >= 65_536  # S3 silently drops deliveries to smaller queues
    assert queue["VisibilityTimeout"] >= 6 * ingest["Timeout"] == 6 * FUNCTION_TIMEOUT_S
    assert ref(queue["RedrivePolicy"]["deadLetterTargetArn"]) == dlq_id
    assert 1 < queue["RedrivePolicy"]["maxReceiveCount"] <= 10
    key = CONFIGURATIONS[synthesized.name].get("kms_key_arn")
    for props in (queue, synthesized.json["Resources"][dlq_id]["Properties"]):
        if key:  # the team's key
            assert props["KmsMasterKeyId"] == key
        else:
            assert props["SqsManagedSseEnabled"] is True
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_only_s3_for_this_bucket_in_this_account_may_send_to_the_ingest_queue(synthesized):
    stack = synthesized.stack
    queue_id = stack.get_logical_id(stack.ingest.queue.node.default_child)
    bucket_id = stack.get_logical_id(stack.images.bucket.node.default_child)
    statements = [
        s
        for p in synthesized.resources("AWS::SQS::QueuePolicy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    (s3,) = statements
    assert s3["Principal"] == {"Service": "s3.amazonaws.com"}
    assert ref(s3["Resource"]) == queue_id
    assert s3["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [bucket_id, "Arn"]}},
        "StringEquals": {"aws:SourceAccount": stack.resolve(stack.account)},  # literal if bound to one
    }


def test_a_message_waiting_in_the_dead_letter_queue_raises_an_alarm(synthesized):
    dlq_name = {"Fn::GetAtt": [
        synthesized.stack.get_logical_id(synthesized.stack.ingest.dead_letters.node.default_child),
        "QueueName",
    ]}  # fmt: skip
    synthesized.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Namespace": "AWS/SQS",
            "Dimensions": [{"Name": "QueueName", "Value": dlq_name}],
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        },
    )


def test_the_ingest_function_reads_the_queue_in_batches_with_partial_batch_responses(synthesized):
    (mapping,) = synthesized.resources("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert ref(props["FunctionName"]) == synthesized.our_functions()["ingest"]["id"]
    assert ref(props["EventSourceArn"]) == synthesized.stack.get_logical_id(
        synthesized.stack.ingest.queue.node.default_child
    )
    assert props["BatchSize"] == 10
    assert props["ScalingConfig"]["MaximumConcurrency"] == 20


def test_the_asset_ledger_is_encrypted_and_point_in_time_recoverable(synthesized):
    (table,) = synthesized.resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["DeletionPolicy"] == _deletion_policy(synthesized)


STATEFUL = (
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::OpenSearchService::Domain",
    "AWS::OpenSearchServerless::Collection",
    "AWS::OpenSearchServerless::SecurityPolicy",
    "AWS::OpenSearchServerless::AccessPolicy",
)


def _engine(s) -> str:
    """managed, serverless, existing-collection or existing-domain: what the configuration asks for."""
    context = CONFIGURATIONS[s.name]
    engine = context.get("index_engine", "managed")
    if engine == "existing":
        return "existing-collection" if ":aoss:" in context["existing_arn"] else "existing-domain"
    return engine


def _deletion_policy(s) -> str:
    return "Delete" if CONFIGURATIONS[s.name].get("removal_policy") == "destroy" else "Retain"


def test_the_index_the_ledger_and_the_bucket_follow_one_removal_policy(synthesized):
    # A collection deleted while the ledger retains says "indexed" for vectors that are gone.
    stateful = {k: r for k, r in synthesized.json["Resources"].items() if r["Type"] in STATEFUL}
    assert {r["Type"] for r in stateful.values()} >= {"AWS::DynamoDB::Table", "AWS::S3::Bucket"}
    for logical_id, resource in stateful.items():
        assert resource.get("DeletionPolicy") == _deletion_policy(synthesized), logical_id
        assert resource.get("UpdateReplacePolicy") == _deletion_policy(synthesized), logical_id


# --- functions: settings, layers, logs ----------------------------------------------------------------


def test_every_function_environment_variable_is_a_field_of_its_runtime_settings(synthesized):
    functions = synthesized.our_functions()
    for name, fn in functions.items():
        fields = SETTINGS_OF[name].model_fields
        variables = fn["Environment"]["Variables"]
        ours = [v for v in variables if v.startswith(ENV_PREFIX)]
        assert ours, name
        unknown = [v for v in ours if v[len(ENV_PREFIX) :].lower() not in fields]
        assert unknown == [], f"{name} sets {unknown}, which its settings model does not read"


def test_each_function_gets_only_the_model_tower_it_uses(synthesized):
    layers = {
        synthesized.stack.get_logical_id(layer.node.default_child): name
        for name, layer in (
            ("deps", synthesized.stack.node.find_child("Layers").deps),
            ("bytecode", synthesized.stack.node.find_child("Layers").bytecode),
            ("text", synthesized.stack.node.find_child("Layers").model_text),
            ("image", synthesized.stack.node.find_child("Layers").model_image),
        )
    }
    functions = synthesized.our_functions()
    used = {name: sorted(layers[ref(lv)] for lv in fn.get("Layers", [])) for name, fn in functions.items()}
    assert used["search"] == ["bytecode", "deps", "text"]  # byte code for the functions on the request path
    assert used["ingest"] == ["deps", "image"]
    assert used.get("authorizer", ["bytecode", "deps"]) == ["bytecode", "deps"]
    architecture = "x86_64" if synthesized.name == "existing-iam" else "arm64"
    assert all(fn["Architectures"] == [architecture] for fn in functions.values())


def test_every_log_group_has_a_retention_and_every_function_logs_to_one_and_is_traced(synthesized):
    groups = synthesized.resources("AWS::Logs::LogGroup")
    assert groups
    assert all(0 < g["Properties"].get("RetentionInDays", 0) <= 30 for g in groups.values())
    for name, fn in synthesized.our_functions().items():
        assert ref(fn["LoggingConfig"]["LogGroup"]) in groups, name
        assert fn["TracingConfig"] == {"Mode": "Active"}, name


def test_every_log_group_the_stack_creates_follows_the_removal_policy(synthesized):
    # The domain's three and CDK's helpers' (custom resources, the tower deployment) included: under
    # `destroy` nothing is left behind, under `retain` no log is lost with the stack.
    groups = synthesized.resources("AWS::Logs::LogGroup")
    expected = _deletion_policy(synthesized)
    wrong = {
        logical_id: (group.get("DeletionPolicy"), group.get("UpdateReplacePolicy"))
        for logical_id, group in groups.items()
        if (group.get("DeletionPolicy"), group.get("UpdateReplacePolicy")) != (expected, expected)
    }
    assert wrong == {}
    # Lambda's logRetention helper makes groups CloudFormation never deletes: none may come back.
    assert synthesized.resources("Custom::LogRetention") == {}


def test_cdks_helper_functions_log_to_groups_that_expire_too(synthesized):
    # Without one, Lambda creates /aws/lambda/<name> on first use, kept for ever.
    groups = synthesized.resources("AWS::Logs::LogGroup")
    named_after = {
        ref(part)
        for g in groups.values()
        for part in g["Properties"].get("LogGroupName", {}).get("Fn::Join", ["", []])[1]
        if ref(part)
    }
    functions = synthesized.resources("AWS::Lambda::Function")
    assert len(functions) > len(synthesized.our_functions())  # CDK's own helpers are there
    for logical_id, fn in functions.items():
        own = ref((fn["Properties"].get("LoggingConfig") or {}).get("LogGroup"))
        assert own in groups or logical_id in named_after, logical_id


def test_api_gateways_execution_logs_expire_and_exist_before_the_stage(synthesized):
    (api_id,) = synthesized.resources("AWS::ApiGateway::RestApi")
    groups = synthesized.resources("AWS::Logs::LogGroup")
    (execution_id,) = [
        k for k, g in groups.items()
        if g["Properties"].get("LogGroupName") == {
            "Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": api_id}, "/v1"]]
        }
    ]  # fmt: skip
    (stage,) = synthesized.resources("AWS::ApiGateway::Stage").values()
    assert stage["Properties"]["StageName"] == "v1"
    assert execution_id in stage["DependsOn"]


def test_the_image_tower_is_published_per_model_before_the_search_function_that_fetches_it(synthesized):
    model_id = synthesized.stack.node.find_child("Layers").built["model_id"]
    prefix = "_vs/models/" + re.sub(r"[^A-Za-z0-9._-]", "-", model_id) + "/"
    (deployment_id, deployment), *others = synthesized.resources("Custom::CDKBucketDeployment").items()
    assert others == []
    assert deployment["Properties"]["DestinationBucketKeyPrefix"] == prefix
    assert deployment["Properties"]["RetainOnDelete"] is True  # the previous model's stays for its functions
    search = synthesized.our_functions()["search"]
    remote = search["Environment"]["Variables"]["VS_MODEL_REMOTE_URL"]
    assert remote["Fn::Join"][1][-1] == f"/{prefix}"
    assert deployment_id in synthesized.json["Resources"][search["id"]]["DependsOn"]


def test_the_tower_deployment_cannot_touch_objects_outside_its_prefix(synthesized):
    (deployment,) = synthesized.resources("Custom::CDKBucketDeployment").values()
    prefix = deployment["Properties"]["DestinationBucketKeyPrefix"]
    function_id = ref(deployment["Properties"]["ServiceToken"])
    role = _role_of(function_id, synthesized)
    (deny,) = [s for s in _statements_of_role(role, synthesized) if s["Effect"] == "Deny"]
    assert {"s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*"} <= set(deny["Action"])
    images = synthesized.stack.get_logical_id(synthesized.stack.images.bucket.node.default_child)
    (own, assets) = deny["NotResource"]
    assert own == {"Fn::Join": ["", [{"Fn::GetAtt": [images, "Arn"]}, f"/{prefix}*"]]}
    assert assets == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::cdk-*/*"]]}


# --- least privilege ----------------------------------------------------------------------------------


def test_no_statement_grants_every_action_or_every_resource_where_one_can_be_named(synthesized):
    for policy_id, policy in synthesized.resources("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = _as_list(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), (policy_id, actions)
            if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"]):
                assert set(actions) <= UNSCOPABLE, (policy_id, actions)


def test_ingest_writes_only_renditions_and_the_search_api_only_holds_names_in_the_ledger(synthesized):
    functions = synthesized.our_functions()
    ingest = _statements_of_role(_role_of(functions["ingest"]["id"], synthesized), synthesized)
    writes = [s for s in ingest if any(a.startswith(("s3:Put", "s3:Delete")) for a in _as_list(s["Action"]))]
    assert writes
    assert all(json.dumps(s["Resource"]).endswith('"/_vs/*"]]}') for s in writes)
    # Uploads to one public_id take turns through a hold in the ledger the ingest worker shares (every
    # instance of the search function sees it): a conditional put and a delete, on that table only.
    (ledger,) = synthesized.resources("AWS::DynamoDB::Table")
    search_fn = functions["search"]
    assert search_fn["Environment"]["Variables"]["VS_LEDGER_TABLE"] == {"Ref": ledger}
    search = _statements_of_role(_role_of(search_fn["id"], synthesized), synthesized)
    on_ledger = [s for s in search if any(a.startswith("dynamodb:") for a in _as_list(s["Action"]))]
    assert {a for s in on_ledger for a in _as_list(s["Action"])} == {
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    }
    assert all(_as_list(s["Resource"]) == [{"Fn::GetAtt": [ledger, "Arn"]}] for s in on_ledger)
    if "authorizer" in functions:
        authorizer = _statements_of_role(_role_of(functions["authorizer"]["id"], synthesized), synthesized)
        actions = {a for s in authorizer for a in _as_list(s["Action"])}
        # The team's key, if any: the secret and the function's environment are encrypted with it.
        key = {"kms:Decrypt"} if CONFIGURATIONS[synthesized.name].get("kms_key_arn") else set()
        assert (
            actions <= {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"} | key | UNSCOPABLE
        )


def test_index_data_access_is_granted_to_the_search_and_ingest_roles_only(synthesized):
    functions = synthesized.our_functions()
    allowed = {_role_of(functions[n]["id"], synthesized) for n in ("search", "ingest")}
    holders = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith(("es:ESHttp", "aoss:")) for a in _as_list(statement["Action"])):
                holders |= {ref(r) for r in policy["Properties"]["Roles"]}
                if synthesized.name == "existing-iam":
                    assert _as_list(statement["Resource"]) == [
                        "arn:aws:es:eu-west-1:123456789012:domain/team/*"
                    ]
    assert holders == allowed


# --- the vector index ---------------------------------------------------------------------------------


def test_the_managed_domain_is_encrypted_https_only_and_its_access_policy_names_the_function_roles(managed):
    (domain,) = managed.resources("AWS::OpenSearchService::Domain").values()
    props = domain["Properties"]
    assert props["EncryptionAtRestOptions"] == {"Enabled": True}
    assert props["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert props["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert props["DomainEndpointOptions"]["TLSSecurityPolicy"] == "Policy-Min-TLS-1-2-2019-07"
    assert re.fullmatch(r"OpenSearch_2\.\d+", props["EngineVersion"])
    assert props["EBSOptions"]["VolumeType"] == "gp3"  # as docs/scaling.md prices it
    cluster = props["ClusterConfig"]
    assert cluster["InstanceCount"] == 2
    assert cluster["ZoneAwarenessEnabled"] is True
    assert cluster["ZoneAwarenessConfig"] == {"AvailabilityZoneCount": 2}
    (access,) = managed.resources("Custom::OpenSearchAccessPolicy").values()
    text = json.dumps(access["Properties"])
    functions = managed.our_functions()
    roles = {_role_of(functions[n]["id"], managed) for n in ("search", "ingest")}
    named = set(re.findall(r'\\"Fn::GetAtt\\":\[\\"(\w+)\\",\\"Arn\\"\]', text)) | set(
        re.findall(r'"Fn::GetAtt": \["(\w+Role\w*)", "Arn"\]', text)
    )
    assert named == roles
    assert '\\"AWS\\":\\"*\\"' not in text
    assert '"AWS": "*"' not in text


def test_a_single_node_dev_domain_synthesizes_in_one_az_with_its_nag_finding_acknowledged(single_node):
    (domain,) = single_node.resources("AWS::OpenSearchService::Domain").values()
    cluster = domain["Properties"]["ClusterConfig"]
    assert cluster["InstanceCount"] == 1
    assert cluster.get("ZoneAwarenessEnabled") is not True
    assert domain["Properties"]["EBSOptions"]["VolumeType"] == "gp3"


def test_the_serverless_collection_has_encryption_network_and_data_policies_for_the_function_roles(
    serverless,
):
    (collection,) = serverless.resources("AWS::OpenSearchServerless::Collection").values()
    assert collection["Properties"]["Type"] == "VECTORSEARCH"
    assert collection["Properties"]["StandbyReplicas"] == "ENABLED"  # the default; dev can turn it off
    name = collection["Properties"]["Name"]
    policies = {
        p["Properties"]["Type"]: p["Properties"]
        for p in serverless.resources("AWS::OpenSearchServerless::SecurityPolicy").values()
    }
    encryption = json.loads(policies["encryption"]["Policy"])
    assert encryption["Rules"] == [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}]
    assert json.loads(policies["network"]["Policy"])[0]["Rules"][0]["Resource"] == [f"collection/{name}"]
    (data,) = serverless.resources("AWS::OpenSearchServerless::AccessPolicy").values()
    parts = data["Properties"]["Policy"]["Fn::Join"][1]
    principals = {ref(p) for p in parts if isinstance(p, dict)}
    functions = serverless.our_functions()
    assert principals == {_role_of(functions[n]["id"], serverless) for n in ("search", "ingest")}
    text = "".join(p for p in parts if isinstance(p, str))
    assert f"index/{name}/*" in text
    assert f'"{ADMIN_ROLE}"' in text  # the operators' role, for backfills and re-indexing
    depends = set(collection.get("DependsOn", []))
    assert len(depends) == 2  # the collection waits for its encryption and network policies


def test_functions_speak_the_engines_mode_and_reach_an_existing_collection_by_its_arn_only(
    synthesized,
):
    functions = synthesized.our_functions()
    mode = "serverless" if _engine(synthesized) in ("serverless", "existing-collection") else "managed"
    region = "eu-west-1" if synthesized.name.startswith("existing") else None  # its ARN's region
    for name in ("search", "ingest"):
        assert functions[name]["Environment"]["Variables"]["VS_OPENSEARCH_MODE"] == mode
        assert functions[name]["Environment"]["Variables"].get("VS_OPENSEARCH_REGION") == region
    if synthesized.name == "existing-collection":
        role = _role_of(functions["ingest"]["id"], synthesized)
        statements = [
            s for s in _statements_of_role(role, synthesized) if "aoss:APIAccessAll" in _as_list(s["Action"])
        ]
        assert [s["Resource"] for s in statements] == [
            "arn:aws:aoss:eu-west-1:123456789012:collection/abc123"
        ]
        assert "IndexRoleArns" in synthesized.json["Outputs"]


def test_functions_on_serverless_are_told_the_collections_generation(synthesized):
    # The stack's own collection joins no NextGen collection group, so it is Classic; an existing one is
    # whatever `serverless_generation` says (NextGen unless told otherwise, as AWS's console creates).
    expected = {"serverless": "classic", "existing-collection": "nextgen"}.get(_engine(synthesized))
    functions = synthesized.our_functions()
    for name in ("search", "ingest"):
        assert functions[name]["Environment"]["Variables"].get("VS_OPENSEARCH_GENERATION") == expected


# --- secrets and outputs ------------------------------------------------------------------------------


def test_the_api_secret_is_generated_never_written_in_the_template(managed):
    (secret,) = managed.resources("AWS::SecretsManager::Secret").values()
    generated = secret["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "api_secret"
    assert generated["PasswordLength"] >= 32
    assert "SecretString" not in secret["Properties"]


def test_the_outputs_tell_how_to_reach_the_api_the_bucket_the_index_and_the_secret(synthesized):
    outputs = synthesized.json["Outputs"]
    assert {
        "ApiUrl",
        "BucketName",
        "IndexEndpoint",
        "GetApiSecret",
        "DeadLetterQueueUrl",
        "LedgerTable",
    } <= set(outputs)
    assert "secretsmanager get-secret-value" in json.dumps(outputs["GetApiSecret"]["Value"])


def test_every_serverless_policy_name_fits_in_32_characters(serverless):
    for kind in ("AWS::OpenSearchServerless::SecurityPolicy", "AWS::OpenSearchServerless::AccessPolicy"):
        for policy in serverless.resources(kind).values():
            assert len(policy["Properties"]["Name"]) <= 32


# --- alarms -------------------------------------------------------------------------------------------


def test_every_alarm_notifies_the_alarm_topic_which_the_outputs_name(synthesized):
    (topic_id,) = synthesized.resources("AWS::SNS::Topic")
    alarms = synthesized.resources("AWS::CloudWatch::Alarm")
    assert len(alarms) >= 6
    for logical_id, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}], logical_id
    assert synthesized.json["Outputs"]["AlarmTopic"]["Value"] == {"Ref": topic_id}


def test_failing_ingest_raises_alarms_within_minutes_not_when_the_dlq_fills(synthesized):
    # A partial batch response never raises Lambda's Errors: the function's retries and the queue's
    # backlog age are what move when the index is down.
    queue = synthesized.stack.get_logical_id(synthesized.stack.ingest.queue.node.default_child)
    alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    retries = [a for a in alarms if a.get("MetricName") == "MessagesRetried"]
    assert [(a["Namespace"], a["Dimensions"]) for a in retries] == [
        (
            "VisualSearch",
            [{"Name": "service", "Value": INGEST_SERVICE}, {"Name": "stack", "Value": "VisualSearch"}],
        )
    ]
    (backlog,) = [a for a in alarms if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    assert backlog["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    assert backlog["Threshold"] + backlog["Period"] * backlog["EvaluationPeriods"] <= 1800  # DLQ: ~1 h


def _retries_alarm(resources) -> dict:
    (alarm,) = [
        r["Properties"] for r in resources
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "MessagesRetried"
    ]  # fmt: skip
    return alarm


def test_the_retries_alarm_watches_the_metric_the_ingest_handler_publishes(managed, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("ingest_handler", ROOT / "functions/ingest/handler.py")
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    assert (handler.metrics.namespace, handler.metrics.service) == (NAMESPACE, INGEST_SERVICE)
    # The handler's own Metrics, in the environment the stack gives the function, files the retries under
    # exactly the dimensions the alarm selects (CloudWatch matches the whole set).
    ingest = managed.our_functions()["ingest"]
    for variable, value in ingest["Environment"]["Variables"].items():
        if isinstance(value, str):
            monkeypatch.setenv(variable, value)
    observability.deployed_stack.cache_clear()
    try:
        publish_ingest(handler.metrics, {}, {}, failed_messages=1)
        handler.metrics.flush_metrics()
    finally:
        observability.deployed_stack.cache_clear()
    (document,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    published = {name: document[name] for name in directive["Dimensions"][0]}
    alarm = _retries_alarm(managed.json["Resources"].values())
    assert published == {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_two_stacks_in_one_account_alarm_on_their_own_ingest_retries_only():
    import aws_cdk
    from aws_cdk.assertions import Template

    from infra.stack import VisualSearchStack

    app = aws_cdk.App(context={**cdk_json_context(), "layers_dir": str(ensure_layers())})
    config = Config.from_context(app.node.get_all_context())
    stacks = [VisualSearchStack(app, name, config=config) for name in ("VisualSearch", "VisualSearchStaging")]
    selected = {}
    for stack in stacks:
        template = Template.from_stack(stack).to_json()
        alarm = _retries_alarm(template["Resources"].values())
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        selected[stack.stack_name] = dimensions["stack"]
        ingest = stack.functions["ingest"].function.node.default_child
        variables = template["Resources"][stack.get_logical_id(ingest)]["Properties"]["Environment"]
        assert variables["Variables"]["VS_STACK_NAME"] == dimensions["stack"]  # what the function emits
    assert selected == {"VisualSearch": "VisualSearch", "VisualSearchStaging": "VisualSearchStaging"}


def test_the_alarm_email_is_subscribed_only_when_given(synthesized):
    subscriptions = [s["Properties"] for s in synthesized.resources("AWS::SNS::Subscription").values()]
    if synthesized.name == "single-node":
        assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "ops@example.com")]
    else:
        assert subscriptions == []
