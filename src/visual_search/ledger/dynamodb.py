"""The ledger on AWS: one DynamoDB item per (scope, asset id), written with a condition expression.

`record` is a PutItem with `attribute_not_exists(pk) OR order_token < :order OR key <> :key`, the
conditional write DynamoDB documents for optimistic ordering, so concurrent ingest Lambdas never move an
asset backwards. Each key's mark (`at_key`) is an item of its own, `<scope>#key#<key>`, written after
the entry with the same condition on its order token (a crash in between loses a mark, never an entry).
Throttling and service errors become DependencyUnavailable: the SQS message is retried, then parked in
the dead-letter queue.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from visual_search.errors import DependencyUnavailable
from visual_search.ledger.port import HOLD_TTL_S, HOLD_WAIT_S, KeyMark, LedgerEntry, State, take_turn

CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 4, "mode": "adaptive"})
FIELDS = ("asset_id", "key", "order_token", "state", "doc_id", "reason", "updated_at")


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments, for the conformance tests' table (moto); the CDK stack declares the same
    key schema (infra/ingest_pipeline.py)."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


class DynamoDbLedger:
    def __init__(self, table: str, scope: str, client: Any = None):
        self.scope = scope
        self._table = table
        self._client = client or boto3.client("dynamodb", config=CLIENT_CONFIG)

    def _pk(self, asset_id: str) -> dict[str, str]:
        return {"S": f"{self.scope}#{asset_id}"}

    def batch(self) -> AbstractContextManager[None]:
        """Each conditional put is its own write: a transaction (TransactWriteItems) would fail every
        entry of the batch when one condition fails, and conditions failing is the normal case here."""
        return nullcontext()

    def get(self, asset_id: str) -> LedgerEntry | None:
        item = self._call(
            "get_item", TableName=self._table, Key={"pk": self._pk(asset_id)}, ConsistentRead=True
        ).get("Item")
        return _entry(item) if item else None

    def _key_pk(self, key: str) -> dict[str, str]:
        return {"S": f"{self.scope}#key#{key}"}  # never an asset's: an asset id holds no "#"

    def at_key(self, key: str) -> KeyMark | None:
        item = self._call(
            "get_item", TableName=self._table, Key={"pk": self._key_pk(key)}, ConsistentRead=True
        ).get("Item")
        return KeyMark(item["asset_id"]["S"], item["order_token"]["S"]) if item else None

    def record(self, entry: LedgerEntry) -> bool:
        item = {"pk": self._pk(entry.asset_id), "scope": {"S": self.scope}}
        for name, value in zip(FIELDS, _values(entry), strict=True):
            if value is not None:
                item[name] = {"S": value}
        newer = "attribute_not_exists(pk) OR order_token < :order"
        order = {":order": {"S": entry.order}}
        moved = order | {":key": {"S": entry.key}}
        if not self._conditional(
            "put_item",
            TableName=self._table,
            Item=item,
            ConditionExpression=f"{newer} OR #key <> :key",
            ExpressionAttributeNames={"#key": "key"},
            ExpressionAttributeValues=moved,
        ):
            return False
        # No `scope` attribute: `entries` leaves marks out.
        mark = {
            "pk": self._key_pk(entry.key),
            "asset_id": item["asset_id"],
            "order_token": item["order_token"],
        }
        self._conditional(
            "put_item",
            TableName=self._table,
            Item=mark,
            ConditionExpression=newer,
            ExpressionAttributeValues=order,
        )
        return True

    def entries(self, state: State | None = None) -> Iterator[LedgerEntry]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#scope = :scope",
            "ExpressionAttributeNames": {"#scope": "scope"},
            "ExpressionAttributeValues": {":scope": {"S": self.scope}},
        }
        if state is not None:
            arguments["FilterExpression"] += " AND #state = :state"
            arguments["ExpressionAttributeNames"]["#state"] = "state"
            arguments["ExpressionAttributeValues"][":state"] = {"S": state}
        paginator = self._client.get_paginator("scan")
        try:
            for page in paginator.paginate(**arguments):
                for item in page.get("Items", []):
                    yield _entry(item)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailable(f"asset ledger: {exc}") from exc

    @contextmanager
    def hold(self, name: str, wait_s: float = HOLD_WAIT_S, ttl_s: float = HOLD_TTL_S) -> Iterator[None]:
        """A PutItem on `hold#<name>` conditioned on the item being absent or lapsed, released by a
        DeleteItem conditioned on still being this holder's (a lapsed hold retaken is not ours to drop)."""
        holder, key = uuid.uuid4().hex, {"S": f"hold#{name}"}
        take_turn(name, lambda: self._take(key, holder, ttl_s), wait_s)
        try:
            yield
        finally:
            self._conditional(
                "delete_item",
                TableName=self._table,
                Key={"pk": key},
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": {"S": holder}},
            )

    def _take(self, key: dict[str, str], holder: str, ttl_s: float) -> bool:
        now = time.time()
        return self._conditional(
            "put_item",
            TableName=self._table,
            Item={"pk": key, "holder": {"S": holder}, "until": {"N": repr(now + ttl_s)}},
            ConditionExpression="attribute_not_exists(pk) OR #until < :now",
            ExpressionAttributeNames={"#until": "until"},
            ExpressionAttributeValues={":now": {"N": repr(now)}},
        )

    def _conditional(self, operation: str, **kwargs: Any) -> bool:
        """A conditional write: False when its condition failed, DependencyUnavailable on any other error."""
        try:
            getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise DependencyUnavailable(f"asset ledger: {exc}") from exc
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"asset ledger: {exc}") from exc
        return True

    def close(self) -> None:
        """Nothing to release: boto3 clients pool their connections."""

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise DependencyUnavailable(f"asset ledger: {exc}") from exc


def _values(entry: LedgerEntry) -> tuple[str | None, ...]:
    return (entry.asset_id, entry.key, entry.order, entry.state, entry.doc_id, entry.reason, entry.updated_at)


def _entry(item: dict[str, Any]) -> LedgerEntry:
    values = [item[name]["S"] if name in item else None for name in FIELDS]
    return LedgerEntry(*values)  # type: ignore[arg-type]
