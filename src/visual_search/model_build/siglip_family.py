"""SigLIP and SigLIP 2 through transformers' SiglipModel (the fixed-resolution SigLIP 2 checkpoints, such
as google/siglip2-base-patch16-224, are `model_type: siglip` and load as SiglipModel too; the NaFlex
ones are Siglip2Model and are refused by the source).

Every runtime detail is read from transformers:
- pixels: SiglipImageProcessorPil (from the checkpoint's preprocessor_config.json, else its defaults):
  resize straight to the square size with its `resample`, no crop, rescale, mean/std (0.5 each);
- ids: for a Gemma vocabulary (SigLIP 2), transformers' Siglip2Tokenizer built from the checkpoint's
  tokenizer.json: SigLIP 2 was trained on lower-cased text, which Siglip2Tokenizer applies (transformers
  5.24's AutoTokenizer would load a fixed-resolution checkpoint's GemmaTokenizer, which does not);
  padding, truncation and length from Siglip2Processor's text defaults (every text padded to 64, on the
  tokenizer's padding side), since the text tower reads the last position whatever it holds;
- pooling: the image tower's attention-pooling head over every patch, the text tower's last position;
- score: sigmoid(exp(logit_scale) * cos + logit_bias), both stored in the manifest.
SigLIP (1) checkpoints ship a SentencePiece `spiece.model` read by SiglipTokenizer, whose Python-side
punctuation stripping has no tested `tokenizers` equivalent here: they are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import SiglipConfig, SiglipModel
from transformers.image_utils import PILImageResampling
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil
from transformers.models.siglip2.processing_siglip2 import Siglip2Processor
from transformers.models.siglip2.tokenization_siglip2 import Siglip2Tokenizer

from visual_search.model_build import BuildRefused, parity
from visual_search.model_build.presets import SIGLIP_PRESETS
from visual_search.model_build.source import (
    LoadedSource,
    checkpoint_info,
    normalizer_lowercases,
    preset_info,
    read_config,
    weight_files,
)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
GEMMA_TOKENIZERS = ("GemmaTokenizer", "GemmaTokenizerFast", "Siglip2Tokenizer")
INTERPOLATIONS = {PILImageResampling.BICUBIC: "bicubic", PILImageResampling.BILINEAR: "bilinear"}
GEMMA_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")  # ids 0-4, as in Gemma's vocabulary
POOLING = {
    "image": "attention-pooling head (a learned probe) over every patch token",
    "text": "last position (padding included), final layernorm, head",
}
EXPORT_NOTES = {"patch_embedding": "Conv (fp32; under 1% of the image tower's multiply-adds at patch 16)"}


class ImageTower(torch.nn.Module):
    """pixel_values float32 (N, 3, S, S) -> float32 (N, D) unit rows: SiglipVisionModel's pooled output."""

    def __init__(self, model: SiglipModel):
        super().__init__()
        self.vision = model.vision_model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision(pixel_values=pixel_values).pooler_output
        return pooled / pooled.norm(dim=-1, keepdim=True)


class TextTower(torch.nn.Module):
    """input_ids int64 (N, L) -> float32 (N, D) unit rows: SiglipTextModel's pooled output, with no
    attention mask, as get_text_features is called (the model was trained reading padding too)."""

    def __init__(self, model: SiglipModel):
        super().__init__()
        self.text = model.text_model

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        pooled = self.text(input_ids=input_ids).pooler_output
        return pooled / pooled.norm(dim=-1, keepdim=True)


def load_preset(name: str, seed: int) -> LoadedSource:
    config = SiglipConfig(**SIGLIP_PRESETS[name])
    torch.manual_seed(seed)
    model = SiglipModel(config)
    model.set_attn_implementation("eager")
    info, model_id = preset_info(model, name, seed)
    return _loaded(model.eval(), byte_level_gemma_tokenizer(), SiglipImageProcessorPil(), info, model_id)


def load_checkpoint(path: Path, config: dict[str, Any]) -> LoadedSource:
    tokenizer = _checkpoint_tokenizer(path)
    weights = weight_files(path, WEIGHT_FILES)
    try:
        model = SiglipModel.from_pretrained(path, attn_implementation="eager", local_files_only=True)
    except Exception as exc:  # transformers raises many types for a damaged file; all mean the same here
        raise BuildRefused(f"cannot load the checkpoint in {path}: {type(exc).__name__}: {exc}") from None
    if (path / "preprocessor_config.json").is_file():
        processor = SiglipImageProcessorPil.from_pretrained(path, local_files_only=True)
    else:
        processor = SiglipImageProcessorPil()
    info, model_id = checkpoint_info(path, weights)
    return _loaded(model.eval(), tokenizer, processor, info, model_id)


