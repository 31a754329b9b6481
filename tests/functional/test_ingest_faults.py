"""None lost: 1,000 uploads through S3 -> SQS (with a dead-letter queue) -> the ingest handler, with bad
images mixed in, an index adapter that throttles, times out, answers slowly, half-applies batches and
always fails for a few assets, and a store whose reads throttle and time out. Every object must end
indexed, refused with a reason, or parked in the DLQ — counted, not sampled — and a redrive with
healthy dependencies must leave an index equal to the bucket, without duplicates."""

from __future__ import annotations

from tests.fixtures import images
from tests.fixtures.faults import FaultPlan, faulty
from tests.fixtures.ingest_world import IngestWorld
from visual_search.assets import asset_id_for
from visual_search.ingest_events import parse_message_body
from visual_search.redrive import redrive

OBJECTS = 1000
MAX_RECEIVES = 3
BAD = {"truncated": images.truncated_jpeg(), "text": images.text_file(), "empty": images.empty()}


def upload_everything(world: IngestWorld) -> dict[str, str]:
    """Keys -> expected kind: 'good' or the name of the bad content."""
    small = [images.jpeg(48, 40, seed=i) for i in range(25)]
    kinds = {}
    for n in range(OBJECTS):
        key = f"bulk/{n:04d}.jpg"
        kind = list(BAD)[n % 3] if n % 50 == 7 else "good"
        world.put(key, BAD[kind] if kind != "good" else small[n % 25] + n.to_bytes(4, "big"))
        kinds[key] = kind
    return kinds


def test_a_thousand_uploads_with_injected_faults_end_indexed_refused_or_in_the_dlq(world, monkeypatch):
    dlq_url = world.add_dead_letter_queue(MAX_RECEIVES)
    kinds = upload_everything(world)
    services = world.worker()
    aid = {key: asset_id_for(services.store.name, key) for key in kinds}
    poison = {aid[f"bulk/{n:04d}.jpg"] for n in (3, 500, 998)}
    index_faults = FaultPlan(
        error_rate=0.1, timeout_rate=0.05, partial_rate=0.1, slow_rate=0.1, always_fail=poison
    )
    store_faults = FaultPlan(error_rate=0.03, timeout_rate=0.02, seed=1)
    upsert, get = services.index.upsert, services.store.get
    monkeypatch.setattr(
        services.index, "upsert", faulty(upsert, index_faults, lambda assets: [a.asset_id for a in assets])
    )
    monkeypatch.setattr(services.store, "get", faulty(get, store_faults, lambda key, *_: [key]))
    responses = world.drain(services, stop_on_failure=False)

    parked = {event.key for m in world.peek(dlq_url) for event in parse_message_body(m["Body"]).events}
    state = {key: services.ledger.get(aid[key]) for key in kinds}
    indexed = {k for k, e in state.items() if e and e.state == "indexed" and services.index.get(aid[k])}
    refused = {k: e.reason for k, e in state.items() if e and e.state == "refused"}

    assert indexed | set(refused) | parked == set(kinds), "an object was lost"
    assert not indexed & parked
    assert not set(refused) & parked
    assert {k for k, kind in kinds.items() if kind != "good"} == set(refused)
    assert all(reason for reason in refused.values())
    assert {aid[k] for k in parked} >= poison
    assert any(r["batchItemFailures"] for r in responses)
    assert {"error", "timeout", "partial", "always"} <= set(index_faults.injected), index_faults.injected
    assert {"error", "timeout"} <= set(store_faults.injected), store_faults.injected

    # The operator fixes the dependencies and redrives: the index equals the bucket, no duplicates.
    monkeypatch.setattr(services.index, "upsert", upsert)
    monkeypatch.setattr(services.store, "get", get)
    moved = redrive(dlq_url, world.queue_url, client=world.sqs).moved
    assert moved == len(parked)
    world.drain(services, stop_on_failure=False)
    assert world.peek(dlq_url) == []
    good = {aid[k] for k, kind in kinds.items() if kind == "good"}
    assert {aid[k] for k in kinds if services.index.get(aid[k]) is not None} == good
    assert services.index.count() == len(good), "duplicates in the index"
    services.close()
