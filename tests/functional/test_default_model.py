"""With no model configured, a command finds its model wherever it runs: the default model already built
into the model home (no network), else the tiny model shipped inside the package with one line saying
its results are meaningless. Run as a user would: the CLI in a fresh process, from a folder that is not
the repository. (The download and build from a hub: tests/parity/test_default_model_download.py.)"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.fixtures import images
from visual_search.model_build.default_model import TINY_MODEL_DIR

ROOT = Path(__file__).resolve().parents[2]
TINY_NOTE = "model: the tiny random-weight test model — search results are meaningless"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def run_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VS_", "HF_"))}
    return subprocess.run(
        [sys.executable, "-m", "visual_search.cli", *args],
        cwd=cwd,
        env={**base, "VS_MODEL_HOME": str(cwd / "model-home"), "HF_HOME": str(cwd / "hf"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A working folder outside the repository, with one photo in it."""
    (tmp_path / "photo.jpg").write_bytes(images.jpeg(seed=3))
    return tmp_path


def test_add_started_outside_the_repository_uses_the_shipped_tiny_model_and_says_so_once(elsewhere):
    result = run_cli(elsewhere, "add", "photo.jpg", "--quiet", HF_HUB_OFFLINE="1")

    assert result.returncode == 0, result.stderr
    assert "indexed: 1" in result.stdout
    notes = [line for line in result.stderr.splitlines() if line.startswith("model:")]
    assert len(notes) == 1
    assert notes[0].startswith(TINY_NOTE)
    assert "HF_HUB_OFFLINE is set" in notes[0]
    assert "visual-search fetch-model" in notes[0]
    assert (elsewhere / "var" / "index").is_dir()  # the data dir is where the command runs


def test_an_unreachable_hub_falls_back_to_the_tiny_model_at_once(elsewhere):
    result = run_cli(
        elsewhere, "add", "photo.jpg", "--quiet", HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}"
    )

    assert result.returncode == 0, result.stderr
    assert "indexed: 1" in result.stdout
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("model:")]
    assert note.startswith(TINY_NOTE)
    assert "not reachable" in note
    assert not (elsewhere / "model-home").exists()  # nothing half-built is left behind


def test_a_model_built_into_the_model_home_is_used_without_asking_the_hub(elsewhere):
    built = elsewhere / "model-home" / "openai--clip-vit-base-patch32"
    shutil.copytree(TINY_MODEL_DIR, built)  # stands in for a built CLIP: the lookup is by folder

    unreachable = {"HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}"}
    fetched = run_cli(elsewhere, "fetch-model", **unreachable)
    added = run_cli(elsewhere, "add", "photo.jpg", "--quiet", **unreachable)

    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == str(built)
    assert added.returncode == 0, added.stderr
    assert "model:" not in added.stderr


def test_a_pinned_checkpoint_is_looked_up_in_its_own_folder(elsewhere):
    (elsewhere / "model-home" / "openai--clip-vit-base-patch32").mkdir(parents=True)
    pinned = elsewhere / "model-home" / "laion--CLIP-ViT-B-32-laion2B-s34B-b79K@abc123"
    shutil.copytree(TINY_MODEL_DIR, pinned)

    result = run_cli(
        elsewhere,
        "fetch-model",
        HF_HUB_OFFLINE="1",
        VS_MODEL_HUB="laion/CLIP-ViT-B-32-laion2B-s34B-b79K@abc123",
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(pinned)


def test_fetch_model_exits_non_zero_with_the_reason_when_it_cannot_fetch(elsewhere):
    result = run_cli(elsewhere, "fetch-model", HF_HUB_OFFLINE="1")

    assert result.returncode == 2
    assert TINY_NOTE in result.stderr
    assert result.stdout == ""


def test_the_wheel_ships_the_tiny_model(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("visual_search-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"visual_search/models/tiny/{p.name}" for p in TINY_MODEL_DIR.iterdir()}
    assert "visual_search/models/tiny/manifest.json" in shipped
    assert shipped <= names
