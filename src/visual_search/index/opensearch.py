"""The VectorIndex on OpenSearch: an Amazon OpenSearch Service domain (or any cluster with the k-NN
plugin) in `managed` mode, or an OpenSearch Serverless vector collection in `serverless` mode, of the
`generation` the collection was created as: `nextgen` (what AWS's console creates and recommends for new
collections) or `classic` (the original, and what the API creates when no generation is named). The
AWS documents no way to read the generation from the data plane, so it is configured
(VS_OPENSEARCH_GENERATION). What AWS documents for each, with the pages and quotes, is in docs/scaling.md.

Readers and writers use an alias; the physical index behind it is per model (`<alias>-<model>`), made
from the manifest before the first operation (with `set_up_on_first_use`, as `bootstrap` builds it, by
the first request: an unreachable cluster fails that request with a back-off, not the start; see
`first_use`), and `_meta` records model id and dimension, so a mismatch is a clear ConfigurationError
at set-up instead of garbage results. `reindex=True` builds a new physical index and `activate` swaps
the alias in one `_aliases` call, so readers never meet a half-built index on a model change; a reader
still on the old model then answers ModelSwitched (429) once the new index refuses its queries, until
it is restarted on the new model (docs/models.md, "Switching a live deployment"). The
mapping is the one the engine accepts (`opensearch_mapping.vector_mapping`): a NextGen collection refuses
`engine` and `mode`, so it is told neither; a mapping the collection refuses is a start-up error that
names the generation setting.

A backfill into such a new index is a bulk load (`begin_load`, `bulk_load`, finished by `activate`):
while nobody reads the index, its refresh is off and it has no replica, writes do not wait for a
refresh, and `bulk_load` sends parallel requests cut by bytes (`opensearch_bulk`). Before the alias
moves, the index is refreshed, force-merged to one segment and given back its configured refresh
interval and replicas. An index a load left unfinished (refresh off) is finished by `activate`.

Writes are `_bulk` requests whose every item is checked: items answered 429 or 5xx are retried with
exponential back-off and full jitter (bounded), other item errors raise; what still fails raises
DependencyUnavailable, so the ingest message is retried and ends in the DLQ. A domain and a NextGen
collection key documents by asset id (AWS: "Custom document IDs are supported in NextGen collections"),
so a replace is one write and a delete is by id; a domain also writes with `refresh=wait_for`, so an
acknowledged write is searchable. Serverless accepts no refresh: writes become searchable after the
collection's own refresh (60 s on Classic, 10 s on NextGen, per AWS), and until then a search - `get` and
`count` are searches there too - does not see them.

A Classic collection refuses custom ids, so it generates each document's id. A term query on `asset_id`
misses a document written within the refresh window, hence `upsert` returns the generated ids, the
ingest ledger records them (`LedgerEntry.doc_id`), and a replace or delete removes by id both the
documents the ledger names (`known`) and those the term query finds, before indexing the new one; the
ingest ledger keeps the ordering (see `ledger/port.py`). An upsert that fails half-way withdraws what it
wrote (`_withdraw`). Left open: a bulk whose answer is lost (a timeout) and that is sent again writes
twice, and the first document's id is never known; the term query of the asset's next replace or delete
removes it once it is searchable.

Ordering against late or duplicate S3 events is not decided here: the asset ledger's conditional write
(DynamoDB) decides which event may touch an asset, before the index is written, for both modes.

Search: a `knn` query with the filters inside it (efficient filtering), sorted by `_score` then
`asset_id`, paged with `search_after`; every query sends the index's `ef_search` as the HNSW beam, and
a k that grows with the page's depth instead of `max_hits` on every page (`opensearch_query`). Since
Lucene answers max(k, ef_search) hits, and each shard k, a walk is capped at `max_hits` by the depth the
caller passes (the search service's cursor counts what it has served), not by k. Scores are converted
to the raw cosine the embedded index returns.

Point in time (`point_in_time_s` > 0; by default 60 s on Serverless, where AWS recommends point in time
with search_after, and off on a domain, where each one holds a context within
`search.max_open_pit_context`): the search service opens one only when a search has a next page, every
later page reads it, and it is deleted when the last page is served; one that expired falls back to the
live index (still ordered, without repeats, thanks to search_after), and an engine that refuses to open
one (a refusal, not 401/403/404, which are set-up errors) leaves the search paging without it. Without
one, each page on a domain sends the same
`preference`, so one search reads the same shard copies throughout. A search answered by only some
shards, or timed out, raises DependencyUnavailable rather than returning a short page. Errors are typed in
one place (`opensearch_errors.translate`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from visual_search.deadline import budget  # the request's deadline, when nearer
from visual_search.defaults import DEFAULT_BUDGET_S
from visual_search.errors import ConfigurationError, DependencyUnavailable, ModelSwitched
from visual_search.index.first_use import FirstUse
from visual_search.index.opensearch_errors import (
    RETRYABLE,
    IndexAlreadyExists,
    OpenSearchRefused,
    PointInTimeExpired,
    error_types,
    translate,
)
from visual_search.index.opensearch_mapping import (
    Deployment,
    IndexOptions,
    filter_clauses,
    from_hit,
    from_source,
    index_body,
    to_source,
)
from visual_search.index.opensearch_query import knn_body, page_k
from visual_search.index.port import (
    DocIds,
    Filters,
    Hit,
    IndexedAsset,
    SearchAfter,
    check_asset,
    check_page_args,
    check_vector,
)

if TYPE_CHECKING:
    from visual_search.index.opensearch_bulk import BulkTuning

log = logging.getLogger(__name__)

Mode = Literal["managed", "serverless"]
Generation = Literal["classic", "nextgen"]  # of a Serverless collection
SERVERLESS_POINT_IN_TIME_S = 60  # the keep-alive between pages when none is configured on Serverless
MAX_STRAYS = 10_000  # assets whose failed write could not be withdrawn, remembered (see `_withdraw`)
# A k-NN query searches every segment's graph in turn, so a loaded index is merged to one: each query
# then walks one HNSW graph. The merge re-inserts the vectors of every other segment into the largest
# one's graph (bench/opensearch_bulk.py times it), once, before readers arrive and before replicas copy it.
MERGED_SEGMENTS = 1
MERGE_TIMEOUT_S = 6 * 3600.0  # the merge request's wait (a million vectors: tens of minutes on 2 cores)
# During a load: no refresh (a segment per second, each with its own graph, merged again and again), no
# replica (each document indexed and its graph built once; the replica copies the merged primary after).
LOAD_SETTINGS = {"refresh_interval": "-1", "number_of_replicas": 0}


class OpenSearchIndex:
    def __init__(
        self,
        client: Any,
        alias: str,
        dim: int,
        model_id: str,
        mode: Mode = "managed",
        options: IndexOptions | None = None,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        reindex: bool = False,
        point_in_time_s: int | None = None,
        budget_s: float = DEFAULT_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
        generation: Generation = "nextgen",
        set_up_on_first_use: bool = False,
    ):
        self._os = client
        # What one operation may take, retries included (plus at most one request timeout).
        self._budget_s, self._clock = budget_s, clock
        self.alias, self.dim, self.model_id, self.mode = alias, dim, model_id, mode
        self.deployment: Deployment = generation if mode == "serverless" else "managed"
        # Documents keyed by asset id, everywhere but on a Classic collection (it refuses custom ids).
        self._keyed = self.deployment != "classic"
        # None: on Serverless AWS recommends point in time with search_after; on a domain it stays opt-in.
        if point_in_time_s is None:
            point_in_time_s = SERVERLESS_POINT_IN_TIME_S if mode == "serverless" else 0
        self.point_in_time_s = point_in_time_s  # 0: off
        self.options = options or IndexOptions()
        self._attempts, self._sleep = attempts, sleep
        self._strays: dict[str, set[str]] = {}  # Classic: see `_withdraw`
        self._loading = False  # between `begin_load` and the end of the load (`finish_load`)
        # Reading and writing go through the alias, except while re-indexing for a new model: then
        # into the model's own index, beside the one the alias serves, until `activate` swaps them.
        self.target = self.physical_name if reindex else alias
        # The index and its alias are made (or checked) before the first operation: at once, or, with
        # `set_up_on_first_use` (the deployed functions), by the first request, inside its deadline, so
        # a cluster that cannot be reached fails that request alone (`first_use`).
        step = (lambda: self.create_physical(self.physical_name)) if reindex else self.ensure
        self._set_up = FirstUse(step, clock)
        if not set_up_on_first_use:
            self._set_up.ensure()

    # -- the index and its alias
    @property
    def physical_name(self) -> str:
        return f"{self.alias}-{re.sub(r'[^a-z0-9_-]+', '-', self.model_id.lower()).strip('-')}"

    def ensure(self) -> None:
        """Create the model's index and point the alias at it if there is none; refuse a mismatch."""
        found = self._call(lambda: self._os.indices.get_alias(name=self.alias, ignore=[404]))
        if found and "error" not in found and "status" not in found:
            (current,) = found
            self._check_meta(current)
            return
        self.create_physical(self.physical_name)
        self.activate(self.physical_name)  # finishes a load a backfill made before any alias existed

    def create_physical(self, name: str) -> None:
        if self._call(lambda: self._os.indices.exists(index=name)):
            return
        body = index_body(self.dim, self.model_id, self.options, self.deployment)
        # Cold-starting functions race to create it; the index name holds the model id, so the
        # winner's index is the same one.
        with contextlib.suppress(IndexAlreadyExists):
            try:
                self._call(lambda: self._os.indices.create(index=name, body=body))
            except OpenSearchRefused as exc:
                if isinstance(exc, IndexAlreadyExists) or self.mode != "serverless":
                    raise
                # The two generations accept different mappings, and nothing on the data plane says
                # which one this collection is.
                raise ConfigurationError(
                    f"the Serverless collection refused the {self.deployment} index mapping ({exc}): "
                    "check that VS_OPENSEARCH_GENERATION names the collection's generation"
                ) from exc

    @property
    def reindexing(self) -> bool:
        """Writing into the model's own index, beside the one the alias serves (`reindex=True`)."""
        return self.target != self.alias

    def activate(self, name: str) -> None:
        """Point the alias at `name`, atomically removing it from any other index; a bulk load into
        `name` that is not finished yet (its refresh is off: this process's, or an interrupted one's)
        is finished first (`finish_load`), so readers never meet an index without refresh or replicas."""
        if self.mode == "managed" and self._refresh_off(name):
            self.finish_load(name)
        self._point_alias(name)

    def _point_alias(self, name: str) -> None:
        found = self._call(lambda: self._os.indices.get_alias(name=self.alias, ignore=[404]))
        actions: list[dict[str, Any]] = [
            {"remove": {"index": old, "alias": self.alias}}
            for old in (found or {})
            if old not in ("error", "status") and old != name
        ]
        actions.append({"add": {"index": name, "alias": self.alias}})
        self._call(lambda: self._os.indices.update_aliases(body={"actions": actions}))

    def _meta(self, index: str) -> dict[str, Any]:
        mapping = self._call(lambda: self._os.indices.get_mapping(index=index))
        return mapping[index]["mappings"].get("_meta", {})

    def _check_meta(self, index: str) -> None:
        meta = self._meta(index)
        if meta.get("dimension") != self.dim or meta.get("model_id") != self.model_id:
            raise ConfigurationError(
                f"OpenSearch index {index} (alias {self.alias}) holds model {meta.get('model_id')!r} "
                f"of dimension {meta.get('dimension')}, but the running model is {self.model_id!r} of "
                f"dimension {self.dim}: re-index with `visual-search backfill` into a new index"
            )

    # -- bulk loading a new index (backfills)
    def begin_load(self) -> bool:
        """Prepare the index this adapter re-indexes into for a bulk load: refresh off and no replica
        (Serverless manages both itself), and writes stop waiting for a refresh until the load is
        finished. False, and nothing changed, when readers already use that index (the alias points at
        it: a backfill run again after `activate`), whose writes keep waiting for their refresh."""
        if not self.reindexing:
            raise ConfigurationError(
                "a bulk load writes into a new index: open the adapter with reindex=True"
            )
        self._set_up.ensure()
        if self._loading:
            return True
        found = self._call(lambda: self._os.indices.get_alias(name=self.alias, ignore=[404]))
        if self.target in (found or {}):
            log.info("%s already serves %s: not bulk loaded", self.target, self.alias)
            return False
        if self.mode == "managed":
            self._put_settings(self.target, LOAD_SETTINGS)
        self._loading = True
        return True

    def bulk_load(self, assets: Iterable[IndexedAsset], tuning: BulkTuning | None = None) -> int:
        """Write `assets` (each once) into the new index as fast as the cluster takes them; returns how
        many were written, all acknowledged. Begins the load if need be (`begin_load`); `activate` (or
        `finish_load`) ends it. Raises ConfigurationError when the adapter is not re-indexing or readers
        already use its index, and as `upsert` raises when writes fail. Documents are keyed by asset id
        wherever `upsert` keys them; on a Classic collection, which makes its own ids, those are not
        returned: a writer that records them (the ingest ledger) uses `upsert`.

        No caller in the service (a backfill writes through the ingest pipeline's batches): it is for
        whoever already holds vectors; bench/opensearch_bulk.py measures it."""
        from visual_search.index import opensearch_bulk

        if not self.begin_load():
            raise ConfigurationError(
                f"{self.target} already serves {self.alias}: bulk loads are for a new index"
            )
        tuning = tuning or opensearch_bulk.BulkTuning()
        pending = opensearch_bulk.actions(assets, self.dim, self.target, with_ids=self._keyed)
        return opensearch_bulk.load(
            self._os,
            pending,
            tuning,
            self._attempts,
            lambda attempt: self._back_off(attempt, self._clock() + self._budget_s),
        )

    def finish_load(self, name: str | None = None) -> float:
        """End a bulk load into `name` (the index this adapter re-indexes into by default): refresh,
        force merge to MERGED_SEGMENTS, then the configured refresh interval and replicas. Returns the
        force merge's seconds (0 on Serverless, which merges by itself and refuses the call)."""
        name = name or self.target
        if self.mode != "managed":
            self._loading = False
            return 0.0
        self._call(lambda: self._os.indices.refresh(index=name, request_timeout=MERGE_TIMEOUT_S))
        started = self._clock()
        self._call(
            lambda: self._os.indices.forcemerge(
                index=name, max_num_segments=MERGED_SEGMENTS, request_timeout=MERGE_TIMEOUT_S
            )
        )
        merge_s = self._clock() - started
        restored = {
            "refresh_interval": self.options.refresh_interval,
            "number_of_replicas": self.options.replicas,
        }
        self._put_settings(name, restored)  # refresh_interval None: back to OpenSearch's default
        self._loading = False  # only now: until refresh is back on, a wait_for would never return
        log.info(
            "bulk load into %s finished: force merge to %d segment(s) took %.1f s",
            name,
            MERGED_SEGMENTS,
            merge_s,
        )
        return merge_s

    def _put_settings(self, name: str, settings: dict[str, Any]) -> None:
        self._call(lambda: self._os.indices.put_settings(index=name, body={"index": settings}))

    def _refresh_off(self, name: str) -> bool:
        found = self._call(lambda: self._os.indices.get_settings(index=name, name="index.refresh_interval"))
        # A node leaves out an index none of whose settings match: {} when the interval is the default.
        settings = (found.get(name) or {}).get("settings", {})
        return settings.get("index", {}).get("refresh_interval") == "-1"

    # -- writes
    def upsert(self, assets: Sequence[IndexedAsset], known: DocIds | None = None) -> DocIds:
        """Index these assets. On a domain or a NextGen collection, keyed by asset id: returns {}. On a
        Classic collection, which generates each document's id: the asset's previous documents (those in
        `known`, and those a term query on asset_id finds) are deleted first, and the new ids are
        returned for the ledger."""
        latest = {asset.asset_id: asset for asset in assets}  # the last of repeated ids wins
        vectors = [check_asset(asset, self.dim) for asset in latest.values()]  # all valid, or none sent
        if not latest:
            return {}
        self._set_up.ensure()
        lines: list[dict[str, Any]] = []
        for asset, vector in zip(latest.values(), vectors, strict=True):
            action = {"_index": self.target} | ({"_id": asset.asset_id} if self._keyed else {})
            lines += [{"index": action}, to_source(asset, vector)]
        if self._keyed:
            self._bulk(lines)
            return {}
        self._delete_documents(list(latest), known)
        results: list[dict[str, Any]] = [{} for _ in latest]
        try:
            self._bulk(lines, results=results)
        except (DependencyUnavailable, OpenSearchRefused):
            self._withdraw({a: r["_id"] for a, r in zip(latest, results, strict=True) if r.get("_id")})
            raise
        return {asset_id: result["_id"] for asset_id, result in zip(latest, results, strict=True)}

    def delete(self, asset_ids: Sequence[str], known: DocIds | None = None) -> None:
        """Remove these assets; on a Classic collection, also the documents `known` names for them."""
        if not asset_ids:
            return
        self._set_up.ensure()
        if self._keyed:
            self._bulk([{"delete": {"_index": self.target, "_id": a}} for a in asset_ids], missing_ok=True)
        else:
            self._delete_documents(list(asset_ids), known)

    def _delete_documents(self, asset_ids: list[str], known: DocIds | None) -> None:
        """Delete by id both the documents the ledger recorded for these assets - found even before the
        collection's refresh makes them searchable - and those a term query finds (written before ids
        were recorded, or by a write whose ledger record failed)."""
        ids = {hit["_id"] for hit in self._find(asset_ids, with_source=False)}
        ids |= {known[a] for a in asset_ids if known and known.get(a)}
        ids |= {i for a in asset_ids for i in self._strays.get(a, ())}
        if ids:
            self._bulk([{"delete": {"_index": self.target, "_id": i}} for i in sorted(ids)], missing_ok=True)
        for a in asset_ids:
            self._strays.pop(a, None)

    def _withdraw(self, written: dict[str, str]) -> None:
        """Delete what a failed upsert wrote (asset id -> doc id): no ledger will name it, and its retry
        may come before the refresh that lets a term query find it. What cannot be deleted now is kept
        in memory and deleted with the asset's next replace or delete in this process (the batch's
        message-by-message retry); a retry elsewhere, after the queue's visibility timeout, finds it by
        the term query."""
        if not written:
            return
        try:
            self._bulk(
                [{"delete": {"_index": self.target, "_id": i}} for i in written.values()], missing_ok=True
            )
        except (DependencyUnavailable, OpenSearchRefused) as exc:
            log.warning("%d document(s) of a failed write not withdrawn yet: %s", len(written), exc)
            for asset_id, doc_id in written.items():
                if len(self._strays) < MAX_STRAYS:
                    self._strays.setdefault(asset_id, set()).add(doc_id)

    def _bulk(
        self,
        lines: list[dict[str, Any]],
        missing_ok: bool = False,
        results: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Send; retry the items that failed for a retryable reason; raise for the rest. Returns each
        action's result (with the document's `_id`), in the order of the actions; `results`, when given,
        is filled in as items succeed, so a caller still knows what landed when this raises."""
        step = 2 if "index" in lines[0] else 1
        actions = [lines[n : n + step] for n in range(0, len(lines), step)]
        results = results if results is not None else [{} for _ in actions]
        pending = list(range(len(actions)))
        # During a load nobody reads the index, and its refresh is off: a wait_for would never return.
        options = {"refresh": "wait_for"} if self.mode == "managed" and not self._loading else {}
        deadline = self._clock() + budget(self._budget_s)
        for attempt in range(self._attempts):
            body = [line for n in pending for line in actions[n]]
            response = self._call(lambda body=body: self._os.bulk(body=body, **options), deadline)
            retry: list[int] = []
            for n, item in zip(pending, response["items"], strict=True):
                (result,) = item.values()
                status = int(result.get("status", 500))
                if status < 300 or (missing_ok and status == 404):
                    results[n] = result
                elif status in RETRYABLE:
                    retry.append(n)
                else:
                    raise OpenSearchRefused(status, error_types(result), f"a document: {result.get('error')}")
            if not retry:
                return results
            pending = retry
            if not self._back_off(attempt, deadline):
                break
        raise DependencyUnavailable(f"OpenSearch kept refusing {len(pending)} write(s) (throttled)")

    # -- reads
    def get(self, asset_id: str) -> IndexedAsset | None:
        hits = self._find([asset_id], with_source=True)
        return from_source(hits[0]["_source"]) if hits else None

    def count(self) -> int:
        self._set_up.ensure()
        return int(self._call(lambda: self._os.count(index=self.target))["count"])

    def _find(self, asset_ids: list[str], with_source: bool) -> list[dict[str, Any]]:
        self._set_up.ensure()
        body = {
            "size": max(len(asset_ids) * 2, 10),  # a Classic replace may briefly leave two
            "query": {"terms": {"asset_id": asset_ids}},
            "_source": with_source,
        }
        return self._call(lambda: self._os.search(index=self.target, body=body))["hits"]["hits"]

    def open_snapshot(self) -> str | None:
        """A point in time on the served index, kept alive `point_in_time_s` between pages; None when
        it is off, or when the engine refuses one: pages then stay ordered by (score, asset_id) alone."""
        if not self.point_in_time_s:
            return None
        self._set_up.ensure()
        keep_alive = f"{self.point_in_time_s}s"
        try:
            created = self._call(
                lambda: self._os.create_pit(index=self.target, params={"keep_alive": keep_alive})
            )
        except OpenSearchRefused as exc:
            log.warning("no point in time for this search (it pages without one): %s", exc)
            return None
        return created["pit_id"]

    def close_snapshot(self, snapshot: str) -> None:
        """Delete the point in time; a failure is logged, not raised (it expires by itself)."""
        try:
            self._call(lambda: self._os.delete_pit(body={"pit_id": [snapshot]}))
        except (DependencyUnavailable, ConfigurationError, OpenSearchRefused) as exc:
            log.info("point in time not deleted (it expires after its keep-alive): %s", exc)

    def knn_page(
        self,
        vector: np.ndarray,
        size: int,
        after: SearchAfter | None = None,
        filters: Filters | None = None,
        min_score: float | None = None,
        max_hits: int = 1000,
        snapshot: str | None = None,
        depth: int = 0,
    ) -> list[Hit]:
        check_page_args(size, max_hits)
        query = check_vector(vector, self.dim)
        space = self.options.space_type
        # Lucene answers max(k, ef_search) hits and several shards k each, so k does not cap a walk at
        # max_hits: the depth served so far does.
        size = min(size, max_hits - depth)
        if size < 1:
            return []
        self._set_up.ensure()
        clauses = filter_clauses(filters)
        k = page_k(depth, size, max_hits, self.options, filtered=bool(clauses))
        body = knn_body(query, size, k, clauses, self.options, after=after, min_score=min_score)
        response = self._search_snapshot(body, snapshot) if snapshot else None
        if response is None:
            # Without a point in time, every page of one search asks for the same copies of the shards
            # (primary and replica hold different graphs and segments), so no hit repeats or is skipped
            # because two pages were answered by different copies.
            params = {"preference": preference_for(query, clauses)} if self.mode == "managed" else {}
            try:
                response = self._call(lambda: self._os.search(index=self.target, body=body, params=params))
            except OpenSearchRefused:
                self._refuse_if_switched()
                raise
        return [from_hit(h, space) for h in response["hits"]["hits"]]

    def _refuse_if_switched(self) -> None:
        """ModelSwitched when the alias now names another model's index: a model switch moved it under
        this reader, and that index refuses its query vectors (another dimension). A reader's alias is
        checked when it sets up (`ensure`); this runs only once a query is refused."""
        if self.reindexing:  # reads its own index, which no switch moves
            return
        found = self._call(lambda: self._os.indices.get_alias(name=self.alias, ignore=[404]))
        for index in found or {}:
            if index in ("error", "status"):  # a 404's body: no alias at all
                continue
            served = self._meta(index).get("model_id")
            if served and served != self.model_id:
                raise ModelSwitched(str(served), self.model_id)

    def _search_snapshot(self, body: dict[str, Any], snapshot: str) -> dict[str, Any] | None:
        """Search in the point in time; None when it has expired (the caller then reads the live index,
        still ordered and without repeats thanks to search_after)."""
        pit = {"id": snapshot, "keep_alive": f"{max(self.point_in_time_s, 1)}s"}
        try:
            return self._call(lambda: self._os.search(body={**body, "pit": pit}))
        except PointInTimeExpired:
            log.info("point in time expired: the next page reads the live index")
            return None

    def iter_assets(self) -> Iterator[str]:
        """Every asset id, by `search_after` over asset_id. No caller in the service: the node
        conformance tests count with it and bench/opensearch.py times the duplicates report over it."""
        self._set_up.ensure()
        after: list[str] | None = None
        while True:
            body: dict[str, Any] = {"size": 1000, "sort": ["asset_id"], "_source": ["asset_id"]}
            if after:
                body["search_after"] = after
            hits = self._call(lambda b=body: self._os.search(index=self.target, body=b))["hits"]["hits"]
            if not hits:
                return
            for hit in hits:
                yield hit["_source"]["asset_id"]
            after = [hits[-1]["_source"]["asset_id"]]

    def close(self) -> None:
        self._os.close()

    # -- transport errors and the time budget
    def _call(self, request: Callable[[], Any], deadline: float | None = None) -> Any:
        """One request, retried on throttling, server errors and timeouts until the attempts or the
        operation's time budget run out (then DependencyUnavailable); a refusal raises its typed error
        (`opensearch_errors.translate`)."""
        from opensearchpy.exceptions import ConnectionError as OSConnectionError
        from opensearchpy.exceptions import TransportError

        deadline = self._clock() + budget(self._budget_s) if deadline is None else deadline
        for attempt in range(self._attempts):
            try:
                return complete(request())
            except OSConnectionError as exc:  # timeouts included
                reason = f"cannot reach OpenSearch: {exc.error}"
            except TransportError as exc:
                status = exc.status_code
                if not isinstance(status, int) or status not in RETRYABLE:
                    raise translate(int(status or 0), exc.info, str(exc.error)) from None
                reason = f"OpenSearch answered {status}"
            if attempt + 1 == self._attempts or not self._back_off(attempt, deadline):
                break
        raise DependencyUnavailable(reason)

    def _back_off(self, attempt: int, deadline: float) -> bool:
        """Sleep before the next attempt (full jitter, capped); False if that would pass the deadline."""
        pause = random.uniform(0, min(2.0, 0.05 * 2**attempt))
        if self._clock() + pause >= deadline:
            return False
        self._sleep(pause)
        return True


def complete(response: Any) -> Any:
    """The response, unless it is a search answered by only some shards or cut short by a timeout: then
    DependencyUnavailable, since a partial page would silently skip hits the next page cannot bring back."""
    if isinstance(response, dict) and "hits" in response:
        failed = (response.get("_shards") or {}).get("failed", 0)
        if failed or response.get("timed_out"):
            raise DependencyUnavailable(
                f"OpenSearch answered a search partially ({failed} shard(s) failed, timed out: "
                f"{bool(response.get('timed_out'))})"
            )
    return response


def preference_for(query: np.ndarray, clauses: list[dict[str, Any]]) -> str:
    """A `preference` string that is the same for every page of one search (same query vector and
    filters, as the cursor binds them) and differs between searches, so load still spreads."""
    digest = hashlib.sha256(query.tobytes())
    digest.update(json.dumps(clauses, sort_keys=True).encode())
    return "vs-" + digest.hexdigest()[:16]


def connect(
    endpoint: str,
    auth: Literal["sigv4", "basic", "none"] = "sigv4",
    mode: Mode = "managed",
    region: str | None = None,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 5.0,
    connection_class: Any = None,
) -> Any:
    """An opensearch-py client: SigV4 from the function's role (service `es` for a domain, `aoss` for
    Serverless), basic auth or none for a self-managed cluster; TLS always verified."""
    from opensearchpy import OpenSearch, RequestsHttpConnection

    http_auth: Any = None
    if auth == "sigv4":
        import boto3
        from opensearchpy import AWSV4SignerAuth

        session = boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigurationError("no AWS credentials for SigV4 signing of OpenSearch requests")
        http_auth = AWSV4SignerAuth(
            credentials, region or session.region_name, "aoss" if mode == "serverless" else "es"
        )
    elif auth == "basic":
        if not (username and password):
            raise ConfigurationError("basic auth to OpenSearch needs a username and a password")
        http_auth = (username, password)
    return OpenSearch(
        hosts=[endpoint],
        http_auth=http_auth,
        use_ssl=endpoint.startswith("https://"),
        verify_certs=True,
        ssl_show_warn=True,
        timeout=timeout,
        max_retries=0,  # OpenSearchIndex retries, within its time budget
        connection_class=connection_class or RequestsHttpConnection,
    )
