"""Parity tier: the runtime against the reference (transformers + torch). Needs the `build` extra.

A checkpoint folder in Hugging Face format is made once per session from the tiny preset; the model is
then built from that folder by the real CLI, and the reference is CLIPModel.from_pretrained of the
same folder, so the whole checkpoint path is exercised.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import CLIPModel
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from visual_search.cli import main as cli_main
from visual_search.model_build.source import load_preset


@pytest.fixture(scope="session")
def reference_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt") / "tiny-clip"
    source = load_preset("tiny", seed=7)
    source.model.save_pretrained(folder)
    source.tokenizer.save_pretrained(folder)
    CLIPImageProcessorPil().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def reference_model(reference_checkpoint) -> CLIPModel:
    torch.manual_seed(0)
    return CLIPModel.from_pretrained(reference_checkpoint, attn_implementation="eager").eval()


@pytest.fixture(scope="session")
def built_model(reference_checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "model"
    assert cli_main(["build-model", "--checkpoint", str(reference_checkpoint), "--out", str(out)]) == 0
    return out
