"""cfn-lint over synthesized templates: no error ever; a warning only if acknowledged here, with the
reason, as cdk-nag's findings are in `nag_suppressions.py`.

    python -m infra.template_lint cdk.out/VisualSearch.template.json   (make synth runs it)"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACKNOWLEDGED = {
    "W3005": "CDK writes an explicit DependsOn beside a Ref/GetAtt that already implies it (a function on "
    "its role's default policy, the bucket notifications on the queue policy): redundant, not wrong, and "
    "CDK's to emit.",
}
# The region whose resource specification the templates are checked against (one keeps the check fast).
REGIONS = ["us-east-1"]


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.severity}) {self.where}: {self.message}"


def findings(template: dict[str, Any]) -> list[Finding]:
    """Every cfn-lint match, acknowledged or not."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=REGIONS))
    return [Finding(m.rule.id, m.rule.severity, "/".join(str(p) for p in m.path), m.message) for m in matches]


def refused(found: list[Finding]) -> list[Finding]:
    """What fails the build: any error, and any warning nobody acknowledged."""
    return [f for f in found if f.severity == "error" or f.rule not in ACKNOWLEDGED]


def main(paths: list[str]) -> int:
    failed = 0
    for path in paths:
        for finding in refused(findings(json.loads(Path(path).read_text()))):
            print(f"{path}: {finding}")
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
