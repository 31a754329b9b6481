"""Builds and runs the real-client programs in tests/clients/ (Cloudinary's Node, Java and Go SDKs).

Each program reads the server and its fixtures from the environment, makes every call, prints one JSON
line per call ({"name", "ok", "status", "error"}) and exits non-zero if any call went wrong. The
functional tests (tests/functional/test_client_*.py) start the local server, run a program and assert
per call. What a program needs is fetched and built once into .cache/clients/ (ignored by git), keyed by
a digest of its sources, so a session compiles each at most once:

    python -m tests.clients.harness   # `make clients`: npm ci, Maven resolution, go mod download, builds
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.fixtures import images
from tests.fixtures.tls import self_signed_certificate
from visual_search.server import LocalServer

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "tests" / "clients"
CACHE = ROOT / ".cache" / "clients"
# Cloudinary's smallest upload_large part is 5 MB; 5 MiB parts also fit a request behind API Gateway.
# The calls on stored assets' tags and context, the same in every program (after its identity calls;
# upload_h and upload_i make the assets they change).
TAG_AND_CONTEXT_CALLS = [
    "upload_h",
    "upload_i",
    "add_tag",
    "remove_tag",
    "replace_tag",
    "remove_all_tags",
    "add_context",
    "remove_all_context",
    "explicit",
    "update",
    "resources_by_ids",
    "resources_by_context",
    "resources_by_context_value",
]
CHUNK_SIZE = 5 * 1024 * 1024
RUN_TIMEOUT_S = 300
BUILD_TIMEOUT_S = 900


def _digest(*files: Path) -> str:
    sha = hashlib.sha256()
    for file in files:
        sha.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    if shutil.which(command[0]) is None:
        raise RuntimeError(f"{command[0]} is not installed: the client tests need Node.js, Java 17+ and Go")
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@functools.cache
def node_program() -> tuple[list[str], dict[str, str]]:
    """`npm ci` of tests/clients/node/package-lock.json into .cache/clients/node (the script stays in place
    and finds the SDK through NODE_PATH)."""
    source = SOURCES / "node"
    manifests = [source / "package.json", source / "package-lock.json"]
    target = CACHE / "node" / _digest(*manifests)
    if not (target / "node_modules" / "cloudinary").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for manifest in manifests:
            shutil.copy(manifest, target / manifest.name)
        _run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], target)
    return ["node", str(source / "calls.js")], {"NODE_PATH": str(target / "node_modules")}


@functools.cache
def java_program() -> tuple[list[str], dict[str, str]]:
    """Maven resolves the SDK's classpath (pom.xml pins it); javac compiles the one program."""
    source = SOURCES / "java"
    program = source / "src" / "main" / "java" / "Calls.java"
    target = CACHE / "java" / _digest(source / "pom.xml", program)
    classpath_file = target / "classpath.txt"
    if not (target / "classes" / "Calls.class").is_file():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        _run(
            ["mvn", "-q", "-B", "dependency:build-classpath", f"-Dmdep.outputFile={classpath_file}"],
            source,
        )
        _run(
            ["javac", "-d", str(target / "classes"), "-cp", classpath_file.read_text().strip(), str(program)],
            source,
        )
    classpath = f"{target / 'classes'}{os.pathsep}{classpath_file.read_text().strip()}"
    return ["java", "-cp", classpath, "Calls"], {}


@functools.cache
def go_program() -> tuple[list[str], dict[str, str]]:
    """`go mod download` of the go.sum-pinned modules, then one `go build`."""
    source = SOURCES / "go"
    binary = CACHE / "go" / _digest(source / "go.mod", source / "go.sum", source / "main.go") / "calls"
    if not binary.is_file():
        # go.sum is the pin (-mod=readonly); the installed Go builds it (no toolchain download); the
        # binary carries no VCS stamp, so a dirty or absent checkout builds the same.
        flags = f"{os.environ.get('GOFLAGS', '')} -mod=readonly -buildvcs=false".strip()
        env = {**os.environ, "GOFLAGS": flags, "GOTOOLCHAIN": "local"}
        _run(["go", "mod", "download"], source, env)
        _run(["go", "build", "-o", str(binary), "."], source, env)
    return [str(binary)], {}


@dataclass
class Outcome:
    calls: dict[str, dict]
    returncode: int
    stderr: str

    def __getitem__(self, name: str) -> dict:
        assert name in self.calls, f"the program did not report {name!r}; stderr:\n{self.stderr[-2000:]}"
        return self.calls[name]


def run_program(program: tuple[list[str], dict[str, str]], env: dict[str, str]) -> Outcome:
    command, program_env = program
    done = subprocess.run(
        command,
        env={**os.environ, **program_env, **env},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    calls = {}
    for line in done.stdout.splitlines():
        record = json.loads(line)
        calls[record["name"]] = record
    return Outcome(calls, done.returncode, done.stderr)


def run_against(
    services,
    program: tuple[list[str], dict[str, str]],
    language: str,
    folder: Path,
    credentials: dict[str, str],
    trust_variable: str | None = None,
) -> Outcome:
    """Start the local server on `services` — https with a certificate made here when the SDK needs it,
    trusted through the environment variable `trust_variable` —, serve the fixture files, run the
    program and collect what it reports."""
    cert, key = self_signed_certificate(folder) if trust_variable else (None, None)
    server = LocalServer(services, "127.0.0.1", 0, tls_cert=cert, tls_key=key).start()
    try:
        with serve_files(folder) as files:
            env = {**fixture_env(folder, language, files), "VS_UPLOAD_PREFIX": server.url, **credentials}
            if trust_variable:
                env[trust_variable] = str(cert)
            return run_program(program, env)
    finally:
        server.stop()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve_files(folder: Path) -> Iterator[str]:
    """A plain-http loopback server for `image_url` (the server under test fetches from it)."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fixture_env(folder: Path, language: str, image_base_url: str | None = None) -> dict[str, str]:
    """The files a program uploads and searches with, written into `folder`, as its environment.

    The probe is the seeded image `shoes/item-07` (tests/functional/conftest.py seeds the same bytes),
    so an image search by file or URL must find it first; `image_base_url` serves `folder`."""
    probe, upload, large = folder / "probe.jpg", folder / "upload.png", folder / "large.png"
    probe.write_bytes(images.jpeg(200 + 7, 160, seed=7))
    upload.write_bytes(images.png(300, 300, seed=99))
    large.write_bytes(_noise_png(CHUNK_SIZE + 1))
    return {
        "VS_PUBLIC_ID_PREFIX": f"clients/{language}",
        "VS_TAG": f"client-{language}",
        "VS_PROBE_PUBLIC_ID": "shoes/item-07",
        "VS_PROBE_FILE": str(probe),
        "VS_PROBE_URL": f"{image_base_url}/probe.jpg" if image_base_url else "",
        "VS_UPLOAD_FILE": str(upload),
        "VS_LARGE_FILE": str(large),
        "VS_LARGE_BYTES": str(large.stat().st_size),
        "VS_CHUNK_SIZE": str(CHUNK_SIZE),
    }


def _noise_png(at_least: int) -> bytes:
    """A PNG of random pixels (incompressible) of at least `at_least` bytes: two upload_large parts."""
    side = int((at_least / 3) ** 0.5) + 16
    pixels = np.random.default_rng(0).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    assert len(buffer.getvalue()) >= at_least
    return buffer.getvalue()


def prepare_all() -> None:
    for prepare in (node_program, java_program, go_program):
        command, _ = prepare()
        print(f"ready: {' '.join(command)[:120]}")


if __name__ == "__main__":
    prepare_all()
