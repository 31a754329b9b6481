"""The model manifest: what the build tool wrote, and the contract the runtime checks before loading.

A model folder holds `manifest.json`, the ONNX towers (fp32 and int8), and `tokenizer.json`. The manifest
records everything the runtime needs (preprocessing constants, context length, embedding dimension) so
the runtime never guesses, plus the sha256 of every file so a damaged or swapped file is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from visual_search.errors import ChecksumMismatch, ModelError

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
PRECISIONS = ("int8", "fp32")
TOWERS = ("image", "text")


def _per_channel(values: Any) -> tuple[float, float, float]:
    """Three floats (R, G, B); ValueError otherwise."""
    red, green, blue = (float(v) for v in values)
    return red, green, blue


@dataclass(frozen=True)
class ImageSpec:
    """CLIPImageProcessor constants: shortest side to `resize_to` (bicubic), centre crop `crop_size`."""

    resize_to: int
    crop_size: int
    rescale_factor: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class TextSpec:
    context_length: int
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int


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
        if raw.get("format_version") != FORMAT_VERSION:
            raise ModelError(
                f"manifest format_version {raw.get('format_version')!r} is not {FORMAT_VERSION}: "
                "rebuild the model"
            )
        try:
            img, txt = raw["image"], raw["text"]
            manifest = cls(
                folder=folder,
                model_id=str(raw["model_id"]),
                embedding_dim=int(raw["embedding_dim"]),
                image=ImageSpec(
                    resize_to=int(img["resize_to"]),
                    crop_size=int(img["crop_size"]),
                    rescale_factor=float(img["rescale_factor"]),
                    mean=_per_channel(img["mean"]),
                    std=_per_channel(img["std"]),
                ),
                text=TextSpec(
                    context_length=int(txt["context_length"]),
                    bos_token_id=int(txt["bos_token_id"]),
                    eos_token_id=int(txt["eos_token_id"]),
                    pad_token_id=int(txt["pad_token_id"]),
                ),
                towers={t: dict(raw["towers"][t]) for t in TOWERS},
                tokenizer_file=str(raw["tokenizer"]),
                files=dict(raw["files"]),
                raw=raw,
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
