"""The locks each environment installs from, with hashes, compiled from pyproject.toml by `make lock`
(uv, for every platform and Python >= 3.11), so an install is the same on every machine and CI installs
exactly what was tested. Each lock file is `locks/<name>.txt`:

* `runtime`: the package alone (`make demo`'s .venv);
* `build`: the package with the model-build tool and torch (`make demo` adds it to build real CLIP);
* `dev`: every extra the tests need, and torch (`make install`, `make test`, CI);
* `checkov`: the `checkov` dependency group, in a virtual environment of its own (`make checkov`).

The Lambda layers have their own lock, for Lambda's platforms and Python (`layers/build.py --lock`).
tests/unit/test_locks.py checks each lock pins every requirement pyproject.toml gives it, within its
range, with hashes: a change to pyproject.toml without `make lock` fails there.

    python locks/compile.py            (what `make lock` runs, beside the layers' lock)
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "locks"
TORCH = HERE / "torch.in"
MIN_PYTHON = "3.11"  # pyproject's requires-python


@dataclass(frozen=True)
class Lock:
    name: str
    extras: tuple[str, ...] = ()
    torch: bool = False
    group: str | None = None

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.txt"

    def requirements(self) -> list[str]:
        """What pyproject.toml (and torch.in) asks of this lock, as requirement strings."""
        pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
        if self.group:
            return list(pyproject["dependency-groups"][self.group])
        project = pyproject["project"]
        found = list(project["dependencies"])
        for extra in self.extras:
            found += project["optional-dependencies"][extra]
        if self.torch:
            found += [line for line in TORCH.read_text().splitlines() if line and not line.startswith("#")]
        return found


LOCKS = (
    Lock("runtime"),
    Lock("build", ("build",), torch=True),
    Lock("dev", ("build", "dev", "infra", "openclip"), torch=True),
    Lock("checkov", group="checkov"),
)


def compile_lock(lock: Lock) -> None:
    sources = ["--group", f"pyproject.toml:{lock.group}"] if lock.group else ["pyproject.toml"]
    sources += [arg for extra in lock.extras for arg in ("--extra", extra)]
    sources += [str(TORCH.relative_to(ROOT))] if lock.torch else []
    subprocess.run(
        [
            sys.executable, "-m", "uv", "pip", "compile", *sources, "--universal",
            "--python-version", MIN_PYTHON, "--generate-hashes", "--no-header", "--quiet",
            "--output-file", str(lock.path.relative_to(ROOT)),
        ],
        check=True,
        cwd=ROOT,
    )  # fmt: skip


def pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """A lock read back: name (as written) -> (version, its sha256 hashes)."""
    found: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", line):
            name = match[1]
            found[name] = (match[2], [])
        elif match := re.search(r"--hash=sha256:([0-9a-f]{64})", line):
            found[name][1].append(match[1])
    return found


if __name__ == "__main__":
    for each in LOCKS:
        compile_lock(each)
