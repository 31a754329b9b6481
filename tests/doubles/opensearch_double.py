"""A strict in-memory OpenSearch, plugged into opensearch-py as its connection class, so the adapter's
real client code (serialisation, NDJSON bulk, error mapping) runs unchanged.

Every request is first checked against OpenSearch's published API specification (`opensearch_spec`):
path, method, query parameters and JSON body. Then the double implements the subset the adapter uses —
index create/exists/mapping, aliases, `_bulk`, `_search` (`knn` with filter, `terms`, `match_all`;
sort, `search_after`, `min_score`, `_source`), `_count` — and rejects what OpenSearch would reject:
unknown keys in a k-NN query, k over 10,000, a vector of the wrong dimension, fields outside a strict
mapping, `search_after` not matching the sort. In `serverless` mode it also rejects what an OpenSearch
Serverless vector collection rejects (AWS's pages and quotes: docs/scaling.md), per `generation`:
- both: `refresh` on writes, `_refresh`, `_forcemerge`, and the settings Serverless manages itself
  (shards, replicas, refresh interval). Point in time is served
  (AWS lists its APIs for Serverless); `refuse_point_in_time` makes it refuse one instead.
- `classic`: a custom `_id` on index (with the answer users report, AWS documents only the refusal),
  an engine other than faiss/nmslib or a method other than HNSW (AWS: "support only the HNSW algorithm
  with Faiss", "don't support the Apache Lucene ANN engine"; the error text is the double's own).
- `nextgen`: `engine` in a field's method and `mode` in a field, with the 400 users report (AWS's page
  only says NextGen does "not require" them); a `compression_level` outside the 1x/2x/8x/16x/32x AWS
  lists (the error text is the double's own). Custom ids are accepted, and a search that does not name
  `_source` leaves vector fields out of it, as AWS documents.

Index settings a bulk load changes are kept (`PUT _settings`; a null value resets one) and force merges
recorded (`Index.merges`). While an index's `refresh_interval` is -1, searches and counts read it as of
its last refresh (`_refresh`, or the interval set again), as on a node; a write with `refresh=wait_for`
into it is refused here, where a node would wait until something else refreshes it - possibly for ever.

`refresh_lag=True` models Serverless' own refresh (60 s on classic collections, 10 s on NextGen, per
AWS): searches and counts read the index as it was at the last `refresh()`, while writes and deletes by
`_id` apply to the documents at once - as in Lucene, where a search sees a write, or a delete, only
after a refresh. Without it, every write is searchable at once.

k-NN here is exact (brute force), with OpenSearch's score per space type; a real cluster's HNSW is
approximate. Faults can be injected: whole requests answered 429, bulk items answered 429/500 — the
next N, or at a seeded random rate — and searches answered by only some shards (`injected` counts what
was injected); `reachable=False` makes every request fail to connect, as to a node that is down.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import numpy as np
from opensearchpy.connection import Connection
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from tests.doubles.opensearch_spec import SpecViolation, check

KNN_KEYS = {
    "vector",
    "k",
    "filter",
    "min_score",
    "max_distance",
    "method_parameters",
    "rescore",
    "expand_nested_docs",
    "boost",  # accepted by every query, as on a real node
    "_name",
}
SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


class Rejected(Exception):
    """An error answer. `root` is the root cause's type when OpenSearch wraps it in another (as a
    search's `search_phase_execution_exception` wraps the shards' failures)."""

    def __init__(self, status: int, kind: str, reason: str, root: str | None = None):
        super().__init__(reason)
        self.status, self.kind, self.reason, self.root = status, kind, reason, root

    def body(self) -> dict[str, Any]:
        """OpenSearch's error body: the root causes, then the error itself."""
        cause = {"type": self.root or self.kind, "reason": self.reason}
        error: dict[str, Any] = {"root_cause": [cause], "type": self.kind, "reason": self.reason}
        if self.root:
            error |= {"reason": "all shards failed", "phase": "query", "grouped": True,
                      "failed_shards": [{"shard": 0, "index": "?", "reason": cause}]}  # fmt: skip
        return {"error": error, "status": self.status}


