"""The whole system in one stack; the stack only composes the constructs."""

from __future__ import annotations

from aws_cdk import Aspects, CfnOutput, Fn, Stack, aws_s3_deployment, aws_secretsmanager
from constructs import Construct

from infra.config import Config
from infra.function import ServiceFunction
from infra.image_bucket import ImageBucket
from infra.ingest_pipeline import IngestPipeline
from infra.layers import Layers
from infra.log_retention import LogRetention
from infra.monitoring import Monitoring
from infra.search_api import SearchApi
from infra.vector_index import VectorIndex
from visual_search.settings import ServiceSettings

MODEL_PREFIX = "_vs/models/current/"  # reserved prefix: ingest ignores it


class VisualSearchStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        images = ImageBucket(self, "Images", config=config)
        layers = Layers(self, "Layers", config=config)
        index = VectorIndex(self, "VectorIndex", config=config)
        index_settings = {
            "index_backend": "opensearch",
            "opensearch_endpoint": index.endpoint,
            "opensearch_mode": index.mode,
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
        )
        # The image tower is too large to sit beside the text tower in the search function's layers:
        # it is published here and fetched (checksum-verified) on the first image query.
        aws_s3_deployment.BucketDeployment(
            self,
            "ImageTower",
            sources=[aws_s3_deployment.Source.asset(str(layers.image_tower_dir))],
            destination_bucket=images.bucket,
            destination_key_prefix=MODEL_PREFIX,
            prune=False,
            retain_on_delete=False,
            memory_limit=1024,  # the deployment function unzips the ~90 MB tower: the 128 MB default is short
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
                "model_dir": "/opt/model",
                "model_remote_url": f"s3://{images.bucket.bucket_name}/{MODEL_PREFIX}",
            },
            layers=[layers.deps, layers.model_text],
            memory_mb=config.search_memory_mb,
            timeout_s=28,  # below API Gateway's 29 s, so the client always gets our error shape
            grants=[
                credentials.grant_read,
                images.bucket.grant_read,
                lambda f: images.bucket.grant_put(f, "*"),  # Cloudinary upload API stores the file
                lambda f: images.bucket.grant_delete(f, "*"),
            ],
        )
        authorizer, authorizer_function = None, None
        if config.auth == "secret":
            authorizer_function = ServiceFunction(
                self,
                "Authorizer",
                config=config,
                handler="authorizer",
                settings_model=ServiceSettings,
                settings={"credentials_secret_arn": credentials.secret_arn},
                layers=[layers.deps],
                memory_mb=256,
                timeout_s=5,
                grants=[credentials.grant_read],
            )
            authorizer = authorizer_function.function
        api = SearchApi(self, "Api", config=config, search=search.function, authorizer=authorizer)
        ingest = IngestPipeline(
            self, "Ingest", config=config, bucket=images.bucket, layers=[layers.deps, layers.model_image],
            index_settings=index_settings,
        )  # fmt: skip
        index.grant(search.function, ingest.worker.function)
        monitoring = Monitoring(
            self,
            "Monitoring",
            api=api.api,
            ingest=ingest.worker.function,
            queue=ingest.queue,
            dead_letter_alarm=ingest.dead_letter_alarm,
            domain=index.domain,
            alarm_email=config.alarm_email,
        )
        CfnOutput(
            self, "ApiUrl", value=api.api.url, description="Cloudinary SDK upload_prefix / page at <url>ui/"
        )
        CfnOutput(self, "BucketName", value=images.bucket.bucket_name, description="drop images here")
        CfnOutput(self, "IndexEndpoint", value=index.endpoint)
        CfnOutput(
            self,
            "IndexRoleArns",
            value=Fn.join(",", [search.function.role.role_arn, ingest.worker.function.role.role_arn]),
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
        Aspects.of(self).add(LogRetention(config.removal))
        self.images, self.index, self.api, self.ingest = images, index, api, ingest
        self.monitoring = monitoring
        self.functions = {"search": search, "ingest": ingest.worker}
        if authorizer is not None:
            self.functions["authorizer"] = authorizer_function
