"""Where a build starts: a local checkpoint folder, a hub id, or a random-weight preset."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from visual_search.embedding.hub import HubError, HubRef, fetch_checkpoint
from visual_search.model_build import BuildRefused
from visual_search.model_build.clip_vocab import clip_vocab_and_merges
from visual_search.model_build.presets import CLIP_CONTEXT_LENGTH, PRESETS

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HUB_TIMEOUT_S = 10.0  # the hub's listing; the download itself is bounded by HF_HUB_DOWNLOAD_TIMEOUT


@dataclass
class LoadedSource:
    model: CLIPModel
    tokenizer: CLIPTokenizer
    image_spec: dict[str, Any]
    info: dict[str, Any]  # recorded in the manifest: kind, ref, sha256 (and seed for presets)
    model_id: str


def load_preset(name: str, seed: int) -> LoadedSource:
    if name not in PRESETS:
        raise BuildRefused(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    config = CLIPConfig(**PRESETS[name])
    torch.manual_seed(seed)
    model = CLIPModel(config)
    model.set_attn_implementation("eager")
    digest = _state_dict_sha256(model)
    return LoadedSource(
        model=model.eval(),
        tokenizer=clip_tokenizer_from_vocab(),
        image_spec=default_image_spec(config.vision_config.image_size),
        info={"kind": "preset", "ref": name, "seed": seed, "sha256": digest},
        model_id=f"preset-{name}-seed{seed}@{digest[:12]}",
    )


def load_checkpoint(path: Path) -> LoadedSource:
    """A Hugging Face CLIPModel folder: config.json + weights, tokenizer and preprocessor files if present."""
    if not path.is_dir():
        raise BuildRefused(f"checkpoint folder {path} does not exist")
    config = _read_config(path)
    weights = [path / f for f in WEIGHT_FILES if (path / f).is_file()]
    if not weights:
        raise BuildRefused(f"no weights in {path} (expected one of {', '.join(WEIGHT_FILES)})")
    try:
        model = CLIPModel.from_pretrained(path, attn_implementation="eager", local_files_only=True)
    except Exception as exc:  # transformers raises many types for a damaged file; all mean the same here
        raise BuildRefused(f"cannot load the checkpoint in {path}: {type(exc).__name__}: {exc}") from None
    digest = _files_sha256(weights)
    return LoadedSource(
        model=model.eval(),
        tokenizer=_checkpoint_tokenizer(path),
        image_spec=_checkpoint_image_spec(path, config),
        info={"kind": "checkpoint", "ref": str(path), "sha256": digest},
        model_id=f"{path.name}@{digest[:12]}",
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


def clip_tokenizer_from_vocab() -> CLIPTokenizer:
    vocab, merges = clip_vocab_and_merges()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_CONTEXT_LENGTH)


def default_image_spec(image_size: int) -> dict[str, Any]:
    return {
        "resize_to": image_size,
        "crop_size": image_size,
        "rescale_factor": 1 / 255,
        "mean": list(OPENAI_CLIP_MEAN),
        "std": list(OPENAI_CLIP_STD),
    }


def _read_config(path: Path) -> dict[str, Any]:
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BuildRefused(f"no config.json in {path}: not a Hugging Face checkpoint") from None
    except (OSError, ValueError) as exc:
        raise BuildRefused(f"unreadable config.json in {path}: {exc}") from None
    if config.get("model_type") != "clip":
        raise BuildRefused(
            f"{path} holds a {config.get('model_type') or 'unknown'!s} model, "
            "not a CLIP model (model_type 'clip')"
        )
    return config


def _checkpoint_tokenizer(path: Path) -> CLIPTokenizer:
    if (path / "tokenizer.json").is_file() or (path / "vocab.json").is_file():
        try:
            tok = CLIPTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as exc:
            raise BuildRefused(f"cannot load the tokenizer files in {path}: {exc}") from None
        tok.model_max_length = CLIP_CONTEXT_LENGTH
        return tok
    return clip_tokenizer_from_vocab()


def _checkpoint_image_spec(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    image_size = int(config.get("vision_config", {}).get("image_size", 224))
    spec = default_image_spec(image_size)
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        raw = json.loads(pre.read_text(encoding="utf-8"))
        size = raw.get("size", image_size)
        crop = raw.get("crop_size", image_size)
        spec.update(
            resize_to=int(size.get("shortest_edge", image_size) if isinstance(size, dict) else size),
            crop_size=int(crop.get("height", image_size) if isinstance(crop, dict) else crop),
            rescale_factor=float(raw.get("rescale_factor", 1 / 255)),
            mean=list(raw.get("image_mean", OPENAI_CLIP_MEAN)),
            std=list(raw.get("image_std", OPENAI_CLIP_STD)),
        )
    return spec


def _files_sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        with p.open("rb") as fh:
            for block in iter(functools.partial(fh.read, 1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _state_dict_sha256(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()
