"""Bulk loading a new OpenSearch index: what `OpenSearchIndex.bulk_load` sends, and how it retries.

Only for an index no reader uses yet (`OpenSearchIndex(reindex=True)`: the model's index beside the one
the alias serves, until `activate`). The ingest path (`upsert`: one SQS batch, `refresh=wait_for`, items
retried alone) is not this one and does not change. What differs:

* Requests are cut by size in bytes (`chunk_bytes`), not by a count of documents: a request's cost on the
  node (parsing, the HNSW inserts) and its time on the wire follow its bytes, whatever the documents hold.
* `threads` requests are in flight at once, through opensearch-py's `parallel_bulk`: a node indexes each
  bulk request on one of its write threads (one per core), so a single request at a time leaves the
  other cores idle while this process waits for the answer.
* No `refresh=wait_for`: nobody searches the index before `activate`, which refreshes it; and while its
  `refresh_interval` is -1 (see `OpenSearchIndex.begin_load`) a wait_for would wait for a refresh that
  only `index.max_refresh_listeners` ever forces.
* Documents are encoded here, with orjson, and handed to the helper as text (opensearch-py's serializer
  passes text through): the stdlib's json spends ~620 us a document writing 512 float32 as float64
  reprs (~11 kB); orjson writes the float32's own shortest form, which reads back to the same float32,
  in ~65 us (~6.5 kB). On a 2-core machine that CPU is taken from the node.

Failures are handled as `upsert` handles them: an item answered 429 or 5xx, and every item of a request
that failed for such a status or a timeout, is sent again after a back-off (full jitter), up to the
adapter's attempts; then DependencyUnavailable. Any other refusal raises at once (OpenSearchRefused, or
ConfigurationError for 401/403/404). Nothing is dropped: `load` returns only when every document was
acknowledged. On a Classic Serverless collection, which makes the ids, a request whose answer was lost
(a timeout) and that is sent again may write its documents twice, as `upsert` may there.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from visual_search.errors import DependencyUnavailable
from visual_search.index.opensearch_errors import RETRYABLE, OpenSearchRefused, error_types, translate
from visual_search.index.opensearch_mapping import VECTOR, source_fields
from visual_search.index.port import IndexedAsset, check_asset

Action = tuple[dict[str, Any], str]  # the bulk action line, and the document as JSON text


@dataclass(frozen=True)
class BulkTuning:
    """How a load is cut and spread. The defaults are the best of a sweep by bench/opensearch_bulk.py
    on 100k clustered 512-d vectors into the local node (in docs/opensearch.md): 2 MB (~300 documents) with
    three requests in flight, so both of the node's write threads have the next request waiting while
    this process encodes another. Other work on the same 2 cores moved every figure by up to 2x, so
    this is the best measured, not a proven optimum."""

    chunk_bytes: int = 2_000_000
    threads: int = 3
    request_timeout_s: float = 120.0  # one request of chunk_bytes, on a node building its graph


def actions(assets: Iterable[IndexedAsset], dim: int, index: str, with_ids: bool) -> Iterator[Action]:
    """One index action per asset, validated as `upsert` validates them. `with_ids`: keyed by asset id
    (a domain, a NextGen collection); without, the collection makes the id (a Classic collection)."""
    for asset in assets:
        vector = check_asset(asset, dim)
        meta = {"_index": index} | ({"_id": asset.asset_id} if with_ids else {})
        yield {"index": meta}, encode(asset, vector)


def encode(asset: IndexedAsset, vector: np.ndarray) -> str:
    """The document as JSON text: the fields `to_source` writes, the vector (float32, shape (dim,)) in
    the shortest form that reads back to each float32."""
    import orjson
    from opensearchpy.serializer import JSONSerializer

    source = source_fields(asset) | {VECTOR: vector}
    options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    # What orjson cannot write (a Decimal, a UUID) gets opensearch-py's own conversion.
    return orjson.dumps(source, default=JSONSerializer().default, option=options).decode()


def load(
    client: Any,
    pending: Iterable[Action],
    tuning: BulkTuning,
    attempts: int,
    back_off: Callable[[int], bool],
) -> int:
    """Send every action, in parallel requests of at most `tuning.chunk_bytes`; returns how many were
    written. The failures a retry can fix are sent again, after `back_off(attempt)` (False: out of
    time), up to `attempts` passes in all."""
    written, retry = 0, list[Action]()
    for attempt in range(attempts):
        retry = []
        with contextlib.closing(send(client, pending, tuning)) as results:
            for action, failure in results:
                if failure is None:
                    written += 1
                elif retryable(failure):
                    retry.append(action)
                else:
                    raise refusal(failure)
        if not retry:
            return written
        pending = retry
        if attempt + 1 == attempts or not back_off(attempt):
            break
    raise DependencyUnavailable(f"OpenSearch kept refusing {len(retry)} write(s) of a bulk load (throttled)")


def send(
    client: Any, pending: Iterable[Action], tuning: BulkTuning
) -> Generator[tuple[Action, dict | None], None, None]:
    """Each action with its failure (None when it was written), in the order sent."""
    from opensearchpy.helpers import parallel_bulk

    # parallel_bulk answers each action once and in order (chunks through an ordered imap, items in
    # request order), but leaves a failed item's document out of its answer: the actions it has taken
    # wait here for theirs, so what failed can be sent again.
    taken: deque[Action] = deque()

    def take(action: Action) -> Action:
        taken.append(action)
        return action

    results = parallel_bulk(
        client,
        pending,
        thread_count=tuning.threads,
        # Cut by bytes only: a document takes at least a byte, so this count never binds first.
        chunk_size=tuning.chunk_bytes,
        max_chunk_bytes=tuning.chunk_bytes,
        queue_size=tuning.threads,  # chunks encoded ahead of the requests: memory, not speed
        expand_action_callback=take,
        raise_on_error=False,  # every failure comes back as an item, to be retried or raised here
        raise_on_exception=False,
        request_timeout=tuning.request_timeout_s,
    )
    with contextlib.closing(results):  # stops the helper's threads if the caller stops early
        for ok, item in results:
            action = taken.popleft()
            ((_, result),) = item.items()
            expected = action[0]["index"].get("_id")
            if expected is not None and result.get("_id") not in (None, expected):
                raise RuntimeError(f"bulk answer for {result.get('_id')} where {expected} was sent")
            yield action, None if ok else result


def retryable(failure: dict[str, Any]) -> bool:
    """429 and 5xx, and a request that got no answer (opensearch-py's status "N/A": a timeout, a
    dropped connection)."""
    status = failure.get("status")
    return not isinstance(status, int) or status in RETRYABLE


def refusal(failure: dict[str, Any]) -> Exception:
    """The error for a failure no retry can fix: a whole request refused (its exception's answer), or
    one document."""
    status = int(failure["status"])
    exception = failure.get("exception")
    if exception is not None:  # the request itself was refused: every item carries its exception
        return translate(status, exception.info, str(exception.error))
    return OpenSearchRefused(status, error_types(failure), f"a document: {failure.get('error')}")
