"""Shared fixtures. The tiny model shipped in the package (src/visual_search/models/tiny) was built by
`visual-search build-model --preset tiny --precisions int8`, so every test can embed without torch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# No test reaches the real Hugging Face hub: a command left without VS_MODEL_DIR falls back to the tiny
# model at once (the download tests run their own fake hub, in a subprocess with its own environment).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from visual_search.embedding import Embedder
from visual_search.model_build.default_model import TINY_MODEL_DIR

ROOT = Path(__file__).resolve().parent.parent
TINY_MODEL = TINY_MODEL_DIR


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    return TINY_MODEL


@pytest.fixture(scope="session")
def tiny_embedder() -> Embedder:
    return Embedder.from_dir(TINY_MODEL)


@pytest.fixture(scope="session")
def tiny_siglip2_48_model_dir(tmp_path_factory) -> Path:
    """A tiny SigLIP 2 with 48-dimensional embeddings (preset `tiny-siglip2-48`): another family and
    another dimension than the shipped tiny CLIP's 32. Built once per session by the build tool (about
    20 s); skipped where the build extra (torch, transformers) is not installed."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from visual_search.cli import main

    out = tmp_path_factory.mktemp("models") / "tiny-siglip2-48"
    argv = ["build-model", "--preset", "tiny-siglip2-48", "--precisions", "int8", "--out", str(out)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    """A real single-node OpenSearch with the k-NN plugin (tests/opensearch_node.py): started once for
    the session (fetched from Maven Central first if need be) and stopped at its end, unless one was
    already running (`make opensearch-start`), which is reused and left running."""
    from tests import opensearch_node

    if os.environ.get("VS_OPENSEARCH") == "off":
        pytest.skip("VS_OPENSEARCH=off: the real OpenSearch node is not started")
    already = opensearch_node.running_url()
    url = already or opensearch_node.start()
    yield url
    if not already:
        opensearch_node.stop()
