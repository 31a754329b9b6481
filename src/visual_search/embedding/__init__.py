"""Torch-free inference for every model family: manifest, image decoding, preprocessing, tokenizer,
score and ONNX encoder."""

from visual_search.embedding.decode import DecodedImage, DecodeLimits, decode_image
from visual_search.embedding.encoder import Embedder
from visual_search.embedding.manifest import Manifest

__all__ = ["DecodeLimits", "DecodedImage", "Embedder", "Manifest", "decode_image"]
