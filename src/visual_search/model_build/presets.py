"""Architecture presets built with random weights, per family: tiny ones for tests, real-size ones for
benchmarks (same compute and file sizes as the real checkpoints). Plain data, no torch: the CLI lists
the names."""

from __future__ import annotations

from typing import Any

CLIP_VOCAB_SIZE = 49408
CLIP_CONTEXT_LENGTH = 77

# The exact architecture of openai/clip-vit-base-patch32 (its config.json), so compute and file sizes
# match the real model even though the weights are random.
VIT_B_32: dict[str, Any] = {
    "projection_dim": 512,
    "text_config": {
        "vocab_size": CLIP_VOCAB_SIZE,
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "max_position_embeddings": CLIP_CONTEXT_LENGTH,
        "hidden_act": "quick_gelu",
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 32,
        "hidden_act": "quick_gelu",
    },
}

# Small enough to build in seconds and commit (a few MB), but with CLIP's real vocabulary, context
# length and 224-pixel input, so the tokenizer and preprocessing paths are the production ones.
# The width and depth every tiny test preset's towers share.
TINY_TOWER: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
}
TINY: dict[str, Any] = {
    "projection_dim": 32,
    "text_config": {
        **VIT_B_32["text_config"],
        **TINY_TOWER,
    },
    "vision_config": {
        **VIT_B_32["vision_config"],
        **TINY_TOWER,
    },
}

CLIP_PRESETS = {"tiny": TINY, "vit-b-32": VIT_B_32}

GEMMA_VOCAB_SIZE = 256000
SIGLIP2_CONTEXT_LENGTH = 64

# The architecture of google/siglip2-base-patch16-224 (its config.json: SiglipModel, Gemma's 256k
# vocabulary, 64 text positions), so compute and file sizes match the real model.
VIT_B_16_SIGLIP2: dict[str, Any] = {
    "text_config": {
        "vocab_size": GEMMA_VOCAB_SIZE,
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "max_position_embeddings": SIGLIP2_CONTEXT_LENGTH,
        "hidden_act": "gelu_pytorch_tanh",
        "layer_norm_eps": 1e-6,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 16,
        "hidden_act": "gelu_pytorch_tanh",
        "layer_norm_eps": 1e-6,
    },
}
# Builds in seconds: a small vocabulary (what the test tokenizers use fits in it), 2 layers of width 32.
TINY_SIGLIP2: dict[str, Any] = {
    "text_config": {
        **VIT_B_16_SIGLIP2["text_config"],
        "vocab_size": 1024,
        **TINY_TOWER,
    },
    "vision_config": {
        **VIT_B_16_SIGLIP2["vision_config"],
        **TINY_TOWER,
    },
}
# The same at width 48: embeddings of another dimension than every other tiny preset's 32, so a switch
# of family can be tested as it happens for real (CLIP ViT-B/32's 512 to SigLIP 2 ViT-B/16's 768).
TINY_SIGLIP2_48: dict[str, Any] = {
    "text_config": {**TINY_SIGLIP2["text_config"], "hidden_size": 48},
    "vision_config": {**TINY_SIGLIP2["vision_config"], "hidden_size": 48},
}
SIGLIP_PRESETS = {
    "tiny-siglip2": TINY_SIGLIP2,
    "tiny-siglip2-48": TINY_SIGLIP2_48,
    "vit-b-16-siglip2": VIT_B_16_SIGLIP2,
}

# OpenCLIP: open_clip's own architecture names (LAION's ViT-B-32 is open_clip's ViT-B-32; MobileCLIP's
# image towers are timm's FastViT MCi), or a model config for the tiny test models: one with CLIP's
# causal text tower (open_clip's CLIP class), one with MobileCLIP's bidirectional one (CustomTextCLIP).
TINY_OPENCLIP: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 32, "head_width": 16, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
TINY_OPENCLIP_BIDIRECTIONAL: dict[str, Any] = {
    **TINY_OPENCLIP,
    "text_cfg": {**TINY_OPENCLIP["text_cfg"], "no_causal_mask": True},
    "custom_text": True,
}
# The real ones as (architecture, pretrained tag): the tag's preprocessing (MobileCLIP: bilinear, mean 0,
# std 1) is the released checkpoint's; the weights stay random.
OPENCLIP_PRESETS: dict[str, tuple[str, str] | dict[str, Any]] = {
    "tiny-openclip": TINY_OPENCLIP,
    "tiny-openclip-bidirectional": TINY_OPENCLIP_BIDIRECTIONAL,
    "vit-b-32-laion": ("ViT-B-32", "laion2b_s34b_b79k"),
    "mobileclip-s1": ("MobileCLIP-S1", "datacompdr"),
    "mobileclip-s2": ("MobileCLIP-S2", "datacompdr"),
    "mobileclip-b": ("MobileCLIP-B", "datacompdr"),
}

FAMILY_OF = {
    **dict.fromkeys(CLIP_PRESETS, "clip"),
    **dict.fromkeys(SIGLIP_PRESETS, "siglip"),
    **dict.fromkeys(OPENCLIP_PRESETS, "openclip"),
}
