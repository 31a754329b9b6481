"""The model a command uses when none is configured (`VS_MODEL_DIR` unset), wherever it runs.

In order:
1. real CLIP (`VS_MODEL_HUB`, default openai/clip-vit-base-patch32) already built into the model home
   (`VS_MODEL_HOME`, default `$XDG_CACHE_HOME/visual-search/models`, i.e. `~/.cache/visual-search/models`):
   no network at all;
2. else, where the Hugging Face hub is reachable and the `build` extra is installed: download it, verify
   it, build the int8 towers once into the model home with the build tool, and use them;
3. else the tiny random-weight model shipped inside the package, with one line saying its results are
   meaningless and the command that gets real ones.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from visual_search.embedding.hub import HubError, HubRef, HubUnreachable, fetch_checkpoint, probe
from visual_search.embedding.manifest import MANIFEST_NAME
from visual_search.model_build import BuildRefused
from visual_search.settings import CoreSettings

TINY_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "tiny"
BUILD_EXTRA = ("torch", "transformers", "onnx", "onnxscript", "safetensors")
# Asking the hub whether the checkpoint exists; a machine without internet waits at most this long.
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class DefaultModel:
    folder: Path
    note: str | None = None  # set when the tiny model stands in: why, and the command for real CLIP


def model_home(settings: CoreSettings) -> Path:
    if settings.model_home is not None:
        return settings.model_home
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "visual-search" / "models"


def built_folder(settings: CoreSettings) -> Path:
    """Where the default model is built: one folder per hub id (and revision, when pinned)."""
    name = "".join(c if c.isalnum() or c in "-_.@" else "--" for c in settings.model_hub.strip())
    return model_home(settings) / name


def missing_build_extra() -> list[str]:
    return [name for name in BUILD_EXTRA if importlib.util.find_spec(name) is None]


def default_model(settings: CoreSettings, log: Callable[[str], None]) -> DefaultModel:
    """The default model's folder (see the module docstring); `log` gets a first run's progress lines.
    A hub that cannot be reached, or a download or build that fails, gives the tiny model and a note."""
    folder = built_folder(settings)
    if (folder / MANIFEST_NAME).is_file():
        return DefaultModel(folder)
    try:
        ref = HubRef.parse(settings.model_hub)
        probe(ref, PROBE_TIMEOUT_S)  # before anything slow: a machine without internet learns it at once
        missing = missing_build_extra()
        if missing:
            return _tiny(
                f"{ref} is reachable but is built once with the build extra ({', '.join(missing)} missing)",
                "pip install 'visual-search[build]' (make demo installs it), then run the command again",
            )
        log(f"first run: downloading {ref} and building it into {folder} (once)")
        # Downloaded and verified before the build tool (and torch) is imported: a failed download
        # costs no more than the download. The build finds the files in the hub cache.
        fetch_checkpoint(ref, PROBE_TIMEOUT_S)
        _build(ref, folder, settings.model_precision, log)
        return DefaultModel(folder)
    except HubUnreachable as exc:
        return _tiny(
            f"the Hugging Face hub is not reachable: {exc}",
            "visual-search fetch-model where it is (HF_ENDPOINT names a mirror)",
        )
    except (HubError, BuildRefused) as exc:
        return _tiny(f"{settings.model_hub} could not be built: {exc}", "visual-search fetch-model")


def needs_build_extra(settings: CoreSettings) -> bool:
    """True when the default model is not built, the hub is reachable, and the build extra is missing."""
    if (built_folder(settings) / MANIFEST_NAME).is_file() or not missing_build_extra():
        return False
    try:
        probe(HubRef.parse(settings.model_hub), PROBE_TIMEOUT_S)
    except HubError:
        return False
    return True


def _build(ref: HubRef, out: Path, precision: str, log: Callable[[str], None]) -> None:
    from visual_search.model_build.build import BuildRequest, build_model

    precisions = ("int8",) if precision == "int8" else ("fp32", "int8")
    out.parent.mkdir(parents=True, exist_ok=True)
    build_model(BuildRequest(out=out, hub_id=str(ref), precisions=precisions), log=log)


def _tiny(reason: str, command: str) -> DefaultModel:
    note = (
        f"model: the tiny random-weight test model — search results are meaningless ({reason}). "
        f"For real CLIP: {command}"
    )
    return DefaultModel(TINY_MODEL_DIR, note)
