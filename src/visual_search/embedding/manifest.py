"""The model manifest: what the build tool wrote, and the contract the runtime checks before loading.

A model folder holds `manifest.json`, the ONNX towers (fp32 and int8), and `tokenizer.json`. The manifest
records everything the runtime needs, per model family (CLIP, SigLIP, OpenCLIP): how pixels are made
(resize mode, interpolation, crop, mean/std), how texts become ids (fixed or longest padding, padding
side, pad id, context length), what the score of a match means, and the embedding dimension, so the
runtime never guesses; plus the sha256 of every file so a damaged or swapped file is refused.

Format 1 (before families) is read as CLIP with CLIP's preprocessing and tokenization, unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from visual_search.embedding.text_clean import CLEANS
from visual_search.errors import ChecksumMismatch, ModelError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: CLIP only, written before families; read with CLIP's defaults
PRECISIONS = ("int8", "fp32")
TOWERS = ("image", "text")
FAMILIES = ("clip", "siglip", "openclip")
RESIZE_MODES = ("shortest_edge", "square")
INTERPOLATIONS = ("bicubic", "bilinear")
CROP_OFFSETS = ("floor", "round")
PADDINGS = ("longest", "max_length")
PADDING_SIDES = ("right", "left")
SCORE_KINDS = ("cosine", "sigmoid")


def _per_channel(values: Any) -> tuple[float, float, float]:
    """Three floats (R, G, B); ValueError otherwise."""
    red, green, blue = (float(v) for v in values)
    return red, green, blue


def _one_of(value: Any, allowed: tuple[str, ...], name: str) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


@dataclass(frozen=True)
class ImageSpec:
    """How a picture becomes the image tower's pixels (`embedding.preprocess`).

    `resize`: "shortest_edge" scales the shortest side to `resize_to` keeping the aspect ratio, then
    crops the centre `crop_size` square (CLIP, OpenCLIP); "square" scales straight to `resize_to` x
    `resize_to`, no crop (SigLIP). `crop_offsets`: the centre crop's offsets rounded down
    (transformers) or to the nearest (torchvision, which OpenCLIP uses). Then scale by `rescale_factor`
    and normalise with `mean` / `std` per channel."""

    resize_to: int
    crop_size: int
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "shortest_edge"
    interpolation: str = "bicubic"
    crop_offsets: str = "floor"

    @property
    def size(self) -> int:
        """The side of the square the image tower takes."""
        return self.resize_to if self.resize == "square" else self.crop_size


@dataclass(frozen=True)
class TextSpec:
    """How texts become the text tower's ids (`embedding.tokenizer`). `tokenizer.json` holds the
    reference tokenizer's own pipeline (normalisation, lower-casing where the model does it, the
    vocabulary and the special tokens it adds); this says how a batch is cut and padded.

    `padding`: "longest" pads a batch to its longest item (CLIP: its causal mask keeps padding out of
    the pooled token); "max_length" pads every text to `context_length` (SigLIP and OpenCLIP towers
    without a causal mask read every position, so padding changes the embedding)."""

    context_length: int
    bos_token_id: int | None
    eos_token_id: int | None
    pad_token_id: int
    padding: str = "longest"
    padding_side: str = "right"
    lowercase: bool = True  # what the tokenizer.json does (recorded; the file itself applies it)
    kind: str = "clip-bpe"  # the tokenizer's model: clip-bpe, gemma-bpe, ...
    clean: str = "none"  # Python-side cleaning before tokenizer.json (embedding.text_clean)


@dataclass(frozen=True)
class ScoreSpec:
    """What the similarity of a query and an image means for this model (`embedding.score`).

    "cosine": the cosine of the two unit vectors (CLIP and OpenCLIP, trained with a softmax over a
    batch: a cosine has no absolute meaning, only an order). "sigmoid": SigLIP was trained so that
    sigmoid(logit_scale * cosine + logit_bias) is the probability that the text matches the image;
    `logit_scale` is the model's exp(logit_scale) parameter, ready to multiply."""

    kind: str = "cosine"
    logit_scale: float | None = None
    logit_bias: float | None = None


