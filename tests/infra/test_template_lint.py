"""cfn-lint passes over every synthesized configuration: no error, and only acknowledged warnings."""

from __future__ import annotations

from functools import cache

import pytest

from infra import template_lint
from tests.infra.conftest import CONFIGURATIONS, cached


@cache
def _linted(name: str) -> tuple[template_lint.Finding, ...]:
    return tuple(template_lint.findings(cached(name).json))


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_cfn_lint_finds_no_error_and_no_unacknowledged_warning(name):
    assert [str(f) for f in template_lint.refused(list(_linted(name)))] == []


def test_every_acknowledgment_is_still_needed_by_some_configuration():
    used = {f.rule for name in CONFIGURATIONS for f in _linted(name)}
    assert set(template_lint.ACKNOWLEDGED) <= used


def test_an_error_is_refused_even_if_its_rule_were_acknowledged(monkeypatch):
    error = template_lint.Finding("E3002", "error", "Resources/X", "bad property")
    monkeypatch.setitem(template_lint.ACKNOWLEDGED, "E3002", "never enough")
    assert template_lint.refused([error]) == [error]


def test_a_template_with_a_misspelt_property_is_refused():
    template = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimout": 30}}}}
    assert [f.rule for f in template_lint.refused(template_lint.findings(template))] == ["E3002"]
