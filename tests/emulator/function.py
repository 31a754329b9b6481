"""One function run as Lambda runs it: the Runtime Interface Emulator in front, starting the function's
process (`python -m awslambdaric handler.handler` in the clean runtime venv) on the first invocation,
with the function's folder as its task root, its layers merged into an /opt-like folder, the SDK the
runtime provides on the path and the environment given; byte code is never written
(PYTHONDONTWRITEBYTECODE=1: /opt and /var/task are read-only on Lambda).

The emulator logs the init phase's duration (INIT REPORT) when the first invocation starts the
function, and one REPORT line per invocation whose Duration, on that first one, includes the init
(it waits for it): the cold init and each request's own duration are read from there. Its "Max Memory
Used" is the configured size, not a measurement, so peak RSS is read from the function's process
(VmHWM)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.emulator.rie import build as rie_binary
from tests.emulator.template import Deployed

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
REPORT = re.compile(r"^REPORT RequestId: .*\tDuration: ([\d.]+) ms")
INIT_REPORT = re.compile(r"INIT REPORT\(durationMs: ([\d.]+)\)")


def unzipped_layers(layers: Path, names: set[str], into: Path) -> Path:
    """Each layer zipped as the deploy's asset is, then unzipped (every mtime new), once per build."""
    done = into / ".complete"
    if not done.is_file():
        shutil.rmtree(into, ignore_errors=True)
        for name in sorted(names):
            archive = into / f"{name}.zip"
            archive.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as packed:
                for path in sorted((layers / name).rglob("*")):
                    packed.write(path, path.relative_to(layers / name))
            with zipfile.ZipFile(archive) as packed:
                packed.extractall(into / name)
            archive.unlink()
        done.touch()
    return into


def merged_opt(unzipped: Path, layer_names: tuple[str, ...], opt: Path) -> Path:
    """The function's /opt: its layers merged in order, as Lambda extracts them (hard links: no copy)."""
    shutil.rmtree(opt, ignore_errors=True)
    for name in layer_names:
        shutil.copytree(unzipped / name, opt, copy_function=os.link, dirs_exist_ok=True)
    return opt


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Invocation:
    status: int
    payload: Any
    init_ms: float | None  # the cold start's init phase, on the first invocation only
    duration_ms: float  # the request's own, init excluded


@dataclass
class EmulatedFunction:
    deployed: Deployed
    opt: Path
    python: Path  # the runtime venv's interpreter
    sdk: Path
    environment: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    invocations: list[Invocation] = field(default_factory=list)

    def start(self) -> EmulatedFunction:
        module, function = self.deployed.handler.split(".")
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONDONTWRITEBYTECODE": "1",
            # Lambda's order: the layers' python folders, then the runtime's own SDK.
            "PYTHONPATH": f"{self.opt}/python/lib/python3.12/site-packages:{self.opt}/python:{self.sdk}",
            "LAMBDA_TASK_ROOT": str(FUNCTIONS / self.deployed.name),
            "AWS_LAMBDA_FUNCTION_NAME": f"visual-search-{self.deployed.name}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.deployed.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.deployed.timeout_s),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            **self.environment,
        }
        self._log = self.log.open("w")
        self.process = subprocess.Popen(
            [
                str(rie_binary()),
                "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
                "--runtime-api-address", f"127.0.0.1:{free_port()}",
                str(self.python), "-m", "awslambdaric", f"{module}.{function}",
            ],
            cwd=FUNCTIONS / self.deployed.name,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self._reports: list[tuple[float | None, float]] = []  # (init, request's own duration)
        self._init_ms: float | None = None
        self._reported = threading.Condition()
        threading.Thread(target=self._read_output, daemon=True).start()
        self._wait_listening()
        return self

    def _read_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log.write(line)
            self._log.flush()
            if found := INIT_REPORT.search(line):
                self._init_ms = float(found[1])
            elif found := REPORT.search(line):
                with self._reported:
                    init, self._init_ms = self._init_ms, None
                    self._reports.append((init, float(found[1]) - (init or 0.0)))
                    self._reported.notify_all()

    def _wait_listening(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the emulator for {self.deployed.name} did not listen: see {self.log}")

    def invoke(self, event: dict[str, Any], timeout_s: float = 120.0) -> Invocation:
        """POST the event to the emulator's invoke endpoint, as Lambda's service would."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            data=json.dumps(event).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # loopback only
            status, body = response.status, response.read()
        with self._reported:
            self._reported.wait_for(lambda: len(self._reports) > len(self.invocations), timeout=5)
            init_ms, duration_ms = self._reports[len(self.invocations)]
        invocation = Invocation(status, json.loads(body) if body else None, init_ms, duration_ms)
        self.invocations.append(invocation)
        return invocation

    def runtime_pid(self) -> int:
        """The function's process: the emulator's child (started by whichever of its threads ran it)."""
        tasks = Path(f"/proc/{self.process.pid}/task").glob("*/children")
        (child,) = {int(pid) for task in tasks for pid in task.read_text().split()}
        return child

    def peak_rss_mb(self) -> float:
        status = Path(f"/proc/{self.runtime_pid()}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status)[1]) / 1024  # type: ignore[index]

    def stop(self) -> None:
        """The emulator, then the function's process if it outlived it (each by its own id)."""
        try:
            runtime: int | None = self.runtime_pid()
        except (OSError, ValueError):  # never invoked, or already gone
            runtime = None
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if runtime is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(runtime, signal.SIGTERM)
        self._log.close()
