"""The layer build ships byte code that Lambda's Python really uses: compiled by a CPython of the
functions' version into a layer of its own, hash-based so that new mtimes (a zip, unzipped) cannot
invalidate it, and counted in the 250 MB check of each function that gets it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

from layers import build


def _merged(tmp_path, *layers: str):
    """The layers unzipped into one /opt-like folder, as Lambda merges them: every mtime new."""
    opt = tmp_path / "opt"
    for layer in layers:
        shutil.copytree(tmp_path / layer, opt, dirs_exist_ok=True)
    later = time.time() + 3600
    for path in opt.rglob("*"):
        os.utime(path, (later, later))
    return opt / "python"


def test_the_bytecode_layer_is_what_lambdas_python_imports_whatever_the_mtimes(tmp_path):
    package = tmp_path / "deps" / "python" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 'compiled'\n")
    python = build.lambda_python()

    layer = build.compile_bytecode(tmp_path, python)

    pyc = layer / "python" / "pkg" / "__pycache__" / "__init__.cpython-312.pyc"
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01  # PEP 552: hash-based, unchecked
    assert not list((tmp_path / "deps").rglob("*.pyc"))  # the sources' layer holds sources only
    opt_python = _merged(tmp_path, "deps", build.BYTECODE)
    (opt_python / "pkg" / "__init__.py").write_text("VALUE = 'compiled from source'\n")  # never read
    shown = subprocess.run(
        [python, "-c", "import pkg; print(pkg.VALUE)"],
        env={"PYTHONPATH": str(opt_python), "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.environ["PATH"]},
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert shown == ["compiled"]


def test_the_byte_code_goes_to_the_functions_that_answer_requests_and_counts_toward_their_limit(
    tmp_path, capsys
):
    for layer, megabytes in (("deps", 150), (build.BYTECODE, 17), ("model-text", 84), ("model-image", 93)):
        (tmp_path / layer).mkdir()
        with open(tmp_path / layer / "blob", "wb") as blob:
            blob.truncate(int(megabytes * 1e6))

    assert build.report(tmp_path) == 1
    out = capsys.readouterr().out
    assert re.search(r"function search .* OVER Lambda's 250 MB limit", out)  # 150 + 17 + 84
    assert re.search(r"function ingest .*: ok", out)  # 150 + 93: no byte code there
    assert re.search(r"function authorizer .*: ok", out)
