"""Inside a VPC (an existing one looked up, or one the stack makes): the functions in its private subnets,
the index reachable from the functions only, and AWS reached through endpoints or a NAT gateway."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Environment, Stack

from infra.config import Config
from infra.network import Network, NetworkError
from tests.infra.conftest import (
    ACCOUNT,
    CONFIGURATIONS,
    RECORDED_LOOKUPS,
    REGION,
    VPC_CONFIGURATIONS,
    cached,
    ref,
)

LOOKED_UP = CONFIGURATIONS["vpc-existing"]
TEAM_GROUP = LOOKED_UP["vpc_security_group_ids"]
INTERFACE_SERVICES = {"secretsmanager", "xray", "sqs", "sts", "logs", "monitoring"}


def _function_group(s) -> str:
    return s.stack.get_logical_id(s.stack.network.function_group.node.default_child)


def _ingress_rules(s) -> list[dict]:
    """Every ingress rule of the template: inline in a group, or a rule resource of its own."""
    rules = [
        {**rule, "GroupId": {"Ref": logical_id}}
        for logical_id, group in s.resources("AWS::EC2::SecurityGroup").items()
        for rule in group["Properties"].get("SecurityGroupIngress", [])
    ]
    return rules + [r["Properties"] for r in s.resources("AWS::EC2::SecurityGroupIngress").values()]


def _service(endpoint: dict) -> str:
    name = endpoint["Properties"]["ServiceName"]
    text = name if isinstance(name, str) else "".join(p for p in name["Fn::Join"][1] if isinstance(p, str))
    return text.rsplit(".", 1)[-1]


def _function_subnets(s) -> list:
    (subnets,) = {json.dumps(f["VpcConfig"]["SubnetIds"]) for f in s.our_functions().values()}
    return json.loads(subnets)


def test_every_function_runs_in_the_vpcs_private_subnets_behind_the_stacks_security_group(in_vpc):
    group = _function_group(in_vpc)
    extra = [TEAM_GROUP] if in_vpc.name == "vpc-existing" else []
    for name, fn in in_vpc.our_functions().items():
        config = fn["VpcConfig"]
        assert [ref(g) or g for g in config["SecurityGroupIds"]] == [group, *extra], name
    subnets = _function_subnets(in_vpc)
    if in_vpc.name == "vpc-existing":  # the named ones, from the looked-up VPC (not CDK's placeholders)
        assert subnets == LOOKED_UP["vpc_subnet_ids"].split(",")
    else:
        made = in_vpc.resources("AWS::EC2::Subnet")
        assert len(subnets) == 2
        for subnet in subnets:
            assert made[ref(subnet)]["Properties"]["MapPublicIpOnLaunch"] is False
            assert "private" in made[ref(subnet)]["Properties"]["Tags"][0]["Value"]


@pytest.mark.parametrize("name", sorted(set(CONFIGURATIONS) - set(VPC_CONFIGURATIONS)))
def test_outside_a_vpc_no_function_is_in_one_and_no_network_is_made(name):
    s = cached(name)
    assert all("VpcConfig" not in fn for fn in s.our_functions().values())
    assert not [r for r in s.json["Resources"].values() if r["Type"].startswith("AWS::EC2::")]


def test_nothing_but_the_functions_group_may_open_a_connection_to_anything_of_the_stack(in_vpc):
    # The domain, the interface endpoints, the collection's endpoint: HTTPS from the functions only.
    rules = _ingress_rules(in_vpc)
    assert rules
    for rule in rules:
        assert ref(rule["SourceSecurityGroupId"]) == _function_group(in_vpc), rule
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443), rule
        assert "CidrIp" not in rule


def test_the_functions_may_leave_for_https_and_for_http_only_where_there_is_a_route_out(in_vpc):
    group = in_vpc.resources("AWS::EC2::SecurityGroup")[_function_group(in_vpc)]["Properties"]
    ports = sorted(rule["FromPort"] for rule in group["SecurityGroupEgress"])
    isolated = in_vpc.name == "vpc-created"  # no NAT: plain-HTTP image URLs could not be reached anyway
    assert ports == ([443] if isolated else [80, 443])
    assert all(rule["IpProtocol"] == "tcp" for rule in group["SecurityGroupEgress"])


@pytest.mark.parametrize("name", ["vpc-created", "vpc-nat"])
def test_the_domain_sits_in_private_subnets_one_per_az_behind_its_own_group(name):
    s = cached(name)
    (domain,) = s.resources("AWS::OpenSearchService::Domain").values()
    options = domain["Properties"]["VPCOptions"]
    zones = 2 if CONFIGURATIONS[name].get("instance_count", "2") != "1" else 1
    assert len(options["SubnetIds"]) == zones  # OpenSearch takes exactly one subnet per AZ it uses
    assert set(map(json.dumps, options["SubnetIds"])) <= set(map(json.dumps, _function_subnets(s)))
    (group,) = options["SecurityGroupIds"]
    admitted = [r for r in _ingress_rules(s) if ref(r["GroupId"]) == ref(group)]
    assert [(r["FromPort"], ref(r["SourceSecurityGroupId"])) for r in admitted] == [(443, _function_group(s))]


@pytest.mark.parametrize("name", ["vpc-created", "vpc-existing"])
def test_functions_without_a_route_out_reach_aws_through_endpoints(name):
    s = cached(name)
    endpoints = s.resources("AWS::EC2::VPCEndpoint").values()
    gateways = {_service(e) for e in endpoints if e["Properties"]["VpcEndpointType"] == "Gateway"}
    assert gateways == {"s3", "dynamodb"}
    interfaces = [e["Properties"] for e in endpoints if e["Properties"]["VpcEndpointType"] == "Interface"]
    assert {_service({"Properties": e}) for e in interfaces} == INTERFACE_SERVICES
    for endpoint in interfaces:
        assert endpoint["PrivateDnsEnabled"] is True  # the SDKs' usual host names resolve to it
        assert endpoint["SubnetIds"] == _function_subnets(s)
        (group,) = endpoint["SecurityGroupIds"]
        admitted = [r for r in _ingress_rules(s) if ref(r["GroupId"]) == ref(group)]
        assert [ref(r["SourceSecurityGroupId"]) for r in admitted] == [_function_group(s)]


def test_a_vpc_with_a_nat_gateway_and_no_endpoints_routes_the_functions_out_through_it():
    s = cached("vpc-nat")
    assert s.resources("AWS::EC2::VPCEndpoint") == {}
    (nat,) = s.resources("AWS::EC2::NatGateway")
    associations = s.resources("AWS::EC2::SubnetRouteTableAssociation").values()
    table_of = {ref(a["Properties"]["SubnetId"]): ref(a["Properties"]["RouteTableId"]) for a in associations}
    routes = [r["Properties"] for r in s.resources("AWS::EC2::Route").values()]
    for subnet in _function_subnets(s):
        (route,) = [r for r in routes if ref(r["RouteTableId"]) == table_of[ref(subnet)]]
        assert (route["DestinationCidrBlock"], ref(route["NatGatewayId"])) == ("0.0.0.0/0", nat)


def test_a_created_vpc_spans_two_azs_with_no_route_out_and_logs_every_flow():
    s = cached("vpc-created")
    assert len(s.resources("AWS::EC2::Subnet")) == 2
    assert s.resources("AWS::EC2::InternetGateway") == {}
    assert s.resources("AWS::EC2::NatGateway") == {}
    (flow_log,) = s.resources("AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    assert ref(flow_log["Properties"]["LogGroupName"]) in s.resources("AWS::Logs::LogGroup")


def test_a_collection_in_a_vpc_is_reachable_through_its_vpc_endpoint_only():
    s = cached("vpc-existing")
    ((endpoint_id, endpoint),) = s.resources("AWS::OpenSearchServerless::VpcEndpoint").items()
    assert endpoint["Properties"]["VpcId"] == LOOKED_UP["vpc_id"]
    assert endpoint["Properties"]["SubnetIds"] == _function_subnets(s)
    policies = s.resources("AWS::OpenSearchServerless::SecurityPolicy").values()
    (network,) = [p["Properties"]["Policy"] for p in policies if p["Properties"]["Type"] == "network"]
    text = "".join(p if isinstance(p, str) else json.dumps(p) for p in network["Fn::Join"][1])
    assert '"AllowFromPublic":false' in text
    assert f'"SourceVPCEs":["{json.dumps({"Fn::GetAtt": [endpoint_id, "Id"]})}"]' in text


def test_the_outputs_name_the_vpc_and_the_group_an_operators_host_needs(in_vpc):
    outputs = in_vpc.json["Outputs"]
    assert ref(outputs["FunctionSecurityGroup"]["Value"]) == _function_group(in_vpc)
    assert "VpcId" in outputs


# --- the network alone, against a recorded lookup ------------------------------------------------------


def _network(**context: str) -> Network:
    app = App(context=RECORDED_LOOKUPS["vpc-existing"])
    stack = Stack(app, "Probe", env=Environment(account=ACCOUNT, region=REGION))
    return Network(stack, "Network", config=Config(vpc_id=LOOKED_UP["vpc_id"], **context))


def test_without_named_subnets_the_functions_get_every_private_subnet_of_the_vpc():
    subnets = _network().subnets
    assert [s.subnet_id for s in subnets] == [
        "subnet-0aaa1111bbbb22223",
        "subnet-0ccc3333dddd44445",
        "subnet-0eee5555ffff66667",
    ]


def test_a_subnet_that_is_not_in_the_vpc_is_refused_by_name():
    with pytest.raises(NetworkError, match=r"\['subnet-0123456789abcdef0'\] are not subnets of vpc-0a1b"):
        _network(vpc_subnet_ids="subnet-0aaa1111bbbb22223,subnet-0123456789abcdef0")


def test_a_two_az_domain_needs_subnets_in_two_azs():
    network = _network(vpc_subnet_ids="subnet-0aaa1111bbbb22223")
    with pytest.raises(NetworkError, match=r"spreads over 2 availability zones.*subnets are in 1"):
        network.one_per_zone(2)
    assert [s.subnet_id for s in network.one_per_zone(1)] == ["subnet-0aaa1111bbbb22223"]


def test_the_first_synth_before_the_lookup_builds_on_cdks_placeholders_so_the_cli_can_look_up():
    # The CLI synthesizes once without the VPC, looks it up, caches it in cdk.context.json, then again.
    stack = Stack(App(), "Probe", env=Environment(account=ACCOUNT, region=REGION))
    network = Network(
        stack, "Network", config=Config(vpc_id=LOOKED_UP["vpc_id"], vpc_subnet_ids="subnet-1a2b3c4d")
    )
    assert network.vpc.select_subnets().is_pending_lookup
    assert network.subnets
