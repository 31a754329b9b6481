"""Every AssetLedger implementation is held to these tests: SQLite (one machine) and DynamoDB (moto)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from visual_search.errors import DependencyUnavailable
from visual_search.ledger.dynamodb import DynamoDbLedger, table_definition
from visual_search.ledger.port import AssetLedger, KeyMark, LedgerEntry
from visual_search.ledger.sqlite import SqliteLedger

MakeLedger = Callable[[str], AssetLedger]


@pytest.fixture
def dynamodb_ledgers(monkeypatch) -> Iterator[MakeLedger]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("dynamodb").create_table(**table_definition("ledger"))
        yield lambda scope: DynamoDbLedger("ledger", scope)


@pytest.fixture
def sqlite_ledgers(tmp_path: Path) -> Iterator[MakeLedger]:
    opened: list[SqliteLedger] = []

    def make(scope: str) -> SqliteLedger:
        opened.append(SqliteLedger(tmp_path / "ledger.sqlite", scope))
        return opened[-1]

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture(params=["sqlite", "dynamodb"])
def make_ledger(request: pytest.FixtureRequest) -> MakeLedger:
    return request.getfixturevalue(f"{request.param}_ledgers")


@pytest.fixture
def ledger(make_ledger: MakeLedger) -> AssetLedger:
    return make_ledger("model-a")


def entry(order: str, state: str = "indexed", asset: str = "a" * 32, **extra) -> LedgerEntry:
    return LedgerEntry(
        asset, f"photos/{asset[:4]}.jpg", order, state, updated_at="2026-11-24T10:00:00", **extra
    )  # type: ignore[arg-type]


def test_an_unknown_asset_has_no_entry_and_any_event_is_recorded(ledger):
    assert ledger.get("a" * 32) is None
    assert ledger.record(entry("s0")) is True


def test_the_first_record_is_written_and_read_back_whole(ledger):
    written = entry("s05", "refused", reason="too_many_pixels", doc_id="doc-1")
    assert ledger.record(written) is True
    assert ledger.get("a" * 32) == written


def test_a_newer_event_replaces_the_entry(ledger):
    ledger.record(entry("s05"))
    assert ledger.record(entry("s06", "removed")) is True
    assert ledger.get("a" * 32).state == "removed"


def test_an_older_or_equal_event_is_refused_and_changes_nothing(ledger):
    ledger.record(entry("s06", "removed"))
    assert ledger.record(entry("s05", "indexed")) is False
    assert ledger.record(entry("s06", "indexed")) is False
    assert ledger.get("a" * 32).state == "removed"
    assert ledger.record(entry("s07", "indexed")) is True


def test_tombstones_are_kept_so_a_late_create_after_a_delete_stays_out(ledger):
    ledger.record(entry("s09", "removed"))
    assert ledger.record(entry("s08", "indexed")) is False
    assert ledger.get("a" * 32).state == "removed"


def test_an_asset_moves_to_another_key_whatever_the_tokens_and_each_key_keeps_its_last_event(ledger):
    # Given an asset indexed under photos/aaaa.jpg
    ledger.record(entry("s09", asset="a" * 32))
    # When it moves to b.jpg (a rename: b.jpg's order tokens do not compare with aaaa.jpg's)
    moved = LedgerEntry("a" * 32, "photos/b.jpg", "s01", "indexed", updated_at="2026-11-24T10:00:01")
    assert ledger.record(moved) is True
    # Then the asset is at b.jpg, and each key still tells the last event applied there
    assert ledger.get("a" * 32) == moved
    assert ledger.at_key("photos/b.jpg") == KeyMark("a" * 32, "s01")
    assert ledger.at_key("photos/aaaa.jpg") == KeyMark("a" * 32, "s09")
    assert ledger.at_key("photos/other.jpg") is None


def test_a_key_held_by_assets_in_turn_names_the_newest_event(ledger):
    ledger.record(LedgerEntry("1" * 32, "k.jpg", "s05", "removed"))
    ledger.record(LedgerEntry("2" * 32, "k.jpg", "s07", "indexed"))
    ledger.record(LedgerEntry("3" * 32, "k.jpg", "s06", "indexed"))  # written, but older at that key
    assert ledger.at_key("k.jpg") == KeyMark("2" * 32, "s07")


def test_scopes_are_independent(make_ledger):
    old, new = make_ledger("model-a"), make_ledger("model-b")
    old.record(entry("s05"))
    assert new.get("a" * 32) is None
    assert new.record(entry("s01")) is True
    assert old.get("a" * 32).order == "s05"


def test_entries_lists_this_scope_optionally_by_state(make_ledger):
    ledger, other = make_ledger("model-a"), make_ledger("model-b")
    ledger.record(entry("s1", "indexed", asset="1" * 32))
    ledger.record(entry("s1", "removed", asset="2" * 32))
    ledger.record(entry("s1", "refused", asset="3" * 32, reason="corrupt"))
    other.record(entry("s1", "indexed", asset="4" * 32))
    assert {e.asset_id[0] for e in ledger.entries()} == {"1", "2", "3"}
    assert [e.asset_id[0] for e in ledger.entries("removed")] == ["2"]


def test_concurrent_writers_leave_the_newest_entry(make_ledger):
    ledger = make_ledger("model-a")
    orders = [f"s{n:04d}" for n in range(40)]

    def write(chunk: list[str]) -> None:
        for order in chunk:
            ledger.record(entry(order))

    threads = [threading.Thread(target=write, args=(orders[i::4][::-1],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.get("a" * 32).order == "s0039"


def test_records_in_a_batch_stay_conditional_and_are_all_read_back_after_it(ledger):
    ledger.record(entry("s5", asset="1" * 32))
    with ledger.batch():
        newer = ledger.record(entry("s6", asset="1" * 32))
        older = ledger.record(entry("s1", asset="2" * 32))
        stale = ledger.record(entry("s2", asset="2" * 32))  # same asset, newer: applies
        refused = ledger.record(entry("s0", asset="2" * 32))  # older than what this batch wrote
    assert (newer, older, stale, refused) == (True, True, True, False)
    assert ledger.get("1" * 32).order == "s6"
    assert ledger.get("2" * 32).order == "s2"


def test_a_sqlite_batch_commits_together_and_keeps_nothing_if_it_raises(sqlite_ledgers):
    # Given the ledger and a second reader of the same file (another process, say)
    ledger, reader = sqlite_ledgers("model-a"), sqlite_ledgers("model-a")
    # When a batch records two entries, then a batch raises after recording one
    with ledger.batch():
        ledger.record(entry("s1", asset="1" * 32))
        ledger.record(entry("s1", asset="2" * 32))
        seen_inside = reader.get("1" * 32)
    with pytest.raises(RuntimeError, match="the batch failed"):
        _record_then_fail(ledger, entry("s1", asset="3" * 32))
    # Then the first batch became visible at its end only (one transaction), the second not at all
    assert seen_inside is None
    assert reader.get("1" * 32) is not None
    assert reader.get("2" * 32) is not None
    assert ledger.get("3" * 32) is None
    assert reader.get("3" * 32) is None


def _record_then_fail(ledger: AssetLedger, recorded: LedgerEntry) -> None:
    with ledger.batch():
        ledger.record(recorded)
        raise RuntimeError("the batch failed")


def test_dynamodb_errors_other_than_the_condition_are_dependency_failures(dynamodb_ledgers, monkeypatch):
    ledger = dynamodb_ledgers("model-a")

    def throttled(**_kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")

    monkeypatch.setattr(ledger._client, "put_item", throttled)
    with pytest.raises(DependencyUnavailable):
        ledger.record(entry("s1"))


# -- holds: writes to one public_id, one at a time (see AssetLedger.hold)


def test_a_held_name_is_not_held_again_until_released(make_ledger):
    first, second = make_ledger("model-a"), make_ledger("model-b")  # holds span scopes: a name is the store's
    with first.hold("store\x00shoes/red", wait_s=0.0):
        with (
            pytest.raises(DependencyUnavailable, match="another write"),
            second.hold("store\x00shoes/red", wait_s=0.2),
        ):
            pass
        with second.hold("store\x00shoes/blue", wait_s=0.0):  # another name is free
            pass
    with second.hold("store\x00shoes/red", wait_s=0.0):  # released
        pass


def test_a_hold_left_by_a_crashed_writer_expires(make_ledger):
    crashed, ledger = make_ledger("model-a"), make_ledger("model-a")
    crashed.hold("store\x00x", wait_s=0.0, ttl_s=0.05).__enter__()  # never released
    with ledger.hold("store\x00x", wait_s=2.0):
        pass


def test_of_writers_racing_for_one_name_each_holds_it_alone(make_ledger):
    ledger = make_ledger("model-a")
    inside, overlaps = [0], []
    lock = threading.Lock()

    def write() -> None:
        with ledger.hold("store\x00race", wait_s=10.0):
            with lock:
                inside[0] += 1
                overlaps.append(inside[0])
            threading.Event().wait(0.01)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1] * 6
