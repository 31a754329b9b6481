"""Which method of a synthesized REST API a request reaches, read from the template's resources, so a
test can ask "what does API Gateway do with POST /v1_1/demo/image/tags?" without deploying.

API Gateway picks, segment by segment, a literal child resource, else the one path variable, else the
one greedy `{name+}`, which takes the rest of the path; then the resource's method for the verb, else its
ANY; else no method (a 403 MISSING_AUTHENTICATION_TOKEN, never another resource's method). Whether it
backtracks to a parent's `{proxy+}` when a literal it took leads nowhere is not documented: `backtrack`
chooses, and the tests ask both, so what they prove holds either way."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.infra.conftest import Synthesized


@dataclass
class Node:
    part: str  # the path part ("" for the root)
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)  # verb -> the method's Properties
    children: list[Node] = field(default_factory=list)

    @property
    def greedy(self) -> bool:
        return self.part.startswith("{") and self.part.endswith("+}")

    @property
    def variable(self) -> bool:
        return self.part.startswith("{") and not self.greedy


def tree(s: Synthesized) -> Node:
    """The API's resources as a tree, from the root, each with its methods."""
    resources = s.resources("AWS::ApiGateway::Resource")
    nodes = {None: Node("")} | {k: Node(r["Properties"]["PathPart"]) for k, r in resources.items()}
    for logical_id, resource in resources.items():
        nodes[_resource(resource["Properties"]["ParentId"])].children.append(nodes[logical_id])
    for method in s.resources("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        nodes[_resource(props["ResourceId"])].methods[props["HttpMethod"]] = props
    return nodes[None]


def _resource(value: Any) -> str | None:
    """The logical id of the resource a ParentId or ResourceId names; None for the API's root, which
    the template names by the API's RootResourceId attribute."""
    return value.get("Ref")


def reached(root: Node, verb: str, path: str, backtrack: bool) -> dict[str, Any] | None:
    """The Properties of the method `verb path` reaches (path without the stage), or None."""
    resource = _match(root, [p for p in path.split("/") if p], backtrack)
    if resource is None:
        return None
    return resource.methods.get(verb) or resource.methods.get("ANY")


def _match(node: Node, segments: list[str], backtrack: bool) -> Node | None:
    if not segments:
        return node
    head, rest = segments[0], segments[1:]
    literal = [c for c in node.children if c.part == head]
    variable = [c for c in node.children if c.variable]
    greedy = [c for c in node.children if c.greedy]
    for candidate in literal + variable:
        found = _match(candidate, rest, backtrack)
        if found is not None or not backtrack:
            return found
    return greedy[0] if greedy else None
