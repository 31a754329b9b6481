"""None lost: 1,000 uploads through S3 -> SQS (with a dead-letter queue) -> the ingest handler, with bad
images mixed in and an index adapter that throttles at random and always fails for a few assets.
Every object must end indexed, refused with a reason, or parked in the DLQ — counted, not sampled —
and a redrive with a healthy index must finish the job."""

from __future__ import annotations

import random

from tests.fixtures import images
from tests.fixtures.ingest_world import IngestWorld
from visual_search.assets import asset_id_for
from visual_search.errors import DependencyUnavailable
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
    rng = random.Random(7)
    upsert = services.index.upsert

    def flaky_upsert(assets):
        if rng.random() < 0.2 or any(a.asset_id in poison for a in assets):
            raise DependencyUnavailable("index throttled (injected)")
        return upsert(assets)

    monkeypatch.setattr(services.index, "upsert", flaky_upsert)
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
    assert any(r["batchItemFailures"] for r in responses), "no failure was injected"

    # The operator fixes the index and redrives: nothing is left behind.
    monkeypatch.setattr(services.index, "upsert", upsert)
    moved = redrive(dlq_url, world.queue_url, client=world.sqs).moved
    assert moved == len(parked)
    world.drain(services, stop_on_failure=False)
    assert services.index.count() == len(kinds) - len(refused)
    services.close()
