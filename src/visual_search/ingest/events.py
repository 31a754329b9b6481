"""S3 object events, whatever carried them, as one internal event.

Shapes handled (the ingest Lambda may be wired any of these ways):

* S3 notifications delivered through SQS (production: S3 -> SQS -> Lambda), optionally through SNS first;
* S3 notifications invoking the Lambda directly;
* EventBridge "Object Created" / "Object Deleted" events, directly or through SQS;
* `s3:TestEvent`, which S3 sends once when a notification configuration is saved: ignored.

Keys arrive URL-encoded (`+` for a space, `%xx` for UTF-8 bytes) and are decoded here.
Each event is then the command every writer sends the pipeline (`command_for`): IndexObject for a
creation, RemoveObject for a removal, with the event's order token. A message that parses as none of
these is *malformed*: it raises, so it is retried and ends in the dead-letter queue where somebody can
look at it, instead of being dropped silently.

Ordering follows the AWS documentation for `sequencer`: for one key, the greater hexadecimal value is
the later event; values may differ in length, so the shorter is left-padded with zeros before a
lexicographical comparison.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import (
    EventBridgeEvent,
    S3Event,
    S3EventBridgeNotificationEvent,
    SQSEvent,
)

from visual_search.domain.commands import IndexObject, RemoveObject
from visual_search.errors import BadInput

Kind = Literal["created", "removed"]
SEQUENCER_WIDTH = 64  # S3 sequencers are 16-20 hex digits today; padding wider costs nothing


class MalformedEvent(BadInput):
    """A message that is not an S3 or EventBridge object event."""


@dataclass(frozen=True)
class ObjectEvent:
    kind: Kind
    bucket: str
    key: str  # decoded
    event_time: str  # ISO 8601, as the source gave it
    sequencer: str | None = None
    version_id: str | None = None
    size: int | None = None
    etag: str | None = None
    name: str = ""  # the source's event name, for logs: ObjectCreated:Put, Object Deleted, ...
    listed: bool = False  # made from a bucket listing (backfill), not delivered by S3


@dataclass(frozen=True)
class ParsedRecord:
    """What one delivered message held: object events, or why it holds none worth acting on."""

    events: tuple[ObjectEvent, ...] = ()
    ignored: str | None = None


def parse_lambda_event(event: Mapping[str, Any]) -> list[ParsedRecord]:
    """One ParsedRecord per delivered message (per SQS message, per direct invocation)."""
    records = event.get("Records")
    if isinstance(records, list) and records and _is_sqs(records[0]):
        return [parse_message_body(r.body) for r in SQSEvent(dict(event)).records]
    return [parse_notification(event)]


def parse_message_body(body: str) -> ParsedRecord:
    """The body of an SQS message: an S3 notification, an EventBridge event, or either inside SNS."""
    try:
        payload = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedEvent(f"message body is not JSON: {str(body)[:120]!r}") from exc
    if isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload:
        return parse_message_body(payload["Message"])  # S3 -> SNS -> SQS
    return parse_notification(payload)


def parse_notification(payload: Any) -> ParsedRecord:
    if not isinstance(payload, dict):
        raise MalformedEvent(f"expected a JSON object, got {type(payload).__name__}")
    if payload.get("Event") == "s3:TestEvent":
        return ParsedRecord(ignored="s3:TestEvent (sent when the notification configuration is saved)")
    if payload.get("source") == "aws.s3" and "detail-type" in payload:
        return _from_eventbridge(payload)
    if "detail-type" in payload:
        return ParsedRecord(ignored=f"EventBridge event from {EventBridgeEvent(payload).source!r}")
    records = payload.get("Records")
    if isinstance(records, list) and records:
        return _from_s3_notification(payload)
    raise MalformedEvent("not an S3 notification, an EventBridge S3 event or s3:TestEvent")


def _is_sqs(record: Any) -> bool:
    return isinstance(record, dict) and record.get("eventSource") == "aws:sqs"


def _from_s3_notification(payload: dict[str, Any]) -> ParsedRecord:
    events, skipped = [], []
    try:
        for record in S3Event(payload).records:
            kind = _kind(record.event_name.split(":", 1)[0])
            if kind is None:
                skipped.append(record.event_name)
                continue
            obj = record.s3.get_object
            events.append(
                ObjectEvent(
                    kind=kind,
                    bucket=record.s3.bucket.name,
                    key=unquote_plus(obj.key),
                    event_time=record.event_time,
                    sequencer=obj.get("sequencer") or None,  # absent from moto's events
                    version_id=obj.version_id or None,
                    size=int(obj["size"]) if kind == "created" and "size" in obj else None,
                    etag=obj.etag or None,
                    name=record.event_name,
                )
            )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedEvent(f"S3 notification without the expected fields: {exc}") from exc
    ignored = f"event types not indexed: {', '.join(skipped)}" if skipped and not events else None
    return ParsedRecord(tuple(events), ignored)


def _from_eventbridge(payload: dict[str, Any]) -> ParsedRecord:
    detail_type = payload["detail-type"]
    kind = _kind(detail_type.replace(" ", ""))
    if kind is None:
        return ParsedRecord(ignored=f"EventBridge {detail_type!r} is not indexed")
    try:
        event = S3EventBridgeNotificationEvent(payload)
        detail = event.detail
        obj = detail.object
        return ParsedRecord(
            (
                ObjectEvent(
                    kind=kind,
                    bucket=detail.bucket.name,
                    key=obj.key,
                    event_time=event.time,
                    sequencer=obj.get("sequencer") or None,
                    version_id=obj.get("version-id") or None,
                    size=obj.get("size") if kind == "created" else None,
                    etag=obj.get("etag") or None,
                    name=detail_type,
                ),
            )
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedEvent(f"EventBridge S3 event without the expected fields: {exc}") from exc


def _kind(name: str) -> Kind | None:
    """ObjectCreated / ObjectRemoved (S3) and ObjectCreated / ObjectDeleted (EventBridge)."""
    if name == "ObjectCreated":
        return "created"
    if name in ("ObjectRemoved", "ObjectDeleted"):
        return "removed"
    return None


def sequencer_sort_key(sequencer: str) -> str:
    """A string that sorts like the sequencer's hexadecimal value (AWS: left-pad with zeros, then
    compare lexicographically); upper-cased so `a` and `A` agree."""
    value = sequencer.strip().upper()
    if not value or len(value) > SEQUENCER_WIDTH or any(c not in "0123456789ABCDEF" for c in value):
        raise MalformedEvent(f"sequencer {sequencer[:80]!r} is not a hexadecimal string")
    return value.rjust(SEQUENCER_WIDTH, "0")


def order_token(event: ObjectEvent) -> str:
    """A string whose `<` orders the events of one object.

    "s" + padded sequencer when S3 gave one (always, on AWS). "b" + modification time for a listing
    (backfill): below every sequencer, so a live event always wins over what a backfill saw. "t" +
    event time where no sequencer exists (moto, some S3-compatible stores), as for a writer's own
    changes on one machine.
    """
    if event.listed:
        return "b" + event.event_time
    if event.sequencer:
        return "s" + sequencer_sort_key(event.sequencer)
    return "t" + event.event_time


def command_for(event: ObjectEvent) -> IndexObject | RemoveObject:
    """The command an object event is: the object is read from the store when it is applied."""
    order, source = order_token(event), event.name or event.kind
    if event.kind == "removed":
        return RemoveObject(event.key, order=order, source=source)
    return IndexObject(
        event.key, order=order, version_id=event.version_id, written_at=event.event_time, source=source
    )
