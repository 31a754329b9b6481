"""The build tool's contract: what it writes, and the one-line refusals."""

from __future__ import annotations

import json
import shutil

import onnx
import torch

from visual_search.cli import main as cli_main
from visual_search.embedding import Embedder, Manifest
from visual_search.model_build import parity
from visual_search.model_build.export import ImageTower


def _refusal(capsys, argv: list[str]) -> str:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ")
    return err[-1]


def test_build_writes_both_precisions_tokenizer_and_a_verifiable_manifest(built_model):
    manifest = Manifest.load(built_model)
    manifest.verify_all()
    assert set(manifest.towers["image"]) == set(manifest.towers["text"]) == {"fp32", "int8"}
    raw = manifest.raw
    assert raw["source"]["kind"] == "checkpoint"
    assert len(raw["source"]["sha256"]) == 64
    assert raw["opset"] >= 17
    assert raw["quantization"]["weight_type"] == "QInt8"
    assert raw["image"]["crop_size"] == 224
    assert (raw["family"], raw["score"], raw["text"]["padding"]) == ("clip", {"kind": "cosine"}, "longest")
    assert (raw["image"]["resize"], raw["image"]["interpolation"]) == ("shortest_edge", "bicubic")
    assert set(raw["files"]) == {p.name for p in built_model.iterdir() if p.name != "manifest.json"}


def test_the_patch_embedding_of_the_int8_image_tower_is_an_int8_gemm_not_an_fp32_conv(built_model):
    manifest = Manifest.load(built_model)
    graph = onnx.load(str(built_model / manifest.towers["image"]["int8"])).graph
    ops = [node.op_type for node in graph.node]
    assert "Conv" not in ops
    patch_weights = [
        i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8 and 3 * 32 * 32 in i.dims
    ]
    assert patch_weights, "the (3·32·32, width) patch weights are stored as int8"


def test_the_image_towers_last_layer_runs_its_mlp_on_the_class_token_only(reference_model):
    tower = ImageTower(reference_model).eval()
    size = reference_model.config.vision_config.image_size
    mlp_inputs = []
    tower.last.mlp.register_forward_hook(lambda _module, args, _out: mlp_inputs.append(tuple(args[0].shape)))
    with torch.no_grad():
        unit = tower(torch.rand(3, 3, size, size))
    assert mlp_inputs == [(3, 1, reference_model.config.vision_config.hidden_size)]
    assert unit.shape == (3, reference_model.config.projection_dim)


def test_text_tower_accepts_any_sequence_length_and_batch(built_model):
    embedder = Embedder.from_dir(built_model, precision="fp32")
    assert embedder.embed_texts(["a"]).shape == (1, embedder.dim)
    assert embedder.embed_texts(["word " * 100] * 3).shape == (3, embedder.dim)


def test_checkpoint_without_tokenizer_files_gets_clip_vocabulary(reference_checkpoint, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(reference_checkpoint / name, bare / name)
    assert (
        cli_main(
            ["build-model", "--checkpoint", str(bare), "--out", str(tmp_path / "m"), "--precisions", "int8"]
        )
        == 0
    )
    manifest = Manifest.load(tmp_path / "m")
    assert set(manifest.towers["text"]) == {"int8"}
    assert Embedder(manifest).embed_texts(["a cat"]).shape == (1, manifest.embedding_dim)


def test_existing_output_is_refused_without_force(built_model, capsys):
    line = _refusal(capsys, ["build-model", "--preset", "tiny", "--out", str(built_model)])
    assert "exists" in line
    assert "--force" in line


def test_missing_checkpoint_is_refused(tmp_path, capsys):
    line = _refusal(
        capsys, ["build-model", "--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]
    )
    assert "does not exist" in line


def test_folder_without_config_is_refused(tmp_path, capsys):
    (tmp_path / "ckpt").mkdir()
    line = _refusal(
        capsys, ["build-model", "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "o")]
    )
    assert "config.json" in line


def test_non_clip_architecture_is_refused(tmp_path, capsys):
    ckpt = tmp_path / "bert"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (ckpt / "model.safetensors").write_bytes(b"x")
    line = _refusal(capsys, ["build-model", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")])
    assert "bert" in line
    assert "not a CLIP model" in line


def test_corrupt_weights_are_refused(reference_checkpoint, tmp_path, capsys):
    ckpt = tmp_path / "corrupt"
    shutil.copytree(reference_checkpoint, ckpt)
    (ckpt / "model.safetensors").write_bytes(b"\x00garbage" * 100)
    line = _refusal(capsys, ["build-model", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")])
    assert "cannot load the checkpoint" in line
    assert not (tmp_path / "o").exists()


def test_parity_below_the_bar_is_refused_and_leaves_no_output(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(parity, "INT8_MEAN_COSINE", 1.01)  # no int8 model can reach it
    line = _refusal(capsys, ["build-model", "--preset", "tiny", "--out", str(tmp_path / "o")])
    assert "parity below the bar" in line
    assert not (tmp_path / "o").exists()
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_an_existing_folder(tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert (
        cli_main(
            [
                "build-model",
                "--preset",
                "tiny",
                "--seed",
                "3",
                "--out",
                str(out),
                "--force",
                "--precisions",
                "int8",
            ]
        )
        == 0
    )
    assert not (out / "stale.txt").exists()
    source = Manifest.load(out).raw["source"]
    assert (source["kind"], source["ref"], source["seed"]) == ("preset", "tiny", 3)
