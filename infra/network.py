"""The private network the functions and the index run in, when a VPC is asked for: an existing one
(`vpc_id`, looked up at synth) or one made here over two AZs (`create_vpc`). It provides the functions'
subnets and security group, one subnet per AZ for the index, security groups that admit HTTPS from the
functions only, and the endpoints that let functions without a route out reach AWS.

Endpoints, and who needs them: S3 and DynamoDB (gateway, free) for the images, the model's image tower and
the ledger; Secrets Manager for the API credentials; X-Ray for the functions' active traces; SQS, STS and
CloudWatch Logs and Monitoring for the operators' tools run inside the VPC (`visual-search redrive`, a
backfill assuming its role, the AWS CLI), since the index is reachable from nowhere else. Lambda itself
delivers the functions' logs and metrics (EMF) and polls the ingest queue, outside the VPC."""

from __future__ import annotations

from aws_cdk import aws_ec2, aws_logs
from constructs import Construct

from infra.config import Config, ConfigError

HTTPS = aws_ec2.Port.tcp(443)
GATEWAY_ENDPOINTS = {
    "S3": aws_ec2.GatewayVpcEndpointAwsService.S3,
    "DynamoDB": aws_ec2.GatewayVpcEndpointAwsService.DYNAMODB,
}
INTERFACE_ENDPOINTS = {
    "SecretsManager": aws_ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "XRay": aws_ec2.InterfaceVpcEndpointAwsService.XRAY,
    "Sqs": aws_ec2.InterfaceVpcEndpointAwsService.SQS,
    "Sts": aws_ec2.InterfaceVpcEndpointAwsService.STS,
    "Logs": aws_ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": aws_ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
}


