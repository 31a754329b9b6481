"""The Node, Java and Go SDKs' own signers (pinned in tests/clients/) over values holding "&", "=", "%26"
and non-ASCII text, with signature version 1 and 2 and SHA-1 and SHA-256: each signs as Cloudinary's
Python SDK does, and the server accepts exactly the version-2 signatures and the version-1 ones that are
the same string (tests/clients/signers/ holds the three small programs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import cloudinary.utils
import pytest

from tests.clients import harness
from tests.functional.conftest import API_SECRET
from visual_search.api.upload_signature import verify_upload
from visual_search.errors import Unauthorized

SIGNERS = harness.SOURCES / "signers"
TIMESTAMP = "1700000000"
VALUES = [
    "rock&roll",
    "caption=Tom & Jerry|alt=x",
    "é&ü 日本 🎸",
    "a%26b,c&d",
    "=",
    "w_100,h_100|c_fill",
    "a+b c",
]
CASES = [
    ({"timestamp": TIMESTAMP, name: value, "public_id": "a/b"}, version, algorithm)
    for name, value in [("tags", v) for v in VALUES] + [("context", v) for v in VALUES[:3]]
    for version in (1, 2)
    for algorithm in ("sha1", "sha256")
]


def build(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, timeout=harness.BUILD_TIMEOUT_S, check=True
    )


def node_signer(folder: Path) -> tuple[list[str], dict[str, str]]:
    _, env = harness.node_program()  # the pinned SDK, installed
    return ["node", str(SIGNERS / "sign.js")], env


def java_signer(folder: Path) -> tuple[list[str], dict[str, str]]:
    command, _ = harness.java_program()  # the pinned SDK's classpath, resolved
    classpath = command[command.index("-cp") + 1]
    build(["javac", "-d", str(folder), "-cp", classpath, str(SIGNERS / "Sign.java")], folder)
    return ["java", "-cp", f"{folder}{os.pathsep}{classpath}", "Sign"], {}


def go_signer(folder: Path) -> tuple[list[str], dict[str, str]]:
    harness.go_program()  # the pinned modules, downloaded
    for name in ("go.mod", "go.sum"):
        shutil.copy(harness.SOURCES / "go" / name, folder / name)
    shutil.copy(SIGNERS / "sign.go", folder / "main.go")
    flags = f"{os.environ.get('GOFLAGS', '')} -mod=readonly -buildvcs=false".strip()
    build(
        ["go", "build", "-o", "sign", "."], folder, {**os.environ, "GOFLAGS": flags, "GOTOOLCHAIN": "local"}
    )
    return [str(folder / "sign")], {}


def encoded(params: dict[str, str], version: int, algorithm: str) -> str:
    pairs = ",".join(f"{k.encode().hex()}:{v.encode().hex()}" for k, v in params.items())
    return f"{version} {algorithm} {pairs}"


@pytest.mark.parametrize("signer", [node_signer, java_signer, go_signer], ids=["node", "java", "go"])
def test_each_sdk_signs_as_python_does_and_the_server_accepts_its_version_2(signer, tmp_path):
    # Given each case signed by the SDK's own signer
    command, env = signer(tmp_path)
    stdin = "\n".join(encoded(*case) for case in CASES) + "\n"
    done = subprocess.run(
        command,
        input=stdin,
        env={**os.environ, **env, "VS_API_SECRET": API_SECRET},
        capture_output=True,
        text=True,
        timeout=harness.RUN_TIMEOUT_S,
        check=True,
    )
    signatures = done.stdout.split()
    assert len(signatures) == len(CASES), done.stderr[-2000:]
    for (params, version, algorithm), signature in zip(CASES, signatures, strict=True):
        # Then it is Python's signature, and the server's answer depends only on the version and an "&"
        assert signature == cloudinary.utils.api_sign_request(params, API_SECRET, algorithm, version), params
        fields = {**params, "signature": signature, "api_key": "k"}
        if version == 2 or not any("&" in v for v in params.values()):
            verify_upload(fields, "k", API_SECRET, now=int(TIMESTAMP))
        else:
            with pytest.raises(Unauthorized):
                verify_upload(fields, "k", API_SECRET, now=int(TIMESTAMP))
