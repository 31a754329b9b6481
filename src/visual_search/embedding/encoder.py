"""The embedder: ONNX image and text towers behind batch APIs returning unit-length float32 rows.

Sessions are created lazily (a search that only needs the text tower never loads the image tower) and
kept for the life of the process, so a warm Lambda pays for them once. Each tower file is checked
against the manifest's sha256 as it is read.

Threads: unless told, a session uses as many intra-op threads as the Lambda function has vCPUs by its
memory size (`lambda_threads`), and one off Lambda. A Lambda shows more cores than its CPU share, so
sizing by the visible core count would oversubscribe a small function.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from visual_search.embedding.decode import DecodeLimits, ImageSource, decode_image
from visual_search.embedding.manifest import PRECISIONS, Manifest
from visual_search.embedding.preprocess import preprocess_batch
from visual_search.embedding.tokenizer import TextTokenizer
from visual_search.errors import ModelError

# Lambda allocates CPU in proportion to memory: one vCPU at 1,769 MB, six (the most) at 10,240 MB.
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-function-common.html#configuration-memory-console
LAMBDA_MB_PER_VCPU = 1769
LAMBDA_MAX_VCPUS = 6
LAMBDA_MEMORY_VARIABLE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"


def lambda_threads(memory_mb: int) -> int:
    """Intra-op threads for a Lambda function with `memory_mb` of memory: its vCPU share rounded to the
    nearest whole vCPU, at least one and at most six.

    >>> [lambda_threads(mb) for mb in (128, 1769, 2048, 3008, 3538, 5307, 10240)]
    [1, 1, 1, 2, 2, 3, 6]
    """
    return max(1, min(LAMBDA_MAX_VCPUS, round(memory_mb / LAMBDA_MB_PER_VCPU)))


def default_threads(environ: Mapping[str, str] = os.environ) -> int:
    """`lambda_threads` of the function's memory on Lambda; 1 elsewhere (or if the variable is malformed)."""
    memory = environ.get(LAMBDA_MEMORY_VARIABLE, "")
    return lambda_threads(int(memory)) if memory.isdigit() else 1


# On x86 CPUs without VNNI (AVX2 or AVX-512 alone, e.g. AMD Zen 2/3) onnxruntime's u8 x s8 GEMM adds
# pairs of products in int16 (VPMADDUBSW), which saturates: 255 * 127 * 2 > 32767. Per-channel int8
# weights reach ±127 in every column, so the ViT-B/32 text tower fell from 0.9995 to 0.9988 mean cosine
# on such a CPU. This option makes onnxruntime convert those weights to u8 at load there (exact u8 x u8
# sums; 5-17% slower on that CPU); on VNNI x86 and arm64 it changes nothing.
# https://github.com/microsoft/onnxruntime/pull/12088
EXACT_INT8_ON_X64 = ("session.x64quantprecision", "1")


def session_options(threads: int) -> ort.SessionOptions:
    """The options of every tower session: the runtime's, and the build's parity check's, so the
    build measures the arithmetic the runtime will do on the same CPU."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry(*EXACT_INT8_ON_X64)
    return opts


class Embedder:
    """Embeddings from a model folder made by `visual-search build-model`, for every family (CLIP,
    SigLIP, OpenCLIP): preprocessing and tokenization follow the manifest, the towers are ONNX.

    >>> from visual_search.model_build.default_model import TINY_MODEL_DIR
    >>> emb = Embedder.from_dir(TINY_MODEL_DIR)
    >>> emb.embed_texts(["a red shirt"]).shape
    (1, 32)
    """

    def __init__(
        self,
        manifest: Manifest,
        precision: str = "int8",
        threads: int | None = None,
        limits: DecodeLimits | None = None,
    ):
        if precision not in PRECISIONS:
            raise ModelError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.manifest = manifest
        self.precision = precision
        self.threads = default_threads() if threads is None else threads
        self.limits = limits or DecodeLimits()
        self._sessions: dict[str, ort.InferenceSession] = {}
        self._tokenizer: TextTokenizer | None = None
        self._locks = {name: threading.Lock() for name in ("image", "text", "tokenizer")}

    @classmethod
    def from_dir(cls, folder: str | Path, **kwargs) -> Embedder:
        """For the benchmarks and the parity tests, which load a folder as it is; the service builds its
        embedder in `bootstrap` (where the image tower may be remote)."""
        return cls(Manifest.load(folder), **kwargs)

    @property
    def model_id(self) -> str:
        return self.manifest.model_id

    @property
    def dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def loaded_towers(self) -> frozenset[str]:
        """The towers loaded so far: what the tests check lazy loading by."""
        return frozenset(self._sessions)

    def session_options(self, tower: str) -> ort.SessionOptions:
        return self._session(tower).get_session_options()

    def load(self, towers: Sequence[str] = ("image", "text")) -> None:
        """Load towers now instead of on first use (e.g. during a Lambda's init phase). The files are
        read, verified and compiled concurrently: onnxruntime and hashlib release the GIL while they work."""
        jobs: list[Callable[[], object]] = [functools.partial(self._session, t) for t in towers]
        if "text" in towers:
            jobs.append(self._text_tokenizer)
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            for future in [pool.submit(job) for job in jobs]:
                future.result()

    def embed_pixels(self, pixel_values: np.ndarray) -> np.ndarray:
        """float32 (N, 3, S, S) preprocessed pixels (S = manifest.image.size) -> float32 (N, D) unit rows."""
        if len(pixel_values) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._run("image", "pixel_values", np.ascontiguousarray(pixel_values, dtype=np.float32))

    def embed_images(self, images: Sequence[ImageSource]) -> np.ndarray:
        """Images (bytes, paths or PIL images) -> float32 (N, D). Raises ImageRejected on the first bad one.
        For the tests and the parity checks: the service decodes each image itself (a bad one fails
        alone) and embeds the pixels (`embed_pixels`)."""
        side = self.manifest.image.resize_to
        decoded = [decode_image(im, self.limits, min_side=side).image for im in images]
        return self.embed_pixels(preprocess_batch(decoded, self.manifest.image))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> float32 (N, D) unit rows; each text truncated to the model's context length."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._run("text", "input_ids", self.token_ids(texts))

    def token_ids(self, texts: Sequence[str]) -> np.ndarray:
        """The int64 (N, L) ids the text tower receives for `texts`."""
        return self._text_tokenizer().encode_batch(texts)

    def _run(self, tower: str, input_name: str, batch: np.ndarray) -> np.ndarray:
        (out,) = self._session(tower).run(None, {input_name: batch})
        # The graph already L2-normalises; renormalising in float32 keeps rows unit length after int8.
        out = out.astype(np.float32, copy=False)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def _session(self, tower: str) -> ort.InferenceSession:
        session = self._sessions.get(tower)
        if session is None:
            with self._locks[tower]:
                session = self._sessions.get(tower)
                if session is None:
                    data = self.manifest.read_verified(self.manifest.tower_file(tower, self.precision))
                    options = session_options(self.threads)
                    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
                    self._sessions[tower] = session
        return session

    def _text_tokenizer(self) -> TextTokenizer:
        if self._tokenizer is None:
            with self._locks["tokenizer"]:
                if self._tokenizer is None:
                    raw = self.manifest.read_verified(self.manifest.tokenizer_file).decode("utf-8")
                    self._tokenizer = TextTokenizer(raw, self.manifest.text)
        return self._tokenizer
