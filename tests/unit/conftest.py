"""The unit tier is pure: no test here starts a process or opens a socket (moto and loopback servers
included), so `make test-fast` runs in seconds on any machine. A test that needs either belongs in
tests/functional; this guard fails it here, naming where to move it."""

from __future__ import annotations

import socket
import subprocess

import pytest

MOVE = "a unit test starts no process and opens no socket: move it to tests/functional"


@pytest.fixture(autouse=True)
def _pure(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError(MOVE)

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    for method in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, method, refuse)
