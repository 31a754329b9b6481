"""OpenCLIP through `open_clip`: LAION's ViT-B-32 and Apple's MobileCLIP (S1, S2, B), or any open_clip
checkpoint folder as its hub repos hold one (open_clip_config.json + open_clip_model.safetensors).

Every runtime detail is read from open_clip:
- pixels: the model's `preprocess_cfg` (size, interpolation, resize mode, mean/std), made into
  open_clip's own torchvision transform for the reference: shortest side then centre crop (torchvision
  rounds the crop offsets to the nearest), or squash to the square;
- ids: open_clip's SimpleTokenizer (CLIP's BPE after ftfy, HTML unescaping, whitespace folding and
  Python lower-casing, which the runtime repeats: `embedding.text_clean`), specials `<start_of_text>`
  and `<end_of_text>`, zero padding to the full context length as open_clip pads (MobileCLIP's text
  tower has no causal mask and reads every position; open_clip's CLIP text tower adds all 77 position
  embeddings, so it takes 77 ids whatever the text);
- pooling: each tower's own (`encode_image`, `encode_text`), L2-normalised; the score is the cosine.
MobileCLIP's image tower is exported re-parameterised (timm's `reparameterize_model`: its train-time
branches folded into single convolutions, the same function), as Apple ships it for inference.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transform import PreprocessCfg, image_transform_v2
from timm.utils.model import reparameterize_model
from transformers import CLIPTokenizer

from visual_search.model_build import BuildRefused
from visual_search.model_build.clip_vocab import clip_vocab_and_merges
from visual_search.model_build.presets import OPENCLIP_PRESETS
from visual_search.model_build.source import (
    LoadedSource,
    checkpoint_info,
    preset_info,
    unit,
)

WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
SPECIALS = {"bos": "<start_of_text>", "eos": "<end_of_text>"}
# open_clip.tokenizer.SimpleTokenizer's pattern (re.IGNORECASE there; the text is lower-cased first).
OPENCLIP_SPLIT = (
    r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
RESIZE_MODES = {"shortest": "shortest_edge", "squash": "square"}
POOLING = {
    "image": "open_clip encode_image (the vision tower's own pooling and projection)",
    "text": "open_clip encode_text (the text tower's own pooling and projection)",
}


class ImageTower(torch.nn.Module):
    """pixel_values float32 (N, 3, S, S) -> float32 (N, D) unit rows: open_clip's encode_image."""

    def __init__(self, visual: torch.nn.Module):
        super().__init__()
        self.visual = visual

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        features = self.visual(pixel_values)
        return features / features.norm(dim=-1, keepdim=True)


class TextTower(torch.nn.Module):
    """input_ids int64 (N, L) -> float32 (N, D) unit rows: open_clip's encode_text."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(input_ids, normalize=True)


def load_preset(name: str, seed: int) -> LoadedSource:
    model_cfg = OPENCLIP_PRESETS[name]
    torch.manual_seed(seed)
    if isinstance(model_cfg, tuple):  # one of open_clip's own architectures, with random weights
        architecture, tag = model_cfg
        released = open_clip.get_pretrained_cfg(architecture, tag)
        preprocess = {
            k: released[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in released
        }
        model = open_clip.create_model(architecture, pretrained=None, force_preprocess_cfg=preprocess)
        tokenizer = open_clip.get_tokenizer(architecture)
    else:
        model = _model_from_cfg(model_cfg)
        tokenizer = SimpleTokenizer(context_length=model_cfg["text_cfg"]["context_length"])
    info, model_id = preset_info(model, name, seed)
    return _loaded(model.eval(), tokenizer, info, model_id)


def load_checkpoint(path: Path, config: dict[str, Any]) -> LoadedSource:
    if "model_cfg" not in config:
        raise BuildRefused(f"open_clip_config.json in {path} has no model_cfg")
    weights = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
    if not weights:
        raise BuildRefused(f"no weights in {path} (expected one of {', '.join(WEIGHT_FILES)})")
    hub_tokenizer = config["model_cfg"].get("text_cfg", {}).get("hf_tokenizer_name")
    if hub_tokenizer:
        raise BuildRefused(
            f"{path} uses a Hugging Face tokenizer ({hub_tokenizer}) that open_clip would download: "
            "not built (a SigLIP model builds from its transformers checkpoint)"
        )
    try:
        model = open_clip.create_model(f"local-dir:{path}")
        tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
    except Exception as exc:  # open_clip and safetensors raise many types for a damaged folder
        raise BuildRefused(f"cannot load the checkpoint in {path}: {type(exc).__name__}: {exc}") from None
    info, model_id = checkpoint_info(path, weights)
    return _loaded(model.eval(), tokenizer, info, model_id)


def _model_from_cfg(model_cfg: dict[str, Any]) -> torch.nn.Module:
    cfg = copy.deepcopy(model_cfg)
    cls = open_clip.CustomTextCLIP if cfg.pop("custom_text", False) else open_clip.CLIP
    model = cls(**cfg)
    size = cfg["vision_cfg"]["image_size"]
    open_clip.set_model_preprocess_cfg(model, asdict(PreprocessCfg(size=size)))
    return model


def openclip_tokenizer_json(tokenizer: SimpleTokenizer) -> str:
    """open_clip's SimpleTokenizer as a `tokenizers` pipeline: CLIP's byte-level BPE over the same
    vocabulary, with open_clip's names for the start and end tokens. Its text cleaning (ftfy, HTML,
    whitespace, Python's lower()) is not expressible there; the runtime applies it first."""
    vocab, merges = clip_vocab_and_merges()
    vocab = dict(vocab)
    vocab[SPECIALS["bos"]] = vocab.pop("<|startoftext|>")
    vocab[SPECIALS["eos"]] = vocab.pop("<|endoftext|>")
    if (vocab[SPECIALS["bos"]], vocab[SPECIALS["eos"]]) != (tokenizer.sot_token_id, tokenizer.eot_token_id):
        raise BuildRefused("open_clip's tokenizer has another vocabulary than CLIP's BPE file")
    hf = CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        bos_token=SPECIALS["bos"],
        eos_token=SPECIALS["eos"],
        unk_token=SPECIALS["eos"],
        pad_token=SPECIALS["eos"],
    )
    pipeline = json.loads(hf.backend_tokenizer.to_str())
    # open_clip cleans in Python (text_clean.openclip_clean), so nothing is left to normalise; and its
    # split pattern names its own specials (transformers' names `<|startoftext|>`, which open_clip
    # splits as punctuation and letters).
    pipeline["normalizer"] = None
    (split,) = [p for p in pipeline["pre_tokenizer"]["pretokenizers"] if p["type"] == "Split"]
    split["pattern"] = {"Regex": OPENCLIP_SPLIT}
    return json.dumps(pipeline, ensure_ascii=False, indent=2)


