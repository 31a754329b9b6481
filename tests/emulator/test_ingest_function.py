"""The ingest function, run as Lambda runs it, on the recorded S3 -> SQS event: a batch with one corrupt
image refuses that image alone (a ledger entry, and not among the batch's failures, so SQS never
delivers it again) and indexes its neighbours."""

from __future__ import annotations

import json
import urllib.request

from tests.emulator.calls import object_created_batch
from tests.fixtures import images


def indexed_keys(world) -> set[str]:
    """The keys of the documents in the functions' index, read from the node itself."""
    request = urllib.request.Request(
        f"{world.proxy.url}/{world.alias}/_search",
        data=json.dumps({"size": 100, "_source": ["document.public_id"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        hits = json.load(response)["hits"]["hits"]
    return {hit["_source"]["document"]["public_id"] for hit in hits}


def ledger(world) -> dict[str, dict[str, str]]:
    """The ledger's asset entries by key (each key's mark, `<scope>#key#<key>`, is an item of its own)."""
    items = world.client("dynamodb").scan(TableName=world.table)["Items"]
    entries = [i for i in items if "#key#" not in i["pk"]["S"]]
    return {i["key"]["S"]: {k: v.get("S", "") for k, v in i.items()} for i in entries}


def test_a_batch_with_one_corrupt_image_refuses_it_alone_and_indexes_its_neighbours(emulated, world):
    s3 = world.client("s3")
    keys = ["batch/first.jpg", "batch/corrupt.jpg", "batch/third.jpg"]
    s3.put_object(Bucket=world.bucket, Key=keys[0], Body=images.jpeg(120, 90, seed=1))
    s3.put_object(Bucket=world.bucket, Key=keys[1], Body=images.jpeg(120, 90, seed=2)[:200])  # truncated
    s3.put_object(Bucket=world.bucket, Key=keys[2], Body=images.jpeg(120, 90, seed=3))

    called = emulated["ingest"].invoke(object_created_batch(world.bucket, keys))

    assert called.status == 200
    assert called.payload == {"batchItemFailures": []}  # nothing goes back to the queue
    entries = ledger(world)
    assert entries[keys[1]]["state"] == "refused"
    assert entries[keys[1]]["reason"] == "corrupt"
    assert {entries[k]["state"] for k in (keys[0], keys[2])} == {"indexed"}
    assert {"batch/first", "batch/third"} <= indexed_keys(world)
    assert "batch/corrupt" not in indexed_keys(world)
