"""The whole system in one stack; the stack only composes the constructs."""

from __future__ import annotations

import re

from aws_cdk import (
    Aspects,
    Aws,
    CfnOutput,
    Fn,
    Stack,
    aws_iam,
    aws_kms,
    aws_lambda,
    aws_s3_deployment,
    aws_secretsmanager,
)
from constructs import Construct

from infra.config import Config
from infra.function import ServiceFunction, environment_for
from infra.image_bucket import ImageBucket
from infra.ingest_pipeline import IngestPipeline
from infra.layers import Layers
from infra.log_groups import LogGroupPolicy
from infra.monitoring import Monitoring
from infra.network import Network
from infra.search_api import SearchApi
from infra.vector_index import VectorIndex
from visual_search.settings import ServiceSettings

MODELS_PREFIX = "_vs/models/"  # reserved prefix: ingest ignores it


def model_prefix(model_id: str) -> str:
    """Where the image tower of one model is published: a model change adds a prefix, never rewrites
    the files a running function is verifying against its manifest."""
    return MODELS_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "-", model_id) + "/"


class VisualSearchStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        network = Network(self, "Network", config=config) if config.in_vpc else None
        # The team's one key (kms_key_arn) for everything that can take one; else AWS's keys.
        key = aws_kms.Key.from_key_arn(self, "Key", config.kms_key_arn) if config.kms_key_arn else None
        images = ImageBucket(self, "Images", config=config, key=key)
        layers = Layers(self, "Layers", config=config)
        index = VectorIndex(self, "VectorIndex", config=config, network=network, key=key)
        index_settings = {
            "index_backend": "opensearch",
            "opensearch_endpoint": index.endpoint,
            "opensearch_mode": index.mode,
            **({"opensearch_generation": index.generation} if index.mode == "serverless" else {}),
            "opensearch_auth": "sigv4",
            "opensearch_index": config.name,
            # An existing cluster signs for the region of its ARN; the stack's own, for the function's.
            **({"opensearch_region": config.existing_region} if config.existing_region else {}),
        }
        credentials = aws_secretsmanager.Secret(
            self,
            "Credentials",
            description="Visual Search API credentials (Cloudinary-style api_key / api_secret)",
            generate_secret_string=aws_secretsmanager.SecretStringGenerator(
                secret_string_template='{"api_key": "visual-search"}',
                generate_string_key="api_secret",
                exclude_punctuation=True,
                password_length=40,
            ),
            encryption_key=key,
        )
        # The image tower is too large to sit beside the text tower in the search function's layers:
        # it is published here and fetched (checksum-verified) on the first image query.
        tower_prefix = model_prefix(layers.built["model_id"])
        tower = aws_s3_deployment.BucketDeployment(
            self,
            "ImageTower",
            sources=[aws_s3_deployment.Source.asset(str(layers.image_tower_dir))],
            destination_bucket=images.bucket,
            destination_key_prefix=tower_prefix,
            prune=False,
            # Kept when the prefix changes: functions still on the previous model keep fetching theirs.
            retain_on_delete=True,
            memory_limit=1024,  # the deployment function unzips the ~90 MB tower: the 128 MB default is short
        )
        # CDK grants the deployment the whole bucket; objects outside the tower's prefix (the users'
        # images) stay out of its reach. Reading its source asset (the cdk-* bootstrap bucket) remains.
        tower.handler_role.add_to_principal_policy(
            aws_iam.PolicyStatement(
                effect=aws_iam.Effect.DENY,
                actions=["s3:GetObject*", "s3:PutObject*", "s3:DeleteObject*", "s3:Abort*"],
                not_resources=[
                    images.bucket.arn_for_objects(f"{tower_prefix}*"),
                    f"arn:{Aws.PARTITION}:s3:::cdk-*/*",
                ],
            )
        )
        search = ServiceFunction(
            self,
            "Search",
            config=config,
            handler="search",
            settings_model=ServiceSettings,
            settings={
                **index_settings,
                "store_backend": "s3",
                "bucket": images.bucket.bucket_name,
                "credentials_secret_arn": credentials.secret_arn,
                "cloud_name": config.cloud_name,
                # iam: API Gateway verified the SigV4 signature; the function trusts the identity it passes.
                "api_auth": "iam" if config.auth == "iam" else "basic",
                "model_dir": "/opt/model",
                "model_remote_url": f"s3://{images.bucket.bucket_name}/{tower_prefix}",
            },
            layers=[*layers.compiled_deps, layers.model_text],
            memory_mb=config.search_memory_mb,
            timeout_s=28,  # below API Gateway's 29 s, so the client always gets our error shape
            network=network,
            key=key,
            grants=[
                credentials.grant_read,
                images.bucket.grant_read,
                lambda f: images.bucket.grant_put(f, "*"),  # Cloudinary upload API stores the file
                lambda f: images.bucket.grant_delete(f, "*"),
            ],
        )
        search.function.node.add_dependency(tower)  # a new model's tower is in place before its functions
        authorizer: aws_lambda.IFunction | None = None
        authorizer_function: ServiceFunction | None = None
        if config.auth == "secret":
            authorizer_function = ServiceFunction(
                self,
                "Authorizer",
                config=config,
                handler="authorizer",
                settings_model=ServiceSettings,
                settings={"credentials_secret_arn": credentials.secret_arn, "cloud_name": config.cloud_name},
                layers=layers.compiled_deps,
                memory_mb=256,
                timeout_s=5,
                network=network,
                key=key,
                grants=[credentials.grant_read],
            )
            authorizer = authorizer_function.function
        api = SearchApi(self, "Api", config=config, search=search.function, authorizer=authorizer)
        ingest = IngestPipeline(
            self, "Ingest", config=config, bucket=images.bucket, layers=[layers.deps, layers.model_image],
            index_settings=index_settings, network=network, key=key,
        )  # fmt: skip
        index.grant(search.function, ingest.worker.function)
        # Uploads to one public_id take turns through a hold in the ledger the ingest worker shares, so
        # every instance of the search function sees it: a conditional put and a delete, nothing else.
        for name, value in environment_for(
            ServiceSettings, {"ledger_table": ingest.ledger.table_name}
        ).items():
            search.function.add_environment(name, value)
        ingest.ledger.grant(search.function, "dynamodb:PutItem", "dynamodb:DeleteItem")
        monitoring = Monitoring(
            self,
            "Monitoring",
            api=api.api,
            ingest=ingest.worker.function,
            queue=ingest.queue,
            dead_letter_alarm=ingest.dead_letter_alarm,
            domain=index.domain,
            alarm_email=config.alarm_email,
            key=key,
        )
        CfnOutput(
            self, "ApiUrl", value=api.api.url, description="Cloudinary SDK upload_prefix / page at <url>ui/"
        )
        CfnOutput(self, "BucketName", value=images.bucket.bucket_name, description="drop images here")
        CfnOutput(self, "IndexEndpoint", value=index.endpoint)
        CfnOutput(
            self,
            "IndexRoleArns",
            value=Fn.join(",", [search.role.role_arn, ingest.worker.role.role_arn]),
            description="roles an existing cluster's access policy (or collection data policy) must admit",
        )
        CfnOutput(
            self,
            "AlarmTopic",
            value=monitoring.topic.topic_arn,
            description="every alarm notifies this topic: aws sns subscribe --topic-arn <arn> ...",
        )
        CfnOutput(self, "DeadLetterQueueUrl", value=ingest.dead_letters.queue_url)
        CfnOutput(self, "IngestQueueUrl", value=ingest.queue.queue_url)
        CfnOutput(self, "LedgerTable", value=ingest.ledger.table_name, description="for backfills")
        CfnOutput(
            self,
            "GetApiSecret",
            value=f"aws secretsmanager get-secret-value --secret-id {credentials.secret_arn} "
            "--query SecretString --output text",
        )
        if network is not None:
            CfnOutput(self, "VpcId", value=network.vpc.vpc_id)
            CfnOutput(
                self,
                "FunctionSecurityGroup",
                value=network.function_group.security_group_id,
                description="the group the index admits: give it to an operator's host (backfill), or "
                "admit it in an existing index's own group",
            )
        Aspects.of(self).add(LogGroupPolicy(config.removal, key))
        self.network = network
        self.images, self.index, self.api, self.ingest = images, index, api, ingest
        self.monitoring = monitoring
        self.functions: dict[str, ServiceFunction] = {"search": search, "ingest": ingest.worker}
        if authorizer_function is not None:
            self.functions["authorizer"] = authorizer_function
