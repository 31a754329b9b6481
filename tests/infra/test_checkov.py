"""checkov over every configuration the tests synthesize, in one run: each finding's check is settled in
docs/deploy.md's table (a configuration key, or accepted with its reason), and a check settled by a key holds
on the project's own resources wherever that key is set."""

from __future__ import annotations

import json
import subprocess

import pytest

from infra import template_scan
from infra.template_scan import Decision, Finding
from tests.infra.conftest import CONFIGURATIONS, ROOT, cached

DECIDED = template_scan.decisions(template_scan.DECISIONS.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def checkov():
    if not template_scan.CHECKOV.exists():  # its own virtual environment, as `make checkov` builds it
        subprocess.run(["make", "--no-print-directory", "checkov"], cwd=ROOT, check=True)
    return template_scan.CHECKOV


@pytest.fixture(scope="session")
def findings(checkov, tmp_path_factory) -> list[Finding]:
    folder = tmp_path_factory.mktemp("templates")
    templates = []
    for name in sorted(CONFIGURATIONS):
        templates.append(folder / f"{name}.template.json")
        templates[-1].write_text(json.dumps(cached(name).json))
    return template_scan.scan(templates, checkov)


def test_checkov_reports_only_what_the_readme_table_settles(findings):
    assert findings  # checkov ran and read the templates
    assert [str(f) for f in template_scan.refused(findings, DECIDED)] == []


def test_every_row_of_the_readme_table_is_still_needed_by_some_configuration(findings):
    assert set(DECIDED) <= {f.check for f in findings}


def _sets(context: dict, key: str) -> bool:
    return str(context.get(key, "")).lower() not in ("", "false")


def test_a_check_settled_by_a_configuration_key_holds_on_our_resources_wherever_the_key_is_set(findings):
    def settled_by_a_key_set_here(finding: Finding) -> bool:
        decision = DECIDED.get(finding.check)  # an unsettled check fails the test above
        return decision is not None and any(_sets(CONFIGURATIONS[finding.template], k) for k in decision.keys)

    keyed = [f for f in findings if settled_by_a_key_set_here(f)]
    assert {k for d in DECIDED.values() for k in d.keys} >= {"kms_key_arn", "vpc_id", "create_vpc"}
    helpers = {  # CDK's own deploy-time functions: the keys reach the project's functions only
        name: {
            logical_id for logical_id in cached(name).resources("AWS::Lambda::Function")
            if logical_id not in {f["id"] for f in cached(name).our_functions().values()}
        }
        for name in CONFIGURATIONS
    }  # fmt: skip
    assert [str(f) for f in keyed if f.resource not in helpers[f.template]] == []


# --- the table and the verdict, without checkov ------------------------------------------------------

TABLE = """
| check | what checkov asks | decision |
|---|---|---|
| `CKV_AWS_119` | the ledger under a customer-managed key | `kms_key_arn`: else an AWS-managed key |
| `CKV_AWS_117` | functions in a VPC | `vpc_id` or `create_vpc`: then the functions run in it |
| `CKV_AWS_120` | a response cache | accepted: answers depend on the caller |
"""


def test_the_table_is_read_with_the_keys_that_settle_each_check():
    decided = template_scan.decisions(TABLE)
    assert decided["CKV_AWS_119"] == Decision(
        "the ledger under a customer-managed key", "`kms_key_arn`: else an AWS-managed key"
    )
    assert [decided[c].keys for c in ("CKV_AWS_119", "CKV_AWS_117", "CKV_AWS_120")] == [
        ["kms_key_arn"],
        ["vpc_id", "create_vpc"],
        [],
    ]


def test_a_finding_of_a_check_the_table_does_not_name_is_refused():
    known, new = Finding("CKV_AWS_120", "managed", "Stage"), Finding("CKV_AWS_7", "managed", "Key")
    assert template_scan.refused([known, new], template_scan.decisions(TABLE)) == [new]
