"""Every example in a docstring of the package runs and shows what it says: a docstring that
contradicts the code is a defect, and an example nobody runs drifts from it."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import visual_search

MODULES = sorted(m.name for m in pkgutil.walk_packages(visual_search.__path__, "visual_search."))
WITH_EXAMPLES = [
    name
    for name in MODULES
    if any(t.examples for t in doctest.DocTestFinder().find(importlib.import_module(name)))
]


def test_the_package_has_examples_to_run():
    assert len(WITH_EXAMPLES) >= 10, WITH_EXAMPLES  # the finder reaches the package


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_each_docstring_example_shows_what_the_code_does(name):
    failed, attempted = doctest.testmod(importlib.import_module(name), report=True, verbose=False)
    assert attempted, name
    assert not failed, f"{failed} of {attempted} examples in {name} fail"
