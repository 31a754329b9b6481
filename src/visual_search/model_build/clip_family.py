"""CLIP through transformers' CLIPModel: OpenAI's checkpoints and any other in that format.

Preprocessing as CLIPImageProcessor (shortest side, bicubic, centre crop, OpenAI's mean/std), the BPE
tokenizer padded to the batch's longest text (the causal mask keeps padding out of the pooled end
token), the cosine as the score.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from visual_search.model_build import BuildRefused, parity
from visual_search.model_build.clip_vocab import clip_vocab_and_merges
from visual_search.model_build.export import ImageTower, TextTower
from visual_search.model_build.presets import CLIP_CONTEXT_LENGTH, CLIP_PRESETS
from visual_search.model_build.source import (
    LoadedSource,
    checkpoint_info,
    normalizer_lowercases,
    preset_info,
    weight_files,
)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
POOLING = {
    "image": "class token, post-layernorm, visual projection",
    "text": "end token (highest id), final layernorm, text projection",
}
EXPORT_NOTES = {
    "patch_embedding": "MatMul over flattened patches (int8), not a Conv",
    "last_layer": "class token only (see ClassTokenLayer)",
}


def load_preset(name: str, seed: int) -> LoadedSource:
    config = CLIPConfig(**CLIP_PRESETS[name])
    torch.manual_seed(seed)
    model = CLIPModel(config)
    model.set_attn_implementation("eager")
    info, model_id = preset_info(model, name, seed)
    return _loaded(
        model.eval(),
        clip_tokenizer_from_vocab(),
        default_image_spec(config.vision_config.image_size),
        info,
        model_id,
    )


def load_checkpoint(path: Path, config: dict[str, Any]) -> LoadedSource:
    weights = weight_files(path, WEIGHT_FILES)
    try:
        model = CLIPModel.from_pretrained(path, attn_implementation="eager", local_files_only=True)
    except Exception as exc:  # transformers raises many types for a damaged file; all mean the same here
        raise BuildRefused(f"cannot load the checkpoint in {path}: {type(exc).__name__}: {exc}") from None
    info, model_id = checkpoint_info(path, weights)
    return _loaded(
        model.eval(), _checkpoint_tokenizer(path), _checkpoint_image_spec(path, config), info, model_id
    )


def _loaded(
    model: CLIPModel, tok: CLIPTokenizer, image_spec: dict[str, Any], info: dict[str, Any], model_id: str
) -> LoadedSource:
    tokenizer_json = tok.backend_tokenizer.to_str(pretty=True)
    context = int(model.config.text_config.max_position_embeddings)

    def reference_ids(texts: list[str]) -> np.ndarray:
        ids = tok(texts, padding="longest", truncation=True, max_length=context, return_tensors="np")
        return ids["input_ids"].astype(np.int64)

    return LoadedSource(
        family="clip",
        model=model,
        tokenizer=tok,
        tokenizer_json=tokenizer_json,
        image_spec=image_spec,
        text_spec={
            "kind": "clip-bpe",
            "context_length": context,
            "bos_token_id": int(tok.bos_token_id),
            "eos_token_id": int(tok.eos_token_id),
            "pad_token_id": int(tok.pad_token_id),
            "padding": "longest",
            "padding_side": "right",
            "lowercase": normalizer_lowercases(tokenizer_json),
        },
        score={"kind": "cosine"},
        pooling=POOLING,
        embedding_dim=int(model.config.projection_dim),
        towers=lambda: {"image": ImageTower(model).eval(), "text": TextTower(model).eval()},
        reference_ids=reference_ids,
        reference_embeddings=lambda pixels, ids: parity.reference_embeddings(model, pixels, ids),
        info=info,
        model_id=model_id,
        export_notes=EXPORT_NOTES,
    )


def clip_tokenizer_from_vocab() -> CLIPTokenizer:
    vocab, merges = clip_vocab_and_merges()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_CONTEXT_LENGTH)


def default_image_spec(image_size: int) -> dict[str, Any]:
    return {
        "resize": "shortest_edge",
        "interpolation": "bicubic",
        "crop_offsets": "floor",
        "resize_to": image_size,
        "crop_size": image_size,
        "rescale_factor": 1 / 255,
        "mean": list(OPENAI_CLIP_MEAN),
        "std": list(OPENAI_CLIP_STD),
    }


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
