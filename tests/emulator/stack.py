"""The stand-ins the emulator tier runs the functions against, as plain functions, for the tier's
fixtures and for `bench/cold_start.py --bytecode` alike: the layers and the synthesized template
(`lambda_build`), moto's server (`moto_server`), the stack's stateful resources on it and the functions'
index on the local OpenSearch node (`local_world`), and one function started under the emulator
(`start_function`)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from layers.build import published_folder
from tests.emulator import runtime, template
from tests.emulator.function import EmulatedFunction, free_port, merged_opt, unzipped_layers
from tests.emulator.index_proxy import IndexProxy
from tests.fixtures.layers import built_layers
from visual_search.embedding.manifest import Manifest

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "x"}


@dataclass(frozen=True)
class LambdaBuild:
    layers: Path  # as layers/build.py wrote them
    unzipped: Path  # each layer zipped as the deploy's asset is, then unzipped
    template: dict[str, Any]  # the synthesized stack


def lambda_build() -> LambdaBuild:
    layers = built_layers("x86_64")
    key = (layers / "inputs.sha256").read_text()[:16]
    unzipped = unzipped_layers(layers, set(template.LAYER_FOLDERS), template.CACHE / f"layers-{key}")
    return LambdaBuild(layers, unzipped, template.synthesized(layers))


@contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """moto's server, in a process of its own (in-process mocks elsewhere in a test run reset moto's
    state); yields its endpoint."""
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    aws(endpoint, "s3").list_buckets()
                    break
                except Exception:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.2)
            yield endpoint
        finally:
            server.terminate()
            server.wait(timeout=10)


def aws(endpoint: str, service: str) -> Any:
    """A client of moto's server."""
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


@dataclass
class World:
    """The stack's stateful resources, stood in for locally; names as the functions' environment has them."""

    endpoint: str
    bucket: str
    table: str
    secret_arn: str
    api_key: str
    api_secret: str
    alias: str  # the index the functions use on the shared node: the tier's own
    proxy: IndexProxy  # the guard in front of the node: the functions' index endpoint
    stand_ins: dict[str, str]

    def client(self, service: str) -> Any:
        return aws(self.endpoint, service)


@contextmanager
def local_world(build: LambdaBuild, moto_endpoint: str, node_url: str) -> Iterator[World]:
    """The bucket, ledger table and secret the template declares, on moto's server; the functions' own
    index on the node (deleted afterwards), behind the guard."""
    stack = build.template
    names = {"bucket": f"emulator-{uuid.uuid4().hex[:8]}", "table": f"emulator-ledger-{uuid.uuid4().hex[:8]}"}
    s3 = aws(moto_endpoint, "s3")
    s3.create_bucket(Bucket=names["bucket"])
    (table,) = template.resources_of(stack, "AWS::DynamoDB::Table").values()
    aws(moto_endpoint, "dynamodb").create_table(
        TableName=names["table"], BillingMode="PAY_PER_REQUEST",
        KeySchema=table["Properties"]["KeySchema"],
        AttributeDefinitions=table["Properties"]["AttributeDefinitions"],
    )  # fmt: skip
    (secret,) = template.resources_of(stack, "AWS::SecretsManager::Secret").values()
    generated = secret["Properties"]["GenerateSecretString"]  # what Secrets Manager makes of it
    value = json.loads(generated["SecretStringTemplate"])
    value[generated["GenerateStringKey"]] = secrets.token_hex(generated["PasswordLength"] // 2)
    arn = aws(moto_endpoint, "secretsmanager").create_secret(
        Name=f"emulator-credentials-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(value)
    )["ARN"]
    stand_ins = {}
    for kind, local in (
        ("AWS::S3::Bucket", names["bucket"]),
        ("AWS::DynamoDB::Table", names["table"]),
        ("AWS::SecretsManager::Secret", arn),
    ):
        stand_ins |= dict.fromkeys(template.resources_of(stack, kind), local)
    for domain in template.resources_of(stack, "AWS::OpenSearchService::Domain"):
        stand_ins[f"{domain}.DomainEndpoint"] = "index.invalid"  # the guard's URL, in `environment`
    _publish_towers(s3, stack, stand_ins, published_folder(build.layers))
    alias = f"emulator-{uuid.uuid4().hex[:8]}"
    client, physical = _make_index(node_url, alias, build.layers / "model-text" / "model")
    proxy = IndexProxy(node_url)
    try:
        yield World(
            moto_endpoint, names["bucket"], names["table"], arn, value["api_key"],
            value[generated["GenerateStringKey"]], alias, proxy, stand_ins,
        )  # fmt: skip
    finally:
        proxy.shutdown()
        client.indices.delete(index=physical, ignore=[404])
        client.close()


def _publish_towers(s3: Any, stack: dict, stand_ins: dict[str, str], published: Path) -> None:
    """Where the search function fetches the towers its layers lack (the image tower, on its first image
    query), as the stack's deployment of the published folder puts them (infra/published_towers.py)."""
    search = template.functions(stack)["search"]
    url = template.environment(search, stack, stand_ins)["VS_MODEL_REMOTE_URL"]
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    for file in sorted(published.iterdir()):
        s3.upload_file(str(file), bucket, prefix + file.name)


def _make_index(node_url: str, alias: str, model_dir: Path) -> tuple[Any, str]:
    """The functions' index, made as their adapter would, but on Lucene: the engine the local node can
    run (a faiss index would kill it; the guard refuses one). Returns (client, physical index name)."""
    from visual_search.index.opensearch import OpenSearchIndex, connect
    from visual_search.index.opensearch_mapping import IndexOptions

    manifest = Manifest.load(model_dir)
    client = connect(node_url, auth="none")
    index = OpenSearchIndex(client, alias, manifest.embedding_dim, manifest.model_id,
                            options=IndexOptions(engine="lucene", replicas=0))  # fmt: skip
    return client, index.physical_name


def environment(
    world: World, deployed: template.Deployed, stack: dict, index: IndexProxy, opt: Path
) -> dict[str, str]:
    """The function's environment from the template, its references resolved to the stand-ins; the index
    endpoint is the guard's and the model folder under the function's /opt."""
    env = template.environment(deployed, stack, world.stand_ins)
    if "VS_OPENSEARCH_ENDPOINT" in env:
        # The domain speaks HTTPS on its endpoint; the local node plain HTTP on loopback, behind the guard.
        env["VS_OPENSEARCH_ENDPOINT"] = index.url
        env["VS_OPENSEARCH_INDEX"] = world.alias  # the shared node's other indices are not ours
    if env.get("VS_MODEL_DIR", "").startswith("/opt/"):
        env["VS_MODEL_DIR"] = str(opt) + env["VS_MODEL_DIR"][len("/opt") :]
    return {**env, **CREDENTIALS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": world.endpoint}  # fmt: skip


def start_function(
    name: str,
    build: LambdaBuild,
    world: World,
    folder: Path,
    index: IndexProxy | None = None,
    without: tuple[str, ...] = (),
) -> EmulatedFunction:
    """Function `name` under the emulator, its /opt and log in `folder`; `index`: another guard than the
    world's; `without`: layers the template gives it that it runs without (a comparison)."""
    deployed = template.functions(build.template)[name]
    opt = merged_opt(build.unzipped, tuple(x for x in deployed.layers if x not in without), folder / "opt")
    env = environment(world, deployed, build.template, index or world.proxy, opt)
    return EmulatedFunction(
        deployed, opt, runtime.runtime_python(), runtime.sdk_folder(), env, folder / "emulator.log"
    ).start()