@dataclass(frozen=True)
class Manifest:
    folder: Path
    model_id: str
    embedding_dim: int
    image: ImageSpec
    text: TextSpec
    towers: dict[str, dict[str, str]]
    tokenizer_file: str
    files: dict[str, str]
    raw: dict[str, Any]
    family: str = "clip"
    score: ScoreSpec = field(default_factory=ScoreSpec)
    # Where files absent from `folder` come from (e.g. the image tower, fetched from S3 on first use
    # because code + layers of a Lambda cannot hold both towers); None: every file must be local.
    remote: ModelFileSource | None = field(default=None, compare=False, repr=False)

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        """Read `folder/manifest.json`; raises ModelError naming the first problem found."""
        folder = Path(folder)
        path = folder / MANIFEST_NAME
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(
                f"no {MANIFEST_NAME} in {folder}: build a model with `visual-search build-model`"
            ) from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"unreadable manifest {path}: {exc}") from None
        return cls.from_dict(folder, raw)

    @classmethod
    def from_dict(cls, folder: Path, raw: dict[str, Any]) -> Manifest:
        if raw.get("format_version") not in READABLE_VERSIONS:
            raise ModelError(
                f"manifest format_version {raw.get('format_version')!r} is not one of "
                f"{', '.join(map(str, READABLE_VERSIONS))}: rebuild the model"
            )
        try:
            # Format 1 has no family and none of the keys below: CLIP's values are the defaults.
            manifest = cls(
                folder=folder,
                model_id=str(raw["model_id"]),
                embedding_dim=int(raw["embedding_dim"]),
                image=image_spec_from(raw["image"]),
                text=text_spec_from(raw["text"]),
                towers={t: dict(raw["towers"][t]) for t in TOWERS},
                tokenizer_file=str(raw["tokenizer"]),
                files=dict(raw["files"]),
                raw=raw,
                family=_one_of(raw.get("family", "clip"), FAMILIES, "family"),
                score=score_spec_from(raw.get("score", {"kind": "cosine"})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"manifest in {folder} is missing or has a bad field: {exc!r}") from None
        for tower, variants in manifest.towers.items():
            for name in variants.values():
                if name not in manifest.files:
                    raise ModelError(f"{tower} tower file {name} has no checksum in the manifest")
        if manifest.tokenizer_file not in manifest.files:
            raise ModelError(f"tokenizer file {manifest.tokenizer_file} has no checksum in the manifest")
        return manifest

    def tower_file(self, tower: str, precision: str) -> str:
        try:
            return self.towers[tower][precision]
        except KeyError:
            available = ", ".join(sorted(self.towers.get(tower, {})))
            raise ModelError(
                f"no {precision} {tower} tower in {self.folder} (available: {available})"
            ) from None

    def read_verified(self, name: str) -> bytes:
        """Read one model file and check its sha256 against the manifest."""
        expected = self.files.get(name)
        if expected is None:
            raise ModelError(f"{name} is not listed in the manifest of {self.folder}")
        try:
            data = (self.folder / name).read_bytes()
        except FileNotFoundError:
            if self.remote is None:
                raise ModelError(f"cannot read model file {self.folder / name}: no such file") from None
            return self.remote.fetch(name, expected)
        except OSError as exc:
            raise ModelError(f"cannot read model file {self.folder / name}: {exc.strerror}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ChecksumMismatch(
                f"{self.folder / name}: sha256 {actual[:12]}… but the manifest says {expected[:12]}…"
            )
        return data

    def verify_all(self) -> None:
        """Check every file listed in the manifest (used by `visual-search verify-model`)."""
        for name in self.files:
            self.read_verified(name)


def image_spec_from(img: dict[str, Any]) -> ImageSpec:
    return ImageSpec(
        resize_to=int(img["resize_to"]),
        crop_size=int(img["crop_size"]),
        rescale_factor=float(img["rescale_factor"]),
        mean=_per_channel(img["mean"]),
        std=_per_channel(img["std"]),
        resize=_one_of(img.get("resize", "shortest_edge"), RESIZE_MODES, "image.resize"),
        interpolation=_one_of(img.get("interpolation", "bicubic"), INTERPOLATIONS, "image.interpolation"),
        crop_offsets=_one_of(img.get("crop_offsets", "floor"), CROP_OFFSETS, "image.crop_offsets"),
    )


def _optional_id(value: Any) -> int | None:
    return None if value is None else int(value)


def text_spec_from(txt: dict[str, Any]) -> TextSpec:
    return TextSpec(
        context_length=int(txt["context_length"]),
        bos_token_id=_optional_id(txt["bos_token_id"]),
        eos_token_id=_optional_id(txt["eos_token_id"]),
        pad_token_id=int(txt["pad_token_id"]),
        padding=_one_of(txt.get("padding", "longest"), PADDINGS, "text.padding"),
        padding_side=_one_of(txt.get("padding_side", "right"), PADDING_SIDES, "text.padding_side"),
        lowercase=bool(txt.get("lowercase", True)),
        kind=str(txt.get("kind", "clip-bpe")),
        clean=_one_of(txt.get("clean", "none"), CLEANS, "text.clean"),
    )


def score_spec_from(score: dict[str, Any]) -> ScoreSpec:
    kind = _one_of(score.get("kind"), SCORE_KINDS, "score.kind")
    if kind == "cosine":
        return ScoreSpec()
    return ScoreSpec(kind, float(score["logit_scale"]), float(score["logit_bias"]))


class ModelFileSource(Protocol):
    def fetch(self, name: str, sha256: str) -> bytes:
        """The file's bytes, verified against `sha256` (ChecksumMismatch otherwise)."""
        ...


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
