"""The asset-ledger port: ordering and idempotency state for ingest, for every index backend.

Why a ledger and not the index: an OpenSearch Serverless Classic vector collection accepts neither
custom document ids nor upserts, and no index backend offers a conditional write on "the newest event
applied to this asset". The ledger does: one entry per asset id, holding the order token of
the newest event applied, the resulting state (indexed, removed — a tombstone that is kept — or
refused, with the reason) and the index's document id where the index chose it (a Classic collection),
handed back to the index on the asset's next replace or removal, which deletes by it what a search cannot
find until the collection's refresh.

`record` is a conditional write — it succeeds only if the entry is absent or older — so two workers
racing on one asset cannot move the ledger backwards; `is_newer` lets a worker skip work early.

Entries are kept per *scope* (the index they describe: one per model and cluster endpoint, see
`bootstrap.ledger_scope`), so re-indexing for a new model, or into a cluster made anew, starts from an
empty ledger beside the old one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

State = Literal["indexed", "removed", "refused"]
STATES: tuple[State, ...] = ("indexed", "removed", "refused")


@dataclass(frozen=True)
class LedgerEntry:
    asset_id: str
    key: str  # the object key, so an operator can find the object
    order: str  # order token of the newest event applied; compared as strings
    state: State
    doc_id: str | None = None  # the index's own id for the document, where it is not the asset id
    reason: str | None = None  # why an image was refused
    updated_at: str = ""


class AssetLedger(Protocol):
    scope: str

    def get(self, asset_id: str) -> LedgerEntry | None: ...

    def is_newer(self, asset_id: str, order: str) -> bool:
        """True when an event with this order token would change the ledger (absent or older entry)."""
        ...

    def record(self, entry: LedgerEntry) -> bool:
        """Write the entry if no entry exists or the existing one is older; return whether it was written.
        Atomic: concurrent writers on one asset never move the ledger backwards."""
        ...

    def entries(self, state: State | None = None) -> Iterator[LedgerEntry]:
        """Every entry of this scope (optionally of one state), in no particular order."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """Group the `record`s of one ingest batch. Where the store has transactions (SQLite) they are
        committed together, with one fsync instead of one per image, and none is kept if the block
        raises; elsewhere (DynamoDB) each is written as it comes. Either way a crash inside loses at
        most this batch's entries, which the batch's redelivery applies again."""
        ...

    def close(self) -> None: ...
