"""The default model's first run, against a fake Hugging Face hub on 127.0.0.1 (HF_ENDPOINT) serving a
tiny CLIPModel checkpoint in the hub's layout: downloaded with huggingface_hub, verified, built once into
the model home and used from there on; an interrupted download resumes; a wrong checksum, or a hub that
goes away mid-download, leaves the tiny model in use, one line saying why, and nothing half-built.
Every run is a fresh process in a folder outside the repository (huggingface_hub reads HF_* at import):
the CLI as a user runs it, or, where only the download matters, the download alone (no torch import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import visual_search
from tests.doubles.fake_hub import COMMIT, FakeHub

pytestmark = pytest.mark.parity

REPO = "test-org/tiny-clip"
SRC = str(Path(visual_search.__file__).resolve().parents[1])
TINY_NOTE = "model: the tiny random-weight test model — search results are meaningless"


@pytest.fixture
def hub(reference_checkpoint):
    with FakeHub(REPO, reference_checkpoint) as running:
        yield running


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path


def environment(home: Path, hub: FakeHub) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VS_", "HF_"))}
    return {
        **base,
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home / "hf"),
        "HF_HUB_DISABLE_XET": "1",
        "VS_MODEL_HOME": str(home / "models"),
        "VS_MODEL_HUB": REPO,
        "PYTHONPATH": SRC,  # this checkout's code, not whichever the environment installed
    }


def run(home: Path, hub: FakeHub, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=home,
        env={**environment(home, hub), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def fetch_model(home: Path, hub: FakeHub, *args: str) -> subprocess.CompletedProcess:
    return run(home, hub, "-m", "visual_search.cli", "fetch-model", *args)


def download_only(home: Path, hub: FakeHub) -> Path:
    """The checkpoint download and verification the build starts with, without the build."""
    script = (
        "from visual_search.embedding.hub import HubRef, fetch_checkpoint;"
        f"print(fetch_checkpoint(HubRef.parse({REPO!r}), 5.0)[0])"
    )
    result = run(home, hub, "-c", script)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def without_build_extra(home: Path, hub: FakeHub, *cli_args: str) -> subprocess.CompletedProcess:
    """The CLI where the build extra is not installed (as after `pip install visual-search`)."""
    script = (
        "import sys; from visual_search.model_build import default_model;"
        "default_model.missing_build_extra = lambda: ['torch'];"
        "from visual_search.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return run(home, hub, "-c", script, *cli_args)


def the_note(result: subprocess.CompletedProcess) -> str:
    (note,) = [line for line in result.stderr.splitlines() if line.startswith("model:")]
    assert note.startswith(TINY_NOTE)
    return note


def built(home: Path) -> Path:
    return home / "models" / "test-org--tiny-clip"


def test_first_run_downloads_verifies_builds_and_the_next_run_asks_nothing(home, hub):
    first = fetch_model(home, hub)
    asked = len(hub.requests)
    second = fetch_model(home, hub)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(built(home))
    manifest = json.loads((built(home) / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "hub"
    assert manifest["source"]["revision"] == COMMIT
    assert manifest["model_id"].startswith(f"{REPO}@")
    assert set(manifest["towers"]["image"]) == {"int8"}
    assert hub.downloads("model.safetensors") == [None]
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == str(built(home))
    assert len(hub.requests) == asked  # a built model is used without a single request


def test_offline_the_checkpoint_in_the_hub_cache_is_built_without_a_request(home, hub):
    download_only(home, hub)  # an earlier download left it in the hub cache
    asked = len(hub.requests)

    result = run(home, hub, "-m", "visual_search.cli", "fetch-model", HF_HUB_OFFLINE="1")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(built(home))
    assert json.loads((built(home) / "manifest.json").read_text())["source"]["revision"] == COMMIT
    assert len(hub.requests) == asked


def test_offline_without_the_checkpoint_in_the_hub_cache_says_so(home, hub):
    result = run(home, hub, "-m", "visual_search.cli", "fetch-model", HF_HUB_OFFLINE="1")

    assert result.returncode == 2
    assert "HF_HUB_OFFLINE is set and test-org/tiny-clip is not in the hub cache" in the_note(result)
    assert hub.requests == []


def test_an_interrupted_download_is_taken_up_again_and_ends_complete(home, hub):
    hub.misbehave.cut = {"model.safetensors": 1}

    folder = download_only(home, hub)

    # huggingface_hub resumes from the last 10 MB chunk it wrote (a Range request); this file is smaller
    # than one chunk, so it starts again from the beginning.
    assert len(hub.downloads("model.safetensors")) == 2
    assert (folder / "model.safetensors").read_bytes() == hub.files["model.safetensors"].data


def test_a_hub_gone_mid_download_leaves_the_tiny_model_and_nothing_half_built(home, hub):
    hub.misbehave.cut, hub.misbehave.down_after_cut = {"model.safetensors": 1}, True

    failed = fetch_model(home, hub)
    hub.misbehave.down = False
    folder = download_only(home, hub)

    assert failed.returncode == 2
    assert "visual-search fetch-model" in the_note(failed)
    assert not built(home).exists()
    assert not list(built(home).parent.glob(".*partial*"))
    assert (folder / "model.safetensors").read_bytes() == hub.files["model.safetensors"].data


def test_a_file_that_does_not_match_the_hubs_checksum_is_refused_and_downloaded_again_next_time(home, hub):
    hub.misbehave.corrupt = {"model.safetensors"}

    refused = fetch_model(home, hub)
    hub.misbehave.corrupt = set()
    folder = download_only(home, hub)

    assert refused.returncode == 2
    assert "model.safetensors downloaded with sha256" in the_note(refused)
    assert not built(home).exists()
    assert len(hub.downloads("model.safetensors")) == 2  # not the corrupt copy from the hub cache
    assert (folder / "model.safetensors").read_bytes() == hub.files["model.safetensors"].data


def test_a_hub_that_is_down_costs_one_request_and_builds_nothing(home, hub):
    hub.misbehave.down = True

    result = fetch_model(home, hub)

    assert result.returncode == 2
    assert "not reachable" in the_note(result)
    assert [path for _, path, _ in hub.requests if path.startswith("/api/models")] == [f"/api/models/{REPO}"]
    assert not (home / "models").exists()


def test_without_the_build_extra_the_line_names_the_install_and_make_demos_probe_asks_for_it(home, hub):
    probe = without_build_extra(home, hub, "fetch-model", "--check")
    fetched = without_build_extra(home, hub, "fetch-model")
    hub.misbehave.down = True
    probe_when_down = without_build_extra(home, hub, "fetch-model", "--check")

    assert probe.returncode == 1
    assert fetched.returncode == 2
    assert "pip install 'visual-search[build]'" in the_note(fetched)
    assert probe_when_down.returncode == 0  # nothing to build: installing torch would be wasted
    assert hub.downloads("model.safetensors") == []


def test_with_the_build_extra_make_demos_probe_asks_for_nothing(home, hub):
    assert fetch_model(home, hub, "--check").returncode == 0
    assert hub.downloads("model.safetensors") == []
