"""Where a build starts: a local checkpoint folder, a hub id, or a random-weight preset; and which
family's loader reads it (CLIP, SigLIP, OpenCLIP).

Each loader returns a `LoadedSource`: the reference model and tokenizer (transformers' or open_clip's),
the modules to export as towers, and everything the manifest records for the runtime, each read from
the reference's own processor and config.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visual_search.embedding.hub import HubError, HubRef, fetch_checkpoint
from visual_search.model_build import BuildRefused
from visual_search.model_build.presets import FAMILY_OF

HUB_TIMEOUT_S = 10.0  # the hub's listing; the download itself is bounded by HF_HUB_DOWNLOAD_TIMEOUT


@dataclass
class LoadedSource:
    family: str  # "clip", "siglip" or "openclip"
    model: torch.nn.Module  # the reference: transformers' CLIPModel / SiglipModel, or open_clip's model
    tokenizer: Any  # the reference tokenizer
    tokenizer_json: str  # its pipeline for the `tokenizers` library (the runtime's tokenizer.json)
    image_spec: dict[str, Any]  # the manifest's "image"
    text_spec: dict[str, Any]  # the manifest's "text"
    score: dict[str, Any]  # the manifest's "score"
    pooling: dict[str, str]  # what each tower's embedding is read from (recorded, for the reader)
    embedding_dim: int
    towers: Callable[[], dict[str, torch.nn.Module]]  # "image", "text": modules ending in unit vectors
    reference_ids: Callable[[list[str]], np.ndarray]  # the reference tokenizer's ids, padded as trained
    reference_embeddings: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]  # unit (N, D) rows
    info: dict[str, Any]  # recorded in the manifest: kind, ref, sha256 (and seed for presets)
    model_id: str
    export_notes: dict[str, str] = field(default_factory=dict)  # how the towers differ from the reference


def load_preset(name: str, seed: int) -> LoadedSource:
    if name not in FAMILY_OF:
        raise BuildRefused(f"unknown preset {name!r}; choose one of {', '.join(FAMILY_OF)}")
    return _family_module(FAMILY_OF[name]).load_preset(name, seed)


def _family_module(family: str) -> Any:
    # Imported on use: each family imports its own libraries (transformers' model classes, open_clip).
    return importlib.import_module(f"visual_search.model_build.{family}_family")


def load_checkpoint(path: Path) -> LoadedSource:
    """A Hugging Face CLIPModel or SiglipModel folder (config.json + weights, tokenizer and preprocessor
    files), or an OpenCLIP folder as its hub repos hold it (open_clip_config.json + weights)."""
    if not path.is_dir():
        raise BuildRefused(f"checkpoint folder {path} does not exist")
    if (path / "open_clip_config.json").is_file() and not (path / "config.json").is_file():
        # Repos holding both formats (LAION's) are built from their Hugging Face files, which the hub
        # download fetches first.
        return _family_module("openclip").load_checkpoint(path, read_config(path, "open_clip_config.json"))
    config = read_config(path)
    model_type = config.get("model_type")
    if model_type in ("clip", "siglip"):
        return _family_module(model_type).load_checkpoint(path, config)
    if model_type == "siglip2":
        raise BuildRefused(
            f"{path} holds a NaFlex SigLIP 2 model (model_type 'siglip2', variable resolution), which is "
            "not built: use a fixed-resolution SigLIP 2 checkpoint (model_type 'siglip')"
        )
    raise BuildRefused(
        f"{path} holds a {model_type or 'unknown'!s} model, not a CLIP model (model_type 'clip'), "
        "a SigLIP model (model_type 'siglip') or an OpenCLIP model (open_clip_config.json)"
    )


def load_hub(ref: str) -> LoadedSource:
    """Download a hub checkpoint (`owner/name[@revision]`), verified file by file, and load it like a
    local folder. Only where the hub is reachable (or, with HF_HUB_OFFLINE, already in the hub cache)."""
    try:
        hub_ref = HubRef.parse(ref)
        folder, commit = fetch_checkpoint(hub_ref, timeout=HUB_TIMEOUT_S)
    except HubError as exc:
        raise BuildRefused(f"cannot download {ref} from the hub: {exc}") from None
    loaded = load_checkpoint(folder)
    loaded.info.update(kind="hub", ref=hub_ref.repo_id, revision=commit)
    loaded.model_id = f"{hub_ref.repo_id}@{loaded.info['sha256'][:12]}"
    return loaded


def read_config(path: Path, name: str = "config.json") -> dict[str, Any]:
    try:
        return json.loads((path / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildRefused(f"no {name} in {path}: not a Hugging Face checkpoint") from None
    except (OSError, ValueError) as exc:
        raise BuildRefused(f"unreadable {name} in {path}: {exc}") from None


def weight_files(path: Path, names: tuple[str, ...]) -> list[Path]:
    weights = [path / f for f in names if (path / f).is_file()]
    if not weights:
        raise BuildRefused(f"no weights in {path} (expected one of {', '.join(names)})")
    return weights


def checkpoint_info(path: Path, weights: list[Path]) -> tuple[dict[str, Any], str]:
    digest = files_sha256(weights)
    return {"kind": "checkpoint", "ref": str(path), "sha256": digest}, f"{path.name}@{digest[:12]}"


def preset_info(model: torch.nn.Module, name: str, seed: int) -> tuple[dict[str, Any], str]:
    digest = state_dict_sha256(model)
    return (
        {"kind": "preset", "ref": name, "seed": seed, "sha256": digest},
        f"preset-{name}-seed{seed}@{digest[:12]}",
    )


def files_sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        with p.open("rb") as fh:
            for block in iter(functools.partial(fh.read, 1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def state_dict_sha256(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def normalizer_lowercases(tokenizer_json: str) -> bool:
    """Whether a tokenizer.json's normalizer lower-cases (a Lowercase step, or BERT's with lowercase)."""

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "Lowercase" or (kind == "BertNormalizer" and node.get("lowercase")):
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(json.loads(tokenizer_json).get("normalizer"))
