"""None lost: 1,000 uploads through S3 -> SQS (with a dead-letter queue) -> the ingest handler, with bad
images mixed in, an index adapter that throttles, times out, answers slowly, half-applies batches and
always fails for a few assets, and a store whose reads throttle and time out. Every object must end
indexed, refused with a reason, or parked in the DLQ — counted, not sampled — and a redrive with
healthy dependencies must leave an index equal to the bucket, without duplicates."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.doubles.opensearch_double import FakeOpenSearch, plug_in
from tests.fixtures import images
from tests.fixtures.faults import FaultPlan, faulty
from tests.fixtures.ingest_world import IngestWorld
from visual_search.domain.identity import derived_asset_id
from visual_search.index.opensearch import OpenSearchIndex
from visual_search.ingest.events import parse_message_body
from visual_search.ingest.redrive import redrive

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
    poison = {derived_asset_id(services.store.name, f"bulk/{n:04d}.jpg") for n in (3, 500, 998)}
    index_faults = FaultPlan(
        error_rate=0.1, timeout_rate=0.05, partial_rate=0.1, slow_rate=0.1, always_fail=poison
    )
    store_faults = FaultPlan(error_rate=0.03, timeout_rate=0.02, seed=1)
    upsert, get = services.index.upsert, services.store.get
    monkeypatch.setattr(
        services.index,
        "upsert",
        faulty(upsert, index_faults, lambda assets, *_: [a.asset_id for a in assets]),
    )
    monkeypatch.setattr(services.store, "get", faulty(get, store_faults, lambda key, *_: [key]))
    responses = world.drain(services, stop_on_failure=False)
    aid, parked = outcomes(world, services, kinds, dlq_url)
    assert {aid[k] for k in parked} >= poison
    assert any(r["batchItemFailures"] for r in responses)
    assert {"error", "timeout", "partial", "always"} <= set(index_faults.injected), index_faults.injected
    assert {"error", "timeout"} <= set(store_faults.injected), store_faults.injected

    # The operator fixes the dependencies and redrives: the index equals the bucket, no duplicates.
    monkeypatch.setattr(services.index, "upsert", upsert)
    monkeypatch.setattr(services.store, "get", get)
    assert_redrive_leaves_the_index_equal_to_the_bucket(world, services, kinds, dlq_url, len(parked))


def outcomes(world: IngestWorld, services, kinds: dict[str, str], dlq_url: str):
    aid = {key: derived_asset_id(services.store.name, key) for key in kinds}
    parked = {event.key for m in world.peek(dlq_url) for event in parse_message_body(m["Body"]).events}
    state = {key: services.ledger.get(aid[key]) for key in kinds}
    indexed = {k for k, e in state.items() if e and e.state == "indexed" and services.index.get(aid[k])}
    refused = {k: e.reason for k, e in state.items() if e and e.state == "refused"}
    assert indexed | set(refused) | parked == set(kinds), "an object was lost"
    assert not indexed & parked
    assert not set(refused) & parked
    assert {k for k, kind in kinds.items() if kind != "good"} == set(refused)
    assert all(reason for reason in refused.values())
    return aid, parked


def assert_redrive_leaves_the_index_equal_to_the_bucket(
    world, services, kinds, dlq_url, parked: int, settle: Callable[[], None] = lambda: None
):
    moved = redrive(dlq_url, world.queue_url, client=world.sqs).moved
    assert moved == parked
    world.drain(services, stop_on_failure=False)
    settle()
    assert world.peek(dlq_url) == []
    good = {derived_asset_id(services.store.name, k) for k, kind in kinds.items() if kind == "good"}
    assert {
        a for a in map(lambda k: derived_asset_id(services.store.name, k), kinds) if services.index.get(a)
    } == good
    assert services.index.count() == len(good), "duplicates in the index"
    services.close()


@pytest.mark.parametrize("mode", ["managed", "serverless"])
def test_a_thousand_uploads_into_a_throttling_opensearch_end_indexed_refused_or_in_the_dlq(
    world, monkeypatch, mode
):
    # Faults at the HTTP level, where OpenSearch makes them: whole requests answered 429 and bulk items
    # answered 503, seeded. On a Classic Serverless collection overwrites are delete + index, the
    # riskiest path for duplicates, and its writes become searchable only at the collection's refresh
    # (60 s): here only before a failed message is retried (its visibility timeout is 12 minutes), so
    # overwrites and withdrawals inside a window must delete by the ids the ledger and the adapter
    # recorded. (A NextGen collection keys documents by asset id, as a domain does.)
    cluster = FakeOpenSearch(mode=mode, generation="classic", seed=7, refresh_lag=mode == "serverless")
    plug_in(monkeypatch, cluster)
    monkeypatch.setattr(OpenSearchIndex, "_back_off", lambda self, attempt, deadline: True)  # no sleeping
    dlq_url = world.add_dead_letter_queue(MAX_RECEIVES)
    kinds = upload_everything(world)
    for n in range(0, OBJECTS, 97):  # overwrites: the second version must replace the first, not join it
        if kinds[f"bulk/{n:04d}.jpg"] == "good":
            world.put(f"bulk/{n:04d}.jpg", images.jpeg(40, 48, seed=1000 + n))
    services = world.worker(
        index_backend="opensearch",
        opensearch_endpoint="https://search.example",
        opensearch_mode=mode,
        opensearch_generation="classic",
    )
    # The worker reaches the index on first use; here it is set up before the faults start: a failed
    # set-up backs off for seconds of real time, while this drain compresses the queue's minutes between
    # receives into milliseconds, which would park every message received meanwhile.
    services.index.count()
    cluster.throttle_rate, cluster.bulk_item_fault_rate = 0.5, 0.3
    responses = world.drain(services, stop_on_failure=False, before_retry=cluster.refresh)
    cluster.throttle_rate = cluster.bulk_item_fault_rate = 0.0  # the operator's fix, and the test's reads
    cluster.refresh()
    if mode == "serverless":
        assert cluster.unsearchable_deletes > 0  # the window was hit, and deleting by id closed it
    _, parked = outcomes(world, services, kinds, dlq_url)
    retried = sum(len(r["batchItemFailures"]) for r in responses)
    print(f"{mode}: injected {dict(cluster.injected)}, messages retried {retried}, parked {len(parked)}")
    assert cluster.injected["throttled"] >= 50
    assert sum(n for kind, n in cluster.injected.items() if kind.startswith("bulk")) >= 50
    assert retried > 0  # some faults outlasted the adapter's own retries and went back to the queue
    assert_redrive_leaves_the_index_equal_to_the_bucket(
        world, services, kinds, dlq_url, len(parked), settle=cluster.refresh
    )
