"""The whole system in one stack; the stack only composes the constructs. Each keeps the construct id
and scope its resources always had: a resource's logical id comes from its path, and a new one would
replace it (tests/infra/test_logical_ids.py pins the stateful ones)."""

from __future__ import annotations

from aws_cdk import Aspects, Stack, aws_kms
from constructs import Construct

from infra.api_credentials import ApiCredentials
from infra.authorizer import Authorizer
from infra.config import Config
from infra.function import ServiceFunction
from infra.image_bucket import ImageBucket
from infra.ingest_pipeline import IngestPipeline
from infra.layers import Layers
from infra.log_groups import LogGroupPolicy
from infra.monitoring import Monitoring
from infra.network import Network
from infra.outputs import add_outputs
from infra.published_towers import PublishedTowers
from infra.search_api import SearchApi
from infra.search_function import SearchFunction
from infra.vector_index import VectorIndex


class VisualSearchStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs):
        super().__init__(scope, construct_id, **kwargs)
        network = Network(self, "Network", config=config) if config.in_vpc else None
        # The team's one key (kms_key_arn) for everything that can take one; else AWS's keys.
        key = aws_kms.Key.from_key_arn(self, "Key", config.kms_key_arn) if config.kms_key_arn else None
        images = ImageBucket(self, "Images", config=config, key=key)
        layers = Layers(self, "Layers", config=config)
        index = VectorIndex(self, "VectorIndex", config=config, network=network, key=key)
        credentials = ApiCredentials(self, "Credentials", key=key)
        # "ImageTower": the id it had when it published the image tower alone (its resources keep theirs).
        towers = PublishedTowers(self, "ImageTower", layers=layers, bucket=images.bucket)
        search = SearchFunction(
            self, "Search", config=config, layers=layers, index=index, credentials=credentials,
            bucket=images.bucket, towers=towers, network=network, key=key,
        )  # fmt: skip
        authorizer: Authorizer | None = None
        if config.auth == "secret":  # else iam: API Gateway checks the SigV4 signature itself
            authorizer = Authorizer(
                self, "Authorizer", config=config, layers=layers, credentials=credentials,
                network=network, key=key,
            )  # fmt: skip
        api = SearchApi(
            self, "Api", config=config, search=search.function,
            authorizer=authorizer.function if authorizer else None,
        )  # fmt: skip
        ingest = IngestPipeline(
            self, "Ingest", config=config, bucket=images.bucket, layers=layers.of("ingest"),
            index_settings=index.settings, towers=towers if layers.fetches("ingest") else None,
            network=network, key=key,
        )  # fmt: skip
        index.grant(search.function, ingest.worker.function)
        search.hold_uploads_in(ingest.ledger)
        monitoring = Monitoring(
            self, "Monitoring", api=api.api, ingest=ingest.worker.function, queue=ingest.queue,
            dead_letter_alarm=ingest.dead_letter_alarm, domain=index.domain,
            alarm_email=config.alarm_email, key=key,
        )  # fmt: skip
        Aspects.of(self).add(LogGroupPolicy(config.removal, key))
        self.network, self.credentials = network, credentials
        self.images, self.index, self.api, self.ingest = images, index, api, ingest
        self.monitoring = monitoring
        self.functions: dict[str, ServiceFunction] = {"search": search, "ingest": ingest.worker}
        if authorizer is not None:
            self.functions["authorizer"] = authorizer
        add_outputs(self)