def byte_level_gemma_tokenizer() -> Siglip2Tokenizer:
    """A Gemma-layout tokenizer for the random-weight presets (Gemma's vocabulary cannot be downloaded
    here): Gemma's special tokens at ids 0-4, its 256 byte-fallback tokens and "▁", no merges, so every
    text is spelt in bytes; the end token added as the real checkpoints' tokenizer.json adds it.
    The text tower always takes 64 ids, so latency does not depend on the vocabulary."""
    pieces = [*GEMMA_SPECIALS, *(f"<0x{b:02X}>" for b in range(256)), "▁"]
    vocab = {piece: i for i, piece in enumerate(pieces)}
    return Siglip2Tokenizer(vocab=vocab, merges=[], add_bos_token=False, add_eos_token=True)


def _checkpoint_tokenizer(path: Path) -> Siglip2Tokenizer:
    has_config = (path / "tokenizer_config.json").is_file()
    tok_config = read_config(path, "tokenizer_config.json") if has_config else {}
    if (path / "spiece.model").is_file() or tok_config.get("tokenizer_class") == "SiglipTokenizer":
        raise BuildRefused(
            f"{path} is a SigLIP (1) checkpoint: its SentencePiece tokenizer (SiglipTokenizer, which strips "
            "punctuation in Python) is not built; SigLIP 2 checkpoints (Gemma tokenizer) are"
        )
    if not (path / "tokenizer.json").is_file() or tok_config.get("tokenizer_class") not in GEMMA_TOKENIZERS:
        raise BuildRefused(
            f"no SigLIP 2 tokenizer in {path} (expected tokenizer.json with tokenizer_class "
            f"{' or '.join(GEMMA_TOKENIZERS)})"
        )
    try:
        return Siglip2Tokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise BuildRefused(f"cannot load the tokenizer files in {path}: {exc}") from None


def image_spec(processor: SiglipImageProcessorPil) -> dict[str, Any]:
    """The manifest's "image" from a SigLIP image processor; BuildRefused for settings it cannot express."""
    size = processor.size
    if size.height is None or size.height != size.width:
        raise BuildRefused(f"the image processor's size {dict(size)} is not a square height x width")
    if getattr(processor, "do_center_crop", None) or not (processor.do_resize and processor.do_normalize):
        raise BuildRefused("the image processor crops, or does not resize or normalise: not SigLIP's")
    resample = PILImageResampling(processor.resample)
    if resample not in INTERPOLATIONS:
        raise BuildRefused(f"the image processor resamples with {resample.name}, not bicubic or bilinear")
    return {
        "resize": "square",
        "interpolation": INTERPOLATIONS[resample],
        "crop_offsets": "floor",
        "resize_to": int(size.height),
        "crop_size": int(size.height),
        "rescale_factor": float(processor.rescale_factor) if processor.do_rescale else 1.0,
        "mean": [float(v) for v in processor.image_mean],
        "std": [float(v) for v in processor.image_std],
    }


def _loaded(
    model: SiglipModel,
    tok: Siglip2Tokenizer,
    processor: SiglipImageProcessorPil,
    info: dict[str, Any],
    model_id: str,
) -> LoadedSource:
    context = int(model.config.text_config.max_position_embeddings)
    text_kwargs = {**Siglip2Processor.text_kwargs, "max_length": context}
    vocab_size = model.config.text_config.vocab_size
    if len(tok) > vocab_size:
        raise BuildRefused(f"the tokenizer has {len(tok)} tokens, more than the model's {vocab_size}")
    tokenizer_json = tok.backend_tokenizer.to_str(pretty=True)

    def reference_ids(texts: list[str]) -> np.ndarray:
        return tok(texts, return_tensors="np", **text_kwargs)["input_ids"].astype(np.int64)

    def reference_embeddings(pixels: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
        return parity.reference_embeddings(model, pixels, ids)

    return LoadedSource(
        family="siglip",
        model=model,
        tokenizer=tok,
        tokenizer_json=tokenizer_json,
        image_spec=image_spec(processor),
        text_spec={
            "kind": "gemma-bpe",
            "context_length": context,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": int(tok.pad_token_id),
            "padding": text_kwargs["padding"],
            "padding_side": tok.padding_side,
            "lowercase": normalizer_lowercases(tokenizer_json),
        },
        score={
            "kind": "sigmoid",
            "logit_scale": float(model.logit_scale.detach().exp()),
            "logit_bias": float(model.logit_bias.detach()),
        },
        pooling=POOLING,
        embedding_dim=_embedding_dim(model),
        towers=lambda: {"image": ImageTower(model).eval(), "text": TextTower(model).eval()},
        reference_ids=reference_ids,
        reference_embeddings=reference_embeddings,
        info=info,
        model_id=model_id,
        export_notes=EXPORT_NOTES,
    )


def _embedding_dim(model: SiglipModel) -> int:
    # No projection: the image embedding is the vision width, the text one the text head's output.
    image, text = model.config.vision_config.hidden_size, model.config.text_config.projection_size
    if image != text:
        raise BuildRefused(f"image embeddings have {image} dimensions and text embeddings {text}")
    return int(text)
