"""Checks requests against OpenSearch's published API specification (the repository
opensearch-project/opensearch-api-specification; `spec_source` says where it is read from): the path and
method must be an operation of the spec, every query parameter one the operation (or the global
parameters) declares, and a JSON body valid against the operation's request-body schema, `$ref`s resolved
across the spec's files.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.doubles.spec_source import spec_folder

SPEC = spec_folder()
BASE = "file:///spec/"
METHODS = ("get", "put", "post", "delete", "head")
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecViolation(AssertionError):
    """A request OpenSearch's API specification does not allow."""


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    literal_segments: int
    parameters: frozenset[str]
    body_ref: str | None  # JSON pointer URI of the request-body schema, when the body is JSON


@functools.cache
def _load(relative: str) -> dict[str, Any]:
    return yaml.load((SPEC / relative).read_text(encoding="utf-8"), Loader=Loader)


def _retrieve(uri: str) -> Resource:
    return Resource.from_contents(_load(uri.removeprefix(BASE)), default_specification=DRAFT202012)


@functools.cache
def _registry() -> Registry:
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@functools.cache
def operations() -> tuple[Operation, ...]:
    global_names = {p["name"] for p in _load("_global_parameters.yaml")["components"]["parameters"].values()}
    found = []
    for path in sorted((SPEC / "namespaces").glob("*.yaml")):
        relative = f"namespaces/{path.name}"
        document = _load(relative)
        components = document.get("components", {})
        for template, item in (document.get("paths") or {}).items():
            for method in METHODS:
                operation = item.get(method)
                if operation is None:
                    continue
                names = {_parameter(components, p)["name"] for p in operation.get("parameters", [])}
                found.append(
                    Operation(
                        method=method.upper(),
                        template=template,
                        pattern=re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"),
                        literal_segments=sum(1 for s in template.split("/") if s and "{" not in s),
                        parameters=frozenset(names | global_names),
                        body_ref=_body_ref(relative, operation),
                    )
                )
    return tuple(found)


def _parameter(components: dict[str, Any], parameter: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in parameter:
        return components["parameters"][parameter["$ref"].rsplit("/", 1)[-1]]
    return parameter


def _body_ref(relative: str, operation: dict[str, Any]) -> str | None:
    body = operation.get("requestBody")
    if not body or "$ref" not in body:
        return None
    name = body["$ref"].rsplit("/", 1)[-1]
    content = _load(relative)["components"]["requestBodies"][name].get("content", {})
    if "application/json" not in content:
        return None  # NDJSON (_bulk) is checked line by line by the double itself
    return f"{BASE}{relative}#/components/requestBodies/{name}/content/application~1json/schema"


def check(method: str, path: str, params: dict[str, Any], body: Any) -> Operation:
    """The operation the request is, or SpecViolation saying what is wrong with it."""
    path = unquote(path.split("?", 1)[0])
    candidates = [op for op in operations() if op.method == method and op.pattern.match(path)]
    if not candidates:
        raise SpecViolation(f"{method} {path} is not an operation of the OpenSearch API specification")
    operation = max(candidates, key=lambda op: op.literal_segments)
    unknown = set(params) - operation.parameters
    if unknown:
        raise SpecViolation(f"{method} {operation.template}: unknown query parameter(s) {sorted(unknown)}")
    if body is not None and operation.body_ref is not None:
        validator = Draft202012Validator({"$ref": operation.body_ref}, registry=_registry())
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            raise SpecViolation(f"{method} {operation.template}: body at /{where}: {errors[0].message[:300]}")
    return operation
