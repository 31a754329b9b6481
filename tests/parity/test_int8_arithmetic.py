"""int8 towers compute the same sums on every CPU.

onnxruntime's u8 x s8 GEMM on x86 without VNNI (AVX2, AVX-512 alone) adds pairs of products in int16,
which saturates unless the session asks for exact sums (`session_options`). On such a CPU the ViT-B/32
text tower fell from 0.9995 to 0.9988 mean cosine and `make model-vit` was refused. Elsewhere (VNNI,
arm64) these tests pass either way; on the CPUs that saturate they fail without the option.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from visual_search.embedding.encoder import session_options
from visual_search.model_build import parity

K = 64
# Column 0: every weight the largest int8 value, so each pair of u8 x s8 products is 2 * 255 * 127,
# twice what int16 holds. Column 1: every other weight zero, so no pair exceeds int16.
WEIGHTS = np.stack([np.ones(K), np.arange(K) % 2 == 0], axis=1).astype(np.float32)
ACTIVATIONS = np.ones((3, K), dtype=np.float32)  # quantized to 255, the largest u8


def _int8_matmul(folder: Path) -> Path:
    """x float32 (N, K) -> x @ WEIGHTS float32 (N, 2), quantized as the towers are (quantize_tower)."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
        [numpy_helper.from_array(WEIGHTS, "w")],
    )
    fp32, int8 = folder / "matmul_fp32.onnx", folder / "matmul_int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), fp32)
    quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
    return int8


def test_runtime_sessions_compute_int8_sums_that_would_overflow_int16_exactly(tmp_path):
    session = ort.InferenceSession(
        str(_int8_matmul(tmp_path)), session_options(threads=1), providers=["CPUExecutionProvider"]
    )

    (got,) = session.run(None, {"x": ACTIVATIONS})

    np.testing.assert_allclose(got, ACTIVATIONS @ WEIGHTS, rtol=1e-3)


def test_the_builds_parity_check_runs_int8_towers_as_the_runtime_does(tmp_path):
    expected = ACTIVATIONS @ WEIGHTS
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)

    got = parity.onnx_embeddings(str(_int8_matmul(tmp_path)), "x", ACTIVATIONS)

    assert np.sum(got * expected, axis=1).min() > 0.9999
