"""checkov over synthesized templates: a finding fails the build unless the deploy page's table of checkov
findings settles its check, as a configuration key or accepted with its reason (cdk-nag's are in
`nag_suppressions.py`, cfn-lint's in `template_lint.py`). The table is read from docs/deploy.md itself, so the
two cannot drift apart.

    python -m infra.template_scan cdk.out/VisualSearch.template.json   (make synth runs it; `make checkov`
                                                                        installs checkov)"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DECISIONS = ROOT / "docs" / "deploy.md"  # its table of checkov findings
# Its own virtual environment: checkov pins boto3 and packaging to releases older than the project's.
CHECKOV = ROOT / ".cache" / "checkov" / "bin" / "checkov"
# | `CKV_AWS_115` | what checkov asks | decision |
ROW = re.compile(r"^\| `(?P<check>CKV2?_AWS_\d+)` \| (?P<asks>[^|]+?) \| (?P<decision>.+?) \|$")
# A decision that names context keys (`kms_key_arn`, `vpc_id`): the check holds where they are set.
KEYS = re.compile(r"`(\w+)`")


@dataclass(frozen=True)
class Finding:
    check: str
    template: str  # the template file's stem: the configuration's name
    resource: str  # the logical id

    def __str__(self) -> str:
        return f"{self.check} {self.template}: {self.resource}"


@dataclass(frozen=True)
class Decision:
    asks: str
    decision: str

    @property
    def keys(self) -> list[str]:
        """The context keys that settle the check, when the decision is a configuration key."""
        head = self.decision.split(":", 1)[0]
        return [] if head.startswith("accepted") else KEYS.findall(head)


def decisions(readme: str) -> dict[str, Decision]:
    """The deploy page's table: check id -> what checkov asks and what was decided."""
    found = {}
    for line in readme.splitlines():
        if match := ROW.match(line.strip()):
            found[match["check"]] = Decision(match["asks"].strip(), match["decision"].strip())
    return found


def scan(templates: list[Path], checkov: Path = CHECKOV) -> list[Finding]:
    """Every failed check over `templates`, in one checkov run (starting it costs seconds)."""
    command = [
        str(checkov), "--framework", "cloudformation", "--output", "json", "--quiet", "--compact",
        "--skip-download",  # no guideline or severity download: nothing leaves this machine
        *(arg for template in templates for arg in ("--file", str(template))),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if result.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    reports = reports if isinstance(reports, list) else [reports]
    found = {
        # "AWS::Lambda::Function.SearchFunction4AE05E44": a type has no dot, a logical id none either.
        Finding(
            failed["check_id"],
            Path(failed["file_path"]).name.split(".")[0],
            failed["resource"].split(".")[-1],
        )
        for report in reports
        for failed in report.get("results", {}).get("failed_checks", [])
    }
    return sorted(found, key=str)


def refused(found: list[Finding], decided: dict[str, Decision]) -> list[Finding]:
    """What fails the build: a finding of a check docs/deploy.md has not settled."""
    return [finding for finding in found if finding.check not in decided]


def main(templates: list[str]) -> int:
    decided = decisions(DECISIONS.read_text(encoding="utf-8"))
    failed = refused(scan([Path(template) for template in templates]), decided)
    for finding in failed:
        print(f"checkov: {finding} (not in docs/deploy.md's table of checkov findings)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