class NetworkError(ConfigError):
    """The VPC cannot hold what the configuration asks of it (refused at synth, like a bad value)."""


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config):
        super().__init__(scope, construct_id)
        self.vpc: aws_ec2.IVpc = (
            self._created(config)
            if config.create_vpc
            else aws_ec2.Vpc.from_lookup(self, "Vpc", vpc_id=config.vpc_id)
        )
        self.subnets = self._function_subnets(config.subnet_ids)
        # A route out (NAT, or whatever an existing VPC has): image URLs may be plain HTTP too.
        self.has_egress = config.vpc_nat_gateways > 0 or not config.create_vpc
        self.function_group = aws_ec2.SecurityGroup(
            self,
            "Functions",
            vpc=self.vpc,
            description="Visual Search functions: out to HTTPS (AWS, the index, image URLs) only",
            allow_all_outbound=False,
        )
        self.function_group.add_egress_rule(
            aws_ec2.Peer.any_ipv4(), HTTPS, "AWS APIs (endpoints or NAT), the index, image URLs"
        )
        if self.has_egress:
            self.function_group.add_egress_rule(
                aws_ec2.Peer.any_ipv4(), aws_ec2.Port.tcp(80), "Plain-HTTP image URLs (search, upload)"
            )
        self.function_groups: list[aws_ec2.ISecurityGroup] = [self.function_group] + [
            aws_ec2.SecurityGroup.from_security_group_id(self, f"Given{i}", group_id, mutable=False)
            for i, group_id in enumerate(config.security_group_ids)
        ]
        if config.vpc_endpoints:
            self._endpoints()

    @property
    def function_selection(self) -> aws_ec2.SubnetSelection:
        return aws_ec2.SubnetSelection(subnets=self.subnets)

    def per_zone(self) -> list[aws_ec2.ISubnet]:
        """One of the functions' subnets in each of their AZs."""
        chosen: dict[str, aws_ec2.ISubnet] = {}
        for subnet in self.subnets:
            chosen.setdefault(subnet.availability_zone, subnet)
        return list(chosen.values())

    def one_per_zone(self, count: int) -> list[aws_ec2.ISubnet]:
        """`count` of the functions' subnets in as many AZs: a domain takes exactly one per AZ it uses."""
        chosen = self.per_zone()
        if len(chosen) < count:
            raise NetworkError(
                f"the index spreads over {count} availability zones, and the functions' subnets are in "
                f"{len(chosen)}: name subnets in {count} AZs in vpc_subnet_ids (or -c instance_count=1)"
            )
        return chosen[:count]

    def admitting_functions(self, scope: Construct, construct_id: str, what: str) -> aws_ec2.SecurityGroup:
        """A security group for `what` that lets in HTTPS from the functions' group, and nothing else."""
        group = aws_ec2.SecurityGroup(
            scope,
            construct_id,
            vpc=self.vpc,
            description=f"{what}: HTTPS from the Visual Search functions only",
            allow_all_outbound=False,
        )
        group.add_ingress_rule(self.function_group, HTTPS, "HTTPS from the Visual Search functions")
        return group

    def _created(self, config: Config) -> aws_ec2.Vpc:
        private = (
            aws_ec2.SubnetType.PRIVATE_WITH_EGRESS
            if config.vpc_nat_gateways
            else aws_ec2.SubnetType.PRIVATE_ISOLATED
        )
        subnets = [aws_ec2.SubnetConfiguration(name="private", subnet_type=private, cidr_mask=20)]
        if config.vpc_nat_gateways:  # the NAT gateways' own subnets; nothing of ours runs in them
            subnets.append(
                aws_ec2.SubnetConfiguration(
                    name="public", subnet_type=aws_ec2.SubnetType.PUBLIC, cidr_mask=24
                )
            )
        vpc = aws_ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=config.vpc_nat_gateways,
            subnet_configuration=subnets,
        )
        # Every flow, accepted or rejected, for the security review a VPC is made for.
        flow_logs = aws_logs.LogGroup(self, "FlowLogs", removal_policy=config.removal)
        vpc.add_flow_log(
            "FlowLog",
            destination=aws_ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=aws_ec2.FlowLogTrafficType.ALL,
        )
        return vpc

    def _function_subnets(self, ids: list[str]) -> list[aws_ec2.ISubnet]:
        default = self.vpc.select_subnets()
        if default.is_pending_lookup:
            # The first synth, before the CLI has looked the VPC up: CDK's placeholder subnets; the CLI
            # then caches the VPC in cdk.context.json and synthesizes again.
            return default.subnets
        if ids:
            known = {s.subnet_id: s for s in self._all_subnets()}
            missing = [subnet_id for subnet_id in ids if subnet_id not in known]
            if missing:
                raise NetworkError(
                    f"vpc_subnet_ids {missing} are not subnets of {self.vpc.vpc_id} (a stale lookup? "
                    "`cdk context --reset` the VPC's key and synthesize again)"
                )
            return [known[subnet_id] for subnet_id in ids]
        private = self.vpc.private_subnets or self.vpc.isolated_subnets
        if not private:
            raise NetworkError(f"{self.vpc.vpc_id} has no private subnets: name some in vpc_subnet_ids")
        return list(private)

    def _all_subnets(self) -> list[aws_ec2.ISubnet]:
        return [*self.vpc.private_subnets, *self.vpc.isolated_subnets, *self.vpc.public_subnets]

    def _endpoints(self) -> None:
        for name, gateway in GATEWAY_ENDPOINTS.items():
            self.vpc.add_gateway_endpoint(name, service=gateway, subnets=[self.function_selection])
        group = self.admitting_functions(self, "Endpoints", "AWS interface endpoints")
        for name, service in INTERFACE_ENDPOINTS.items():
            aws_ec2.InterfaceVpcEndpoint(
                self,
                name,
                vpc=self.vpc,
                service=service,
                subnets=self.function_selection,
                security_groups=[group],
                open=False,  # the group above admits the functions, not the whole VPC's CIDR
                private_dns_enabled=True,
            )
