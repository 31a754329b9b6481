"""The Lambda Runtime Interface Emulator (github.com/aws/aws-lambda-runtime-interface-emulator): the HTTP
front Lambda's own container images use locally. Built from source with `go install` at a pinned version
into .cache/rie/ (`make rie`, or on first use by the emulator tier); the go command checks the module
and its dependencies against the checksum database (sum.golang.org), so no go.sum is kept here.

    python -m tests.emulator.rie        # build it (if absent) and print its path

The Go module proxy serves it only as a pseudo-version of its main branch (its v1.x tags are not served);
this one requires Go 1.26.6 or newer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = "github.com/aws/aws-lambda-runtime-interface-emulator"
VERSION = "v0.0.0-20261030222936-bef5c4ba774d"
PACKAGE = f"{MODULE}/cmd/aws-lambda-rie"
FOLDER = ROOT / ".cache" / "rie" / VERSION
BINARY = FOLDER / "aws-lambda-rie"


def build() -> Path:
    if BINARY.is_file():
        return BINARY
    FOLDER.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(FOLDER), "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}
    subprocess.run(["go", "install", f"{PACKAGE}@{VERSION}"], check=True, env=env)
    return BINARY


if __name__ == "__main__":
    print(build())
    sys.exit(0)
