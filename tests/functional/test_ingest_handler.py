"""The ingest Lambda handler is a thin adapter: settings from the environment, the shared core, a partial
batch response, and CloudWatch metrics (EMF) for what happened and how long each stage took."""

from __future__ import annotations

import json

from tests.fixtures import images
from tests.fixtures.ingest_world import BUCKET, sqs_record
from tests.fixtures.lambdas import LambdaContext, loaded_handler


def emf_metrics(output: str) -> dict[str, float]:
    """Metric values from the EMF lines Powertools printed."""
    values: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and "_aws" in line:
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = blob[definition["Name"]]
                values[definition["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_the_handler_indexes_a_batch_and_publishes_counts_and_stage_latency(world, monkeypatch, capsys):
    monkeypatch.setenv("VS_MODEL_DIR", str(world.model_dir))
    monkeypatch.setenv("VS_DATA_DIR", str(world.data_dir / "lambda"))
    monkeypatch.setenv("VS_STORE_BACKEND", "s3")
    monkeypatch.setenv("VS_BUCKET", BUCKET)
    world.put("a/good.jpg", images.jpeg(seed=1))
    world.put("a/bad.jpg", images.text_file())
    messages = world.sqs.receive_message(QueueUrl=world.queue_url, MaxNumberOfMessages=10)["Messages"]
    with loaded_handler("ingest") as module:
        response = module.handler({"Records": [sqs_record(m) for m in messages]}, LambdaContext())

    assert response == {"batchItemFailures": []}
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["ImagesIndexed"] == 1
    assert metrics["ImagesRefused"] == 1
    assert {"StageFetchMs", "StageDecodeMs", "StageEmbedMs", "StageWriteMs"} <= set(metrics)
    assert all(metrics[f"Stage{s}Ms"] >= 0 for s in ("Fetch", "Decode", "Embed", "Write"))
    module._services.close()
