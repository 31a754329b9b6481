"""The engine that scales: a managed OpenSearch domain with k-NN, an OpenSearch Serverless VECTORSEARCH
collection, or an existing endpoint — chosen by context. The k-NN index and its alias are created by the
adapter on first use from the model manifest (see `visual_search.index.opensearch`), so no custom
resource has to reach into the cluster at deploy time."""

from __future__ import annotations

import json

from aws_cdk import Stack, aws_ec2, aws_iam, aws_kms, aws_opensearchserverless, aws_opensearchservice
from constructs import Construct

from infra.config import Config
from infra.network import Network

DATA_ACTIONS = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]


class VectorIndex(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        network: Network | None = None,
        key: aws_kms.IKey | None = None,
    ):
        super().__init__(scope, construct_id)
        self.config = config
        self.network = network
        self.key = key
        self.domain: aws_opensearchservice.Domain | None = None
        self.collection: aws_opensearchserverless.CfnCollection | None = None
        self.mode = "serverless" if config.index_engine == "serverless" else "managed"
        # A collection made without a NextGen collection group is Classic; an existing one is as told.
        self.generation = "classic" if config.index_engine == "serverless" else config.serverless_generation
        if config.index_engine == "managed":
            self.domain = self._domain(config)
            self.endpoint = f"https://{self.domain.domain_endpoint}"
        elif config.index_engine == "serverless":
            self.collection = self._collection(config)
            self.endpoint = self.collection.attr_collection_endpoint
        else:
            if ":aoss:" in config.existing_arn:
                self.mode = "serverless"  # its data access policy must list the roles (output IndexRoleArns)
            self.endpoint = config.existing_endpoint
        # What a function needs to reach the index: its part of the functions' settings.
        self.settings = {
            "index_backend": "opensearch",
            "opensearch_endpoint": self.endpoint,
            "opensearch_mode": self.mode,
            **({"opensearch_generation": self.generation} if self.mode == "serverless" else {}),
            "opensearch_auth": "sigv4",
            "opensearch_index": config.name,
            # An existing cluster signs for the region of its ARN; the stack's own, for the function's.
            **({"opensearch_region": config.existing_region} if config.existing_region else {}),
        }

    def _domain(self, config: Config) -> aws_opensearchservice.Domain:
        multi_az = config.instance_count > 1
        network = self.network  # in a VPC: private subnets, one per AZ; HTTPS from the functions only
        subnets = network.one_per_zone(2 if multi_az else 1) if network else None
        access = (
            network.admitting_functions(self, "DomainAccess", "The OpenSearch domain") if network else None
        )
        return aws_opensearchservice.Domain(
            self,
            "Domain",
            version=aws_opensearchservice.EngineVersion.OPENSEARCH_2_19,
            capacity=aws_opensearchservice.CapacityConfig(
                data_nodes=config.instance_count,
                data_node_instance_type=config.instance_type,
                multi_az_with_standby_enabled=False,
            ),
            ebs=aws_opensearchservice.EbsOptions(
                volume_size=config.volume_gb, volume_type=aws_ec2.EbsDeviceVolumeType.GP3
            ),
            zone_awareness=aws_opensearchservice.ZoneAwarenessConfig(
                enabled=multi_az, availability_zone_count=2
            )
            if multi_az
            else None,
            # A domain's key is chosen once: changing kms_key_arn later replaces the domain.
            encryption_at_rest=aws_opensearchservice.EncryptionAtRestOptions(enabled=True, kms_key=self.key),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=aws_opensearchservice.TLSSecurityPolicy.TLS_1_2,
            logging=aws_opensearchservice.LoggingOptions(
                app_log_enabled=True, slow_search_log_enabled=True, slow_index_log_enabled=True
            ),
            removal_policy=config.removal,
            vpc=network.vpc if network else None,
            vpc_subnets=[aws_ec2.SubnetSelection(subnets=subnets)] if subnets else None,
            security_groups=[access] if access else None,
        )

    def _collection(self, config: Config) -> aws_opensearchserverless.CfnCollection:
        name = config.name  # Config keeps it within the 32-character policy-name limit
        rules = [{"ResourceType": "collection", "Resource": [f"collection/{name}"]}]
        encryption = aws_opensearchserverless.CfnSecurityPolicy(
            self, "Encryption", name=f"{name}-enc", type="encryption",
            policy=json.dumps({"Rules": rules, **self._collection_key(config)}),
        )  # fmt: skip
        # Every request must be SigV4-signed by a principal of the data access policy below; in a VPC the
        # collection is reachable through its VPC endpoint only, else over the internet (TLS).
        network = aws_opensearchserverless.CfnSecurityPolicy(
            self, "Network", name=f"{name}-net", type="network", policy=self._network_policy(name, rules),
        )  # fmt: skip
        collection = aws_opensearchserverless.CfnCollection(
            self,
            "Collection",
            name=name,
            type="VECTORSEARCH",
            standby_replicas="ENABLED" if config.serverless_standby else "DISABLED",
        )
        collection.add_resource_dependency(encryption)
        collection.add_resource_dependency(network)
        # Like the domain, the bucket and the ledger: `retain` keeps the vectors through a `cdk destroy`.
        for resource in (encryption, network, collection):
            resource.apply_removal_policy(config.removal)
        self._collection_name = name
        return collection

    @staticmethod
    def _collection_key(config: Config) -> dict:
        return (
            {"AWSOwnedKey": False, "KmsARN": config.kms_key_arn}
            if config.kms_key_arn
            else {"AWSOwnedKey": True}
        )

    def _network_policy(self, name: str, rules: list[dict]) -> str:
        if self.network is None:
            return json.dumps([{"Rules": rules, "AllowFromPublic": True}])
        endpoint = aws_opensearchserverless.CfnVpcEndpoint(
            self,
            "VpcEndpoint",
            name=f"{name}-vpce",  # Config keeps `name` within its 32 characters
            vpc_id=self.network.vpc.vpc_id,
            subnet_ids=[subnet.subnet_id for subnet in self.network.per_zone()],
            security_group_ids=[
                self.network.admitting_functions(
                    self, "VpcEndpointAccess", "The OpenSearch Serverless endpoint"
                ).security_group_id
            ],
        )
        policy = [{"Rules": rules, "AllowFromPublic": False, "SourceVPCEs": [endpoint.attr_id]}]
        return Stack.of(self).to_json_string(policy)

    def grant(self, *functions: aws_iam.IGrantable) -> None:
        """Read and write for these functions only: IAM on their roles, and the engine's own policy
        (domain access policy / Serverless data access policy) naming exactly their roles, plus the
        operators' roles of `admin_role_arns` (their IAM permissions are theirs to grant)."""
        roles = [f.grant_principal for f in functions]
        admins = self.config.admin_roles
        if self.domain is not None:
            for function in functions:
                self.domain.grant_read_write(function)
            principals = [*roles, *(aws_iam.ArnPrincipal(arn) for arn in admins)]
            self.domain.add_access_policies(
                aws_iam.PolicyStatement(
                    principals=principals, actions=DATA_ACTIONS, resources=[f"{self.domain.domain_arn}/*"]
                )
            )
            return
        if self.collection is not None:
            actions, resources = ["aoss:APIAccessAll"], [self.collection.attr_arn]
            name = self._collection_name
            policy = [
                {
                    "Rules": [
                        {
                            "ResourceType": "index",
                            "Resource": [f"index/{name}/*"],
                            "Permission": [
                                "aoss:CreateIndex", "aoss:DescribeIndex", "aoss:UpdateIndex",
                                "aoss:ReadDocument", "aoss:WriteDocument",
                            ],
                        },
                        {"ResourceType": "collection", "Resource": [f"collection/{name}"],
                         "Permission": ["aoss:DescribeCollectionItems"]},
                    ],
                    "Principal": [*(role.role_arn for role in roles), *admins],  # type: ignore[attr-defined]
                }
            ]  # fmt: skip
            aws_opensearchserverless.CfnAccessPolicy(
                self,
                "DataAccess",
                name=f"{name}-data",
                type="data",
                policy=Stack.of(self).to_json_string(policy),
            ).apply_removal_policy(self.config.removal)
        elif self.mode == "serverless":  # an existing collection: its owner's data policy admits the roles
            actions, resources = ["aoss:APIAccessAll"], [self.config.existing_arn]
        else:
            actions, resources = DATA_ACTIONS, [f"{self.config.existing_arn}/*"]
        for function in functions:
            function.grant_principal.add_to_principal_policy(
                aws_iam.PolicyStatement(actions=actions, resources=resources)
            )