def image_spec(model: torch.nn.Module) -> dict[str, Any]:
    cfg = PreprocessCfg(**model.visual.preprocess_cfg)
    size = cfg.size if isinstance(cfg.size, int) else cfg.size[0]
    if not isinstance(cfg.size, int) and cfg.size[0] != cfg.size[1]:
        raise BuildRefused(f"the model's input size {cfg.size} is not square")
    if cfg.resize_mode not in RESIZE_MODES or cfg.interpolation not in ("bicubic", "bilinear"):
        raise BuildRefused(
            f"the model's preprocessing ({cfg.resize_mode}, {cfg.interpolation}) is not built: "
            "shortest or squash resizing, bicubic or bilinear"
        )
    return {
        "resize": RESIZE_MODES[cfg.resize_mode],
        "interpolation": cfg.interpolation,
        "crop_offsets": "round",
        "resize_to": int(size),
        "crop_size": int(size),
        "rescale_factor": 1 / 255,
        "mean": [float(v) for v in cfg.mean],
        "std": [float(v) for v in cfg.std],
    }


def reference_transform(model: torch.nn.Module) -> Any:
    """open_clip's own evaluation transform for the model (PIL image -> float32 (3, S, S) tensor): the
    reference the parity tests hold our preprocessing to."""
    return image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)


def _export_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of the model with timm's train-time branches folded (MobileCLIP's FastViT): the same
    function, fewer convolutions. Other models come back unchanged."""
    return reparameterize_model(copy.deepcopy(model).eval())


def _loaded(model: torch.nn.Module, tokenizer: Any, info: dict[str, Any], model_id: str) -> LoadedSource:
    if not isinstance(tokenizer, SimpleTokenizer) or tokenizer.reduction_fn is not None:
        raise BuildRefused(
            f"the model's tokenizer is {type(tokenizer).__name__}, not open_clip's SimpleTokenizer"
        )
    if tokenizer.clean_fn.__name__ != "_clean_lower":
        raise BuildRefused(
            f"the tokenizer cleans text with {tokenizer.clean_fn.__name__}, not open_clip's default"
        )
    context = int(tokenizer.context_length)

    def reference_ids(texts: list[str]) -> np.ndarray:
        return tokenizer(texts, context_length=context).numpy().astype(np.int64)

    def reference_embeddings(pixels: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            image = model.encode_image(torch.from_numpy(pixels)).float().numpy()
            text = model.encode_text(torch.from_numpy(ids)).float().numpy()
        return {"image": unit(image), "text": unit(text)}

    def towers() -> dict[str, torch.nn.Module]:
        export = _export_copy(model)
        return {"image": ImageTower(export.visual).eval(), "text": TextTower(export).eval()}

    with torch.no_grad():
        embedding_dim = int(model.encode_text(torch.zeros(1, context, dtype=torch.int64)).shape[-1])
    return LoadedSource(
        family="openclip",
        model=model,
        tokenizer=tokenizer,
        tokenizer_json=openclip_tokenizer_json(tokenizer),
        image_spec=image_spec(model),
        text_spec={
            "kind": "clip-bpe",
            "clean": "openclip",
            "context_length": context,
            "bos_token_id": int(tokenizer.sot_token_id),
            "eos_token_id": int(tokenizer.eot_token_id),
            "pad_token_id": 0,
            "padding": "max_length",
            "padding_side": "right",
            "lowercase": True,
        },
        score={"kind": "cosine"},
        pooling=POOLING,
        embedding_dim=embedding_dim,
        towers=towers,
        reference_ids=reference_ids,
        reference_embeddings=reference_embeddings,
        info=info,
        model_id=model_id,
        export_notes={"image_tower": "re-parameterised where timm can (MobileCLIP's FastViT)"},
    )


def save_checkpoint(model: torch.nn.Module, model_cfg: dict[str, Any], folder: Path) -> None:
    """Write an open_clip model as its hub repos hold one: open_clip_config.json + safetensors. For the
    parity tests, which build from such a folder a model made from a preset with random weights."""
    from safetensors.torch import save_model

    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": dict(model.visual.preprocess_cfg)}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    save_model(model, str(folder / "open_clip_model.safetensors"))
