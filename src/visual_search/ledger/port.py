"""The asset-ledger port: ordering and idempotency state for ingest, for every index backend.

Why a ledger and not the index: an OpenSearch Serverless Classic vector collection accepts neither
custom document ids nor upserts, and no index backend offers a conditional write on "the newest event
applied to this asset". The ledger does: one entry per asset id, holding the order token of
the newest event applied, the resulting state (indexed, removed — a tombstone that is kept — or
refused, with the reason) and the index's document id where the index chose it (a Classic collection),
handed back to the index on the asset's next replace or removal, which deletes by it what a search cannot
find until the collection's refresh.

`record` is a conditional write — it succeeds only if the entry is absent or older — so two workers
racing on one asset cannot move the ledger backwards. Order tokens compare within one key only (S3's
sequencers do), so an entry moving to another key (a rename, an overwrite in another format) is always
written: the pipeline decides whether such a move is stale.
Each key also keeps a mark of the newest event applied there and its asset (`at_key`), kept after the
asset moves on: a late event of a key is then recognised as stale, and a removal event, which carries
no asset id, names the asset it concerns.

Entries are kept per *scope* (the index they describe: one per model and cluster endpoint, see
`bootstrap.ledger_scope`), so re-indexing for a new model, or into a cluster made anew, starts from an
empty ledger beside the old one.

The ledger also serialises writes to one public_id (`hold`): a conditional write of a short-lived hold
on the name, the same on SQLite and DynamoDB, so two uploads of one public_id at once (a PNG and a JPEG)
leave one asset, and `overwrite=false` creates it once. Holds belong to no scope: a name is the store's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from visual_search.errors import DependencyUnavailable

State = Literal["indexed", "removed", "refused"]
# A write to one public_id (store, decode, index) takes well under a minute; a hold outliving that
# is one whose writer died.
HOLD_TTL_S = 60.0
HOLD_WAIT_S = 20.0  # inside the search function's 28 s, with the write itself still to do
HOLD_POLL_S = 0.02


@dataclass(frozen=True)
class LedgerEntry:
    asset_id: str
    key: str  # the object key, so an operator can find the object
    order: str  # order token of the newest event applied; compared as strings
    state: State
    doc_id: str | None = None  # the index's own id for the document, where it is not the asset id
    reason: str | None = None  # why an image was refused
    updated_at: str = ""


@dataclass(frozen=True)
class KeyMark:
    """The newest event applied at a key: its asset, and its order token."""

    asset_id: str
    order: str


class AssetLedger(Protocol):
    scope: str

    def get(self, asset_id: str) -> LedgerEntry | None: ...

    def at_key(self, key: str) -> KeyMark | None:
        """The newest event recorded at this key (whichever asset is there now); None if none was."""
        ...

    def record(self, entry: LedgerEntry) -> bool:
        """Write the entry if no entry exists, the existing one is older, or it is under another key (a
        move); return whether it was written. When written, the key's mark moves to it if it is the
        newest event at that key. Atomic: concurrent writers on one asset and key never move the ledger
        backwards."""
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

    def hold(
        self, name: str, wait_s: float = HOLD_WAIT_S, ttl_s: float = HOLD_TTL_S
    ) -> AbstractContextManager[None]:
        """Hold `name` (a store's public_id) for one write: of the writers asking for one name, one at a
        time holds it, in every process sharing this ledger; other names, and scopes, do not matter.
        Waits up to `wait_s` for it, then raises NameBusy. A hold its writer never released (a crash)
        lapses after `ttl_s`."""
        ...

    def close(self) -> None: ...


class Holds(Protocol):
    """The part of a ledger a writer of names needs (see `AssetLedger.hold`)."""

    def hold(
        self, name: str, wait_s: float = HOLD_WAIT_S, ttl_s: float = HOLD_TTL_S
    ) -> AbstractContextManager[None]: ...


class NameBusy(DependencyUnavailable):
    """Another write to the same public_id held it for longer than this one could wait (429: retry)."""


def busy(name: str) -> NameBusy:
    shown = name.rpartition("\x00")[2][:120]
    return NameBusy(f"another write to {shown!r} is in progress; try again")


def take_turn(name: str, take: Callable[[], bool], wait_s: float) -> None:
    """Asks `take` for the name until it is given (True), or raises NameBusy once `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    while not take():
        if time.monotonic() >= deadline:
            raise busy(name)
        time.sleep(HOLD_POLL_S)