@dataclass
class Index:
    body: dict[str, Any]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)  # what writes and deletes by _id see
    lagging: bool = False  # searches read `refreshed`, the documents as of the last refresh
    refreshed: dict[str, dict[str, Any]] = field(default_factory=dict)
    merges: list[int] = field(default_factory=list)  # max_num_segments of each force merge asked

    @property
    def searchable(self) -> dict[str, dict[str, Any]]:
        return self.refreshed if self.lagging else self.docs

    def refresh(self) -> None:
        self.refreshed = dict(self.docs)

    @property
    def properties(self) -> dict[str, Any]:
        return self.body["mappings"]["properties"]

    @property
    def settings(self) -> dict[str, Any]:
        """The index's settings as created and updated (`index.` keys, nested form)."""
        return self.body["settings"]["index"]

    @property
    def refresh_off(self) -> bool:
        return str(self.settings.get("refresh_interval")) == "-1"


@dataclass
class FakeOpenSearch:
    mode: str = "managed"
    generation: str = "nextgen"  # of a Serverless collection: "classic" or "nextgen" (AWS's default today)
    indices: dict[str, Index] = field(default_factory=dict)
    aliases: dict[str, set[str]] = field(default_factory=dict)  # alias -> indices
    requests: list[tuple[str, str, dict[str, Any], Any]] = field(default_factory=list)
    bulk_bytes: list[int] = field(default_factory=list)  # each _bulk request's body, in bytes
    throttle_requests: int = 0  # answer this many next requests with 429
    bulk_item_faults: list[int] = field(default_factory=list)  # statuses for the next bulk items (0: none)
    throttle_rate: float = 0.0  # this share of requests answered 429
    partial_searches: int = 0  # answer this many next searches with one failed shard (200, fewer hits)
    bulk_item_fault_rate: float = 0.0  # this share of bulk items answered 503
    seed: int = 0
    injected: Counter = field(default_factory=Counter)
    pits: dict[str, Index] = field(default_factory=dict)  # point-in-time id -> frozen copy of the index
    refresh_lag: bool = False  # searches see writes only after `refresh()` (Serverless' own refresh)
    unsearchable_deletes: int = 0  # documents deleted by _id before a refresh made them searchable
    refuse_point_in_time: bool = False  # answer point-in-time requests 400, as an engine without them
    reachable: bool = True  # False: every request fails to connect, as to a node that is down

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()  # one request at a time, as parallel bulk requests arrive together

    def refresh(self) -> None:
        """Make every write so far searchable, as Serverless' periodic refresh does."""
        for index in self.indices.values():
            index.refresh()

    def connection_class(self) -> type[Connection]:
        cluster = self

        class FakeConnection(Connection):
            def perform_request(
                self, method, url, params=None, body=None, timeout=None, ignore=(), headers=None
            ):
                if not cluster.reachable:
                    cluster.injected["unreachable"] += 1
                    raise OSConnectionError("N/A", "connection refused (injected: the node is down)", None)
                params = {k: v.decode() if isinstance(v, bytes) else v for k, v in (params or {}).items()}
                with cluster._lock:
                    status, payload = cluster.handle(method, url, params, body)
                raw = "" if payload is None else json.dumps(payload)
                if not 200 <= status < 300 and status not in ignore:
                    # As a real node answers: JSON, so opensearch-py parses the error body (`exc.info`)
                    # and keeps only the top-level type as `exc.error`.
                    self._raise_error(status, raw, "application/json")
                return status, {"content-type": "application/json"}, raw

            def close(self) -> None:
                """Nothing to release."""

        return FakeConnection

    # -- dispatch
    def handle(self, method: str, url: str, params: dict[str, Any], raw: Any) -> tuple[int, Any]:
        body = self._parse_body(url, raw)
        self.requests.append((method, unquote(url), params, body))
        if "_bulk" in url and raw:
            self.bulk_bytes.append(len(raw.encode() if isinstance(raw, str) else raw))
        try:
            operation = check(method, url, params, None if "_bulk" in url else _as_specified(url, body))
            if self.throttle_requests > 0 or self._rng.random() < self.throttle_rate:
                self.throttle_requests = max(0, self.throttle_requests - 1)
                self.injected["throttled"] += 1
                raise Rejected(429, "too_many_requests", "throttled (injected)")
            return 200, self._route(
                method, operation.template, unquote(url).strip("/").split("/"), params, body
            )
        except SpecViolation as exc:
            return 400, Rejected(400, "illegal_argument_exception", str(exc)).body()
        except Rejected as exc:
            return exc.status, exc.body()

    @staticmethod
    def _parse_body(url: str, raw: Any) -> Any:
        if raw is None or raw == b"" or raw == "":
            return None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        if "_bulk" in url:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)

    def _route(self, method: str, template: str, parts: list[str], params: dict[str, Any], body: Any) -> Any:
        if "refresh" in params and self.mode == "serverless":
            raise Rejected(400, "illegal_argument_exception", "refresh is not supported by Serverless")
        if params.get("refresh") == "wait_for" and template == "/_bulk":
            self._refuse_endless_wait(body or [])
        routes = {
            ("HEAD", "/{index}"): lambda: self._exists(parts[0]),
            ("PUT", "/{index}"): lambda: self._create(parts[0], body),
            ("GET", "/_alias/{name}"): lambda: self._get_alias(parts[1]),
            ("POST", "/_aliases"): lambda: self._update_aliases(body),
            ("GET", "/{index}/_mapping"): lambda: self._mapping(parts[0]),
            ("POST", "/_bulk"): lambda: self._bulk(body),
            ("POST", "/{index}/_search"): lambda: self._search(parts[0], body or {}),
            ("POST", "/_search"): lambda: self._search_pit(body or {}),
            ("POST", "/{index}/_search/point_in_time"): lambda: self._create_pit(parts[0], params),
            ("DELETE", "/_search/point_in_time"): lambda: self._delete_pits(body or {}),
            ("GET", "/{index}/_search"): lambda: self._search(parts[0], body or {}),
            ("POST", "/{index}/_count"): lambda: {"count": len(self._resolve(parts[0]).searchable)},
            ("GET", "/{index}/_count"): lambda: {"count": len(self._resolve(parts[0]).searchable)},
            ("PUT", "/{index}/_settings"): lambda: self._put_settings(parts[0], body or {}),
            ("GET", "/{index}/_settings/{name}"): lambda: self._get_settings(parts[0], parts[2]),
            ("POST", "/{index}/_refresh"): lambda: self._refresh(parts[0]),
            ("POST", "/{index}/_forcemerge"): lambda: self._force_merge(parts[0], params),
        }
        if template.endswith(("/_refresh", "/_forcemerge")) and self.mode == "serverless":
            raise Rejected(404, "not_found", f"{template} is not supported by OpenSearch Serverless")
        if "point_in_time" in template and self.refuse_point_in_time:
            raise Rejected(400, "illegal_argument_exception", "point in time is not supported (injected)")
        handler = routes.get((method, template))
        if handler is None:
            raise Rejected(
                400, "unsupported_by_double", f"{method} {template} is not implemented by the double"
            )
        return handler()

    # -- indices and aliases
    def _exists(self, name: str) -> None:
        if name not in self.indices:
            raise Rejected(404, "index_not_found_exception", name)

    def _create(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name in self.indices or name in self.aliases:
            raise Rejected(400, "resource_already_exists_exception", name)
        settings = body["settings"]["index"]
        if self.mode == "serverless" and ({"number_of_shards", "number_of_replicas"} & set(settings)):
            raise Rejected(400, "illegal_argument_exception", "shards and replicas are managed by Serverless")
        vector = next(p for p in body["mappings"]["properties"].values() if p.get("type") == "knn_vector")
        if settings.get("knn") is not True or not 1 <= vector["dimension"] <= 16_000:
            raise Rejected(400, "mapper_parsing_exception", "knn_vector needs index.knn and a dimension")
        if self.mode == "serverless":
            (_check_nextgen_vector if self.generation == "nextgen" else _check_classic_vector)(vector)
        self.indices[name] = Index(body, lagging=self.refresh_lag)
        return {"acknowledged": True, "index": name}

    def _get_alias(self, name: str) -> dict[str, Any]:
        if not self.aliases.get(name):
            raise Rejected(404, "alias_missing", f"alias [{name}] missing")
        return {index: {"aliases": {name: {}}} for index in sorted(self.aliases[name])}

    def _update_aliases(self, body: dict[str, Any]) -> dict[str, Any]:
        staged = {alias: set(indices) for alias, indices in self.aliases.items()}
        for action in body["actions"]:
            ((verb, spec),) = action.items()
            if spec["index"] not in self.indices:
                raise Rejected(404, "index_not_found_exception", spec["index"])
            members = staged.setdefault(spec["alias"], set())
            (members.add if verb == "add" else members.discard)(spec["index"])
        self.aliases = staged  # all actions or none: the swap is atomic
        return {"acknowledged": True}

    def _put_settings(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._resolve(name)
        changes = dict(body.get("index") or {})
        changes |= {k.removeprefix("index."): v for k, v in body.items() if k != "index"}
        managed = {"refresh_interval", "number_of_replicas", "number_of_shards"} & set(changes)
        if managed and self.mode == "serverless":
            raise Rejected(400, "illegal_argument_exception", f"{sorted(managed)} are managed by Serverless")
        if "number_of_shards" in changes:
            raise Rejected(
                400, "illegal_argument_exception", "can't update non dynamic settings [number_of_shards]"
            )
        was_off = index.refresh_off
        for key, value in changes.items():
            if value is None:
                index.settings.pop(key, None)
            else:
                index.settings[key] = value
        if index.refresh_off and not was_off:
            index.refresh()  # what was searchable stays so; later writes wait for a refresh
            index.lagging = True
        elif was_off and not index.refresh_off:
            index.refresh()
            index.lagging = self.refresh_lag
        return {"acknowledged": True}

    def _get_settings(self, name: str, wanted: str) -> dict[str, Any]:
        self._exists(name)
        key = wanted.removeprefix("index.")
        found = self.indices[name].settings
        # As a node answers: an index none of whose settings match is left out.
        return {name: {"settings": {"index": {key: str(found[key])}}}} if key in found else {}

    def _refresh(self, name: str) -> dict[str, Any]:
        self._resolve(name).refresh()
        return {"_shards": SHARDS}

    def _force_merge(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        self._resolve(name).merges.append(int(params.get("max_num_segments", -1)))
        return {"_shards": SHARDS}

    def _refuse_endless_wait(self, lines: list[dict[str, Any]]) -> None:
        """A node answers a wait_for write once a refresh makes it searchable: never, for an index
        whose refresh is off, unless something else refreshes it."""
        n = 0
        while n < len(lines):
            ((verb, meta),) = lines[n].items()
            n += 2 if verb == "index" else 1
            index = self.indices.get(meta["_index"]) or self._alias_target(meta["_index"])
            if index is not None and index.refresh_off:
                raise Rejected(
                    400,
                    "unsupported_by_double",
                    f"refresh=wait_for into {meta['_index']}, whose refresh is off",
                )

    def _mapping(self, name: str) -> dict[str, Any]:
        self._exists(name)
        return {name: {"mappings": self.indices[name].body["mappings"]}}

    def _alias_target(self, name: str) -> Index | None:
        members = self.aliases.get(name) or set()
        return self.indices[next(iter(members))] if len(members) == 1 else None

    def _resolve(self, name: str) -> Index:
        if name in self.indices:
            return self.indices[name]
        members = self.aliases.get(name) or set()
        if len(members) != 1:
            raise Rejected(
                404 if not members else 400, "index_not_found_exception", f"no single index for {name}"
            )
        return self.indices[next(iter(members))]

    # -- writes
    def _bulk(self, lines: list[dict[str, Any]]) -> dict[str, Any]:
        items, n = [], 0
        while n < len(lines):
            ((verb, meta),) = lines[n].items()
            source = lines[n + 1] if verb == "index" else None
            n += 2 if verb == "index" else 1
            fault = (self.bulk_item_faults.pop(0) if self.bulk_item_faults else 0) or None
            if fault is None and self._rng.random() < self.bulk_item_fault_rate:
                fault = 503
            if fault is not None:
                self.injected[f"bulk {verb} {fault}"] += 1
            items.append({verb: self._bulk_item(verb, meta, source, fault)})
        return {
            "took": 1,
            "errors": any(next(iter(i.values()))["status"] >= 300 for i in items),
            "items": items,
        }

    def _bulk_item(self, verb: str, meta: dict[str, Any], source: Any, fault: int | None) -> dict[str, Any]:
        if fault is not None:
            return {"status": fault, "error": {"type": "injected", "reason": f"injected {fault}"}}
        try:
            index = self._resolve(meta["_index"])
            if verb == "index":
                if "_id" in meta and self.mode == "serverless" and self.generation == "classic":
                    raise Rejected(
                        400,
                        "illegal_argument_exception",
                        "Document ID is not supported in create/index operation request",
                    )
                self._check_document(index, source)
                doc_id = meta.get("_id") or uuid.uuid4().hex
                index.docs[doc_id] = source
                return {"_id": doc_id, "status": 201, "result": "created"}
            if verb == "delete":
                found = index.docs.pop(meta["_id"], None)
                if found is not None and index.lagging and meta["_id"] not in index.refreshed:
                    self.unsearchable_deletes += 1
                return {"_id": meta["_id"], "status": 200 if found else 404}
            raise Rejected(400, "illegal_argument_exception", f"bulk action {verb} not used by the adapter")
        except Rejected as exc:
            return {"status": exc.status, "error": {"type": exc.kind, "reason": exc.reason}}

    @staticmethod
    def _check_document(index: Index, source: dict[str, Any]) -> None:
        unknown = set(source) - set(index.properties)
        if unknown and index.body["mappings"].get("dynamic") == "strict":
            raise Rejected(400, "strict_dynamic_mapping_exception", f"unknown fields {sorted(unknown)}")
        for name, prop in index.properties.items():
            if prop.get("type") == "knn_vector" and len(source.get(name) or []) != prop["dimension"]:
                raise Rejected(
                    400, "mapper_parsing_exception", f"vector dimension must be {prop['dimension']}"
                )

    # -- point in time
    def _create_pit(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        if "keep_alive" not in params:
            raise Rejected(400, "action_request_validation_exception", "keep_alive is missing")
        live = self._resolve(name)
        pit_id = uuid.uuid4().hex * 4  # real ids are long base64 strings
        self.pits[pit_id] = Index(live.body, docs=dict(live.searchable))
        return {"pit_id": pit_id, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "creation_time": 0}  # fmt: skip

    def _search_pit(self, body: dict[str, Any]) -> dict[str, Any]:
        if "pit" not in body:
            raise Rejected(400, "unsupported_by_double", "a search without an index needs a pit")
        frozen = self.pits.get(body["pit"]["id"])
        if frozen is None:  # wrapped, as a real node does: the missing context is only the root cause
            raise Rejected(
                404,
                "search_phase_execution_exception",
                "No search context found",
                "search_context_missing_exception",
            )
        return self._search_in(frozen, body)

    def _delete_pits(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("pit_id") or []
        return {"pits": [{"pit_id": i, "successful": self.pits.pop(i, None) is not None} for i in ids]}

    # -- search
    def _search(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        if "pit" in body:
            raise Rejected(400, "illegal_argument_exception", "a search with a pit must not name an index")
        return self._search_in(self._resolve(name), body)

    def _search_in(self, index: Index, body: dict[str, Any]) -> dict[str, Any]:
        scored = self._query(index, body.get("query") or {"match_all": {}})
        if "min_score" in body:
            scored = [(s, i, d) for s, i, d in scored if s >= body["min_score"]]
        sort = body.get("sort") or [{"_score": "desc"}]
        keys = [self._sort_key(entry) for entry in sort]
        scored.sort(key=lambda hit: tuple(k(hit) for k in keys))
        if "search_after" in body:
            if len(body["search_after"]) != len(sort):
                raise Rejected(400, "illegal_argument_exception", "search_after must match the sort fields")
            cursor = self._cursor_key(sort, body["search_after"])
            scored = [hit for hit in scored if tuple(k(hit) for k in keys) > cursor]
        hits = [self._hit(s, i, d, body.get("_source", self._default_source(index)))
                for s, i, d in scored[: body.get("size", 10)]]  # fmt: skip
        shards = dict(SHARDS)
        if self.partial_searches > 0:
            self.partial_searches -= 1
            self.injected["partial search"] += 1
            shards |= {"total": 2, "failed": 1}
        return {
            "took": 1,
            "timed_out": False,
            "_shards": shards,
            "hits": {"total": {"value": len(scored), "relation": "eq"}, "hits": hits},
        }

    def _default_source(self, index: Index) -> Any:
        """What a search that does not name `_source` returns: everything, except on a NextGen
        collection, whose answers leave the vectors out unless asked (AWS: "Optimized search response")."""
        if self.mode == "serverless" and self.generation == "nextgen":
            return {"excludes": [n for n, p in index.properties.items() if p.get("type") == "knn_vector"]}
        return True

    def _query(self, index: Index, query: dict[str, Any]) -> list[tuple[float, str, dict[str, Any]]]:
        ((kind, spec),) = query.items()
        if kind == "match_all":
            return [(1.0, i, d) for i, d in index.searchable.items()]
        if kind == "terms":
            ((field_name, values),) = spec.items()
            docs = index.searchable.items()
            return [(1.0, i, d) for i, d in docs if _matches_any(d.get(field_name), values)]
        if kind == "knn":
            return self._knn(index, spec)
        raise Rejected(400, "unsupported_by_double", f"query {kind} is not implemented by the double")

    def _knn(self, index: Index, spec: dict[str, Any]) -> list[tuple[float, str, dict[str, Any]]]:
        ((field_name, knn),) = spec.items()
        if set(knn) - KNN_KEYS:
            raise Rejected(400, "parsing_exception", f"[knn] unknown field {sorted(set(knn) - KNN_KEYS)}")
        prop = index.properties.get(field_name, {})
        if prop.get("type") != "knn_vector":
            raise Rejected(400, "illegal_argument_exception", f"{field_name} is not a knn_vector field")
        if sum(key in knn for key in ("k", "max_distance", "min_score")) != 1:
            raise Rejected(
                400,
                "illegal_argument_exception",
                "[knn] requires exactly one of k, distance or score to be set",
            )
        if "k" not in knn:
            raise Rejected(400, "unsupported_by_double", "radial search is not implemented by the double")
        k = knn["k"]
        if not isinstance(k, int) or not 1 <= k <= 10_000:
            raise Rejected(400, "illegal_argument_exception", "[knn] k must be between 1 and 10,000")
        _check_method_parameters(knn.get("method_parameters"))
        query = np.asarray(knn["vector"], dtype=np.float32)
        if query.shape != (prop["dimension"],):
            raise Rejected(400, "illegal_argument_exception", "query vector has the wrong dimension")
        allowed = [(i, d) for i, d in index.searchable.items() if _filter(knn.get("filter"), d)]
        # The space type sits in the method or, as AWS's NextGen examples put it, beside it; l2 by default.
        space = prop.get("space_type") or prop.get("method", {}).get("space_type") or "l2"
        scored = [
            (_score(space, np.asarray(d[field_name], dtype=np.float32), query), i, d) for i, d in allowed
        ]
        scored.sort(key=lambda hit: (-hit[0], hit[1]))
        return scored[:k]

    @staticmethod
    def _sort_key(entry: Any):
        name, order = (entry, "asc") if isinstance(entry, str) else next(iter(entry.items()))
        order = order if isinstance(order, str) else order.get("order", "asc")
        sign = -1 if order == "desc" else 1
        if name == "_score":
            return lambda hit: sign * hit[0]
        if sign < 0:
            raise Rejected(400, "unsupported_by_double", "descending keyword sort is not implemented")
        return lambda hit: hit[2].get(name) or ""

    @staticmethod
    def _cursor_key(sort: list[Any], values: list[Any]) -> tuple[Any, ...]:
        key = []
        for entry, value in zip(sort, values, strict=True):
            name, order = (entry, "asc") if isinstance(entry, str) else next(iter(entry.items()))
            order = order if isinstance(order, str) else order.get("order", "asc")
            key.append(-float(value) if name == "_score" and order == "desc" else value)
        return tuple(key)

    @staticmethod
    def _hit(score: float, doc_id: str, source: dict[str, Any], wanted: Any) -> dict[str, Any]:
        hit: dict[str, Any] = {"_id": doc_id, "_score": score, "sort": [score]}
        if wanted is True:
            hit["_source"] = source
        elif isinstance(wanted, list):
            hit["_source"] = {k: v for k, v in source.items() if k in wanted}
        elif isinstance(wanted, dict):
            hit["_source"] = {k: v for k, v in source.items() if k not in wanted.get("excludes", [])}
        return hit


NEXTGEN_COMPRESSION = {"1x", "2x", "8x", "16x", "32x"}  # AWS: "Supported compression levels are ..."


def _check_nextgen_vector(field_mapping: dict[str, Any]) -> None:
    """A NextGen collection chooses the engine and mode itself and refuses them in a mapping; the
    answer is the one users report (AWS's own page says only that they are "not required")."""
    for where, name in ((field_mapping.get("method") or {}, "engine"), (field_mapping, "mode")):
        if name in where:
            raise Rejected(400, "illegal_argument_exception", f"Field parameter '{name}' is not supported")
    level = field_mapping.get("compression_level")
    if level is not None and level not in NEXTGEN_COMPRESSION:
        raise Rejected(400, "illegal_argument_exception", f"compression_level {level} is not supported")


def _check_classic_vector(field_mapping: dict[str, Any]) -> None:
    method = field_mapping.get("method") or {}
    if method.get("name", "hnsw") != "hnsw" or method.get("engine", "nmslib") not in ("faiss", "nmslib"):
        raise Rejected(
            400, "illegal_argument_exception", "a Classic vector collection supports only HNSW with faiss"
        )


def _as_specified(url: str, body: Any) -> Any:
    """The body as the API specification can check it. A setting set to null goes back to its default
    (OpenSearch's update-settings documentation; a node takes it), which the specification's types
    leave out: the nulls of a settings update are not checked."""
    if not url.rstrip("/").endswith("/_settings") or not isinstance(body, dict):
        return body
    return {k: _as_specified(url, v) for k, v in body.items() if v is not None}


def _score(space: str, vector: np.ndarray, query: np.ndarray) -> float:
    """OpenSearch's k-NN score per space type (faiss), computed in float32 as the engine does."""
    if space == "innerproduct":
        ip = np.float32(np.dot(vector, query))
        return float(np.float32(1 + ip) if ip >= 0 else np.float32(1 / (1 - ip)))
    if space == "cosinesimil":
        cos = np.float32(np.dot(vector, query) / (np.linalg.norm(vector) * np.linalg.norm(query)))
        return float(np.float32((1 + cos) / 2))
    if space == "l2":
        return float(np.float32(1 / (1 + np.sum((vector - query) ** 2))))
    raise Rejected(400, "illegal_argument_exception", f"space_type {space} unknown")


def _check_method_parameters(parameters: Any) -> None:
    """HNSW's query-time parameter, refused as the 2.19 node refuses it (probed: a non-object, an unknown
    key, a non-integer or non-positive ef_search; `nprobes` belongs to IVF, which this mapping never uses)."""
    if parameters is None:
        return
    if not isinstance(parameters, dict):
        raise Rejected(400, "x_content_parse_exception", "[knn] method_parameters must be an object")
    if set(parameters) - {"ef_search", "nprobes"}:
        unknown = sorted(set(parameters) - {"ef_search", "nprobes"})[0]
        raise Rejected(400, "x_content_parse_exception", f"[knn] unknown method parameter found [{unknown}]")
    if "nprobes" in parameters:
        raise Rejected(400, "search_phase_execution_exception", "Unknown parameter 'nprobes' found")
    ef = parameters.get("ef_search")
    if ef is not None and (not isinstance(ef, int) or isinstance(ef, bool)):
        raise Rejected(400, "x_content_parse_exception", "ef_search value must be an integer")
    if ef is not None and ef < 1:
        raise Rejected(400, "illegal_argument_exception", "ef_search should be greater than 0")


def _matches_any(value: Any, wanted: Iterable[Any]) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(v in values for v in wanted)


def _filter(spec: dict[str, Any] | None, doc: dict[str, Any]) -> bool:
    if spec is None:
        return True
    ((kind, body),) = spec.items()
    if kind == "bool":
        if set(body) - {"filter", "must"}:
            raise Rejected(400, "unsupported_by_double", f"bool clauses {sorted(body)}")
        return all(_filter(clause, doc) for clause in body.get("filter", []) + body.get("must", []))
    if kind == "term":
        ((name, value),) = body.items()
        return _matches_any(doc.get(name), [value])
    if kind == "terms":
        ((name, values),) = body.items()
        return _matches_any(doc.get(name), values)
    raise Rejected(400, "unsupported_by_double", f"filter {kind} is not implemented by the double")


def plug_in(monkeypatch: Any, cluster: FakeOpenSearch) -> None:
    """Make every OpenSearch client the service builds talk to `cluster` (no signing: there is no AWS)."""
    import visual_search.index.opensearch as adapter

    real_connect = adapter.connect
    monkeypatch.setattr(
        adapter,
        "connect",
        lambda endpoint, **kw: real_connect(
            endpoint, **{**kw, "auth": "none"}, connection_class=cluster.connection_class()
        ),
    )
