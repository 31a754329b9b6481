import json
import shutil

import pytest

from visual_search.embedding import Embedder, Manifest
from visual_search.errors import ChecksumMismatch, ModelError


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_committed_tiny_model_verifies(tiny_model_dir):
    manifest = Manifest.load(tiny_model_dir)
    manifest.verify_all()
    assert manifest.embedding_dim == 32
    assert manifest.text.context_length == 77


def test_missing_manifest_names_the_build_command(tmp_path):
    with pytest.raises(ModelError, match="build-model"):
        Manifest.load(tmp_path)


def test_tampered_tower_is_refused_when_loaded(model_copy):
    tower = model_copy / "text_int8.onnx"
    data = bytearray(tower.read_bytes())
    data[-100] ^= 0xFF
    tower.write_bytes(bytes(data))
    embedder = Embedder.from_dir(model_copy)
    with pytest.raises(ChecksumMismatch, match=r"text_int8\.onnx"):
        embedder.embed_texts(["a cat"])


def test_unknown_format_version_is_refused(model_copy):
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    raw["format_version"] = 99
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="format_version"):
        Manifest.load(model_copy)


def test_missing_field_is_named(model_copy):
    path = model_copy / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["embedding_dim"]
    path.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="embedding_dim"):
        Manifest.load(model_copy)


def test_missing_precision_is_a_clear_error(tiny_model_dir):
    embedder = Embedder.from_dir(tiny_model_dir, precision="fp32")
    with pytest.raises(ModelError, match="no fp32 text tower"):
        embedder.embed_texts(["a cat"])
