"""The route table (api/routes.py) that both the resolver and API Gateway are built from."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from visual_search.api import routes
from visual_search.api.routes import DOCS, ROUTES, UPLOAD_API, Auth, Route

UPLOAD_API_CALLS = {"upload", "destroy", "rename", "tags", "context", "explicit"}


def _sample(route: Route) -> str:
    """A request path of the route, every parameter given a value no literal segment has."""
    return re.sub(r"<\w+>", "sample", route.path)


def test_the_table_imports_only_the_standard_library_so_the_cdk_app_reads_it():
    tree = ast.parse(Path(routes.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in imported} <= sys.stdlib_module_names | {"__future__"}


def test_every_route_names_an_auth_kind_and_a_handler():
    for route in ROUTES:
        assert isinstance(route.auth, Auth), route
        assert route.handler == DOCS or re.fullmatch(r"(search|assets|pages)\.\w+", route.handler), route


def test_no_two_routes_share_a_method_and_a_path():
    declared = [(route.method, route.path) for route in ROUTES]
    assert len(declared) == len(set(declared))


def test_only_the_pages_files_are_public_and_only_cloudinarys_upload_api_is_signed():
    public = {(route.method, route.path) for route in ROUTES if route.auth is Auth.PUBLIC}
    assert public == {("GET", "/"), ("GET", "/ui"), ("GET", "/ui/<name>")}
    signed = {(route.method, route.path) for route in ROUTES if route.auth is Auth.SIGNED}
    assert signed == {("POST", f"{UPLOAD_API}/{call}") for call in UPLOAD_API_CALLS}


def test_no_route_is_taken_by_one_the_resolver_tries_before_it():
    # Powertools tries the routes without parameters first, then the others, each in declaration order.
    tried = sorted(ROUTES, key=lambda route: "<" in route.path)
    for position, route in enumerate(tried):
        path = _sample(route)
        for earlier in tried[:position]:
            taken = earlier.method == route.method and earlier.pattern().match(path)
            assert not taken, f"{route.method} {path} is taken by {earlier.path}"


def test_a_greedy_route_takes_a_public_id_with_slashes_as_its_last_parameter():
    greedy = [route for route in ROUTES if route.greedy]
    assert {route.method for route in greedy} == {"GET", "POST"}
    for route in greedy:
        match = route.pattern().match("/v1_1/demo/resources/image/upload/shoes/red/left")
        assert match is not None
        assert match.groupdict() == {"cloud_name": "demo", "public_id": "shoes/red/left"}
