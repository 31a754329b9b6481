"""Every delivery shape becomes the same ObjectEvent; sequencers order as the AWS documentation says."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.events import load
from visual_search.domain.commands import IndexObject, RemoveObject
from visual_search.ingest.events import (
    MalformedEvent,
    ObjectEvent,
    command_for,
    order_token,
    parse_lambda_event,
    parse_message_body,
    sequencer_sort_key,
)


def only_event(event: dict) -> ObjectEvent:
    (record,) = parse_lambda_event(event)
    (parsed,) = record.events
    return parsed


def test_sqs_wrapped_s3_created_event_has_its_key_decoded_and_its_version_and_sequencer():
    event = only_event(load("s3_sqs_object_created"))
    assert event == ObjectEvent(
        kind="created",
        bucket="visual-search-images",
        key="photos/summer/red flower été (2).jpg",
        event_time="2026-11-24T10:15:30.123Z",
        sequencer="0055AED6DCD90281E5",
        version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko",
        size=1024,
        etag="d41d8cd98f00b204e9800998ecf8427e",
        name="ObjectCreated:Put",
    )


def test_direct_delete_marker_is_a_removal_of_the_same_decoded_key():
    event = only_event(load("s3_direct_delete_marker"))
    assert (event.kind, event.key, event.size) == ("removed", "photos/summer/red flower été (2).jpg", None)
    assert event.version_id == "bd6ZtT0fq8Hq0Zyq3G0tN2O9J3Ye1Uok"


def test_s3_test_event_is_ignored_with_a_reason():
    (record,) = parse_lambda_event(load("s3_sqs_test_event"))
    assert record.events == ()
    assert "s3:TestEvent" in (record.ignored or "")


def test_event_types_other_than_create_and_remove_are_left_out():
    (record,) = parse_lambda_event(load("s3_direct_copy_and_restore"))
    assert [(e.kind, e.key, e.name) for e in record.events] == [
        ("created", "a/copy.png", "ObjectCreated:Copy")
    ]


def test_sns_envelope_inside_sqs_is_unwrapped():
    event = only_event(load("sns_sqs_object_removed"))
    assert (event.kind, event.key, event.sequencer) == ("removed", "cats/tabby.webp", "0055AED6DCD90281E6")


def test_eventbridge_created_and_deleted_events_normalise_to_the_same_shape():
    created = only_event(load("eventbridge_object_created"))
    deleted = only_event(load("eventbridge_object_deleted"))
    assert (created.kind, created.key, created.size) == ("created", "products/blue shirt.jpg", 5)
    assert created.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert (deleted.kind, deleted.key, deleted.size) == ("removed", "products/blue shirt.jpg", None)
    assert order_token(created) < order_token(deleted)


def test_eventbridge_event_through_sqs_is_parsed_like_a_direct_one():
    direct = load("eventbridge_object_created")
    wrapped = load("s3_sqs_test_event")
    wrapped["Records"][0]["body"] = json.dumps(direct)
    assert only_event(wrapped) == only_event(direct)


def test_eventbridge_events_from_other_sources_are_ignored():
    (record,) = parse_lambda_event({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}})
    assert record.events == ()
    assert "aws.events" in (record.ignored or "")


def test_one_sqs_batch_gives_one_parsed_record_per_message():
    batch = load("s3_sqs_object_created")
    batch["Records"].append(load("s3_sqs_test_event")["Records"][0])
    records = parse_lambda_event(batch)
    assert [len(r.events) for r in records] == [1, 0]


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"hello": "world"}', '{"Records": [{"eventName": "ObjectCreated:Put"}]}'],
)
def test_malformed_message_bodies_raise_so_they_reach_the_dead_letter_queue(body):
    with pytest.raises(MalformedEvent):
        parse_message_body(body)


def test_sequencers_of_different_lengths_compare_by_value_after_left_padding():
    key = sequencer_sort_key
    assert key("0055AED6DCD90281E5") < key("55AED6DCD90281E6")
    assert key("FF") < key("0100")
    assert key("00ab") == key("AB")
    assert key("10") > key("F")


@pytest.mark.parametrize("bad", ["", "xyz", "12 34", "G0"])
def test_a_sequencer_that_is_not_hexadecimal_is_malformed(bad):
    with pytest.raises(MalformedEvent):
        sequencer_sort_key(bad)


@given(st.integers(0, 2**80), st.integers(0, 2**80), st.integers(0, 4), st.integers(0, 4))
def test_sequencer_order_is_numeric_order_whatever_the_padding(a, b, pad_a, pad_b):
    sa, sb = "0" * pad_a + format(a, "X"), "0" * pad_b + format(b, "x")
    ka, kb = sequencer_sort_key(sa), sequencer_sort_key(sb)
    assert (ka > kb) - (ka < kb) == (a > b) - (a < b)


def test_each_object_event_is_the_command_every_writer_sends_with_its_place_among_its_keys_changes():
    # Given a creation and a removal as S3 delivers them, and an object found by a listing (backfill)
    created = ObjectEvent(
        "created",
        "b",
        "a/x.jpg",
        "2026-11-24T10:00:00.000Z",
        sequencer="0A",
        version_id="v1",
        name="ObjectCreated:Put",
    )
    removed = ObjectEvent("removed", "b", "a/x.jpg", "2026-11-24T10:00:01.000Z", sequencer="0B")
    listed = ObjectEvent(
        "created", "b", "a/y.jpg", "2026-11-24T09:00:00.000000Z", listed=True, name="Backfill"
    )
    # Then each is an IndexObject or a RemoveObject naming the object (its bytes are read when applied)
    index = command_for(created)
    assert index == IndexObject(
        "a/x.jpg",
        order="s" + sequencer_sort_key("0A"),
        version_id="v1",
        written_at="2026-11-24T10:00:00.000Z",
        source="ObjectCreated:Put",
    )
    assert index.data is None
    assert command_for(removed) == RemoveObject(
        "a/x.jpg", order="s" + sequencer_sort_key("0B"), source="removed"
    )
    # And a listing's place is below every event's, so a backfill never overrides a live change
    assert command_for(listed).order == "b2026-11-24T09:00:00.000000Z" < index.order
