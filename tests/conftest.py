"""Shared fixtures. The tiny model committed under models/tiny was built by `visual-search build-model
--preset tiny --precisions int8`, so every test can embed without torch."""

from __future__ import annotations

from pathlib import Path

import pytest

from visual_search.embedding import Embedder

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = ROOT / "models" / "tiny"


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_embedder() -> Embedder:
    return Embedder.from_dir(TINY_MODEL)
