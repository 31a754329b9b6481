"""What Lambda's python3.12 runtime is, besides the layers: a clean CPython 3.12 (pyenv's, as for the
layers' byte code) whose venv holds only the Runtime Interface Client (`runtime.lock`), and the SDK the
runtime provides beside the function (`sdk.lock`, in a folder of its own on the path, as /var/runtime
is). Both built once into .cache/emulator/, keyed by their lock files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from layers.build import lambda_python

HERE = Path(__file__).resolve().parent
CACHE = HERE.parents[1] / ".cache" / "emulator"


def _key(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def runtime_python() -> Path:
    """The venv's python: `python -m awslambdaric handler.handler` is the function's process."""
    lock = HERE / "runtime.lock"
    venv = CACHE / f"runtime-{_key(lock)}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([lambda_python(), "-m", "venv", "--without-pip", str(venv)], check=True)
        _pip(["--require-hashes", "--requirement", str(lock)], python=python)
        (venv / ".complete").touch()
    return python


def sdk_folder() -> Path:
    lock = HERE / "sdk.lock"
    folder = CACHE / f"sdk-{_key(lock)}"
    if not (folder / ".complete").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        _pip(["--target", str(folder), "--python-version", "3.12", "--only-binary=:all:", "--require-hashes",
              "--requirement", str(lock)])  # fmt: skip
        (folder / ".complete").touch()
    return folder


def _pip(arguments: list[str], python: Path | None = None) -> None:
    """The pyenv 3.12's own pip installs into the venv (`--python`) or the folder: nothing else lands."""
    into = ["--python", str(python)] if python else []
    subprocess.run(
        [lambda_python(), "-m", "pip", *into, "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", *arguments],
        check=True,
        env={**os.environ, "PIP_ROOT_USER_ACTION": "ignore"},  # root here, installing into our folders
    )  # fmt: skip
