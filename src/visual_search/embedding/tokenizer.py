"""CLIP tokenizer at run time: the `tokenizers` library reading the `tokenizer.json` the build tool wrote.

That file is the exact pipeline of transformers' CLIPTokenizer (NFC, whitespace folding, lower-casing,
CLIP's split pattern, byte-level BPE with `</w>` word ends, start/end tokens); the runtime adds
truncation to the context length (end token kept) and pads each batch only to its longest item, so a
short query costs a short sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from visual_search.embedding.manifest import TextSpec


class ClipTokenizer:
    def __init__(self, tokenizer_json: str, spec: TextSpec):
        self._tok = Tokenizer.from_str(tokenizer_json)
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=spec.context_length)
        self._spec = spec

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> int64 ids of shape (N, L), L = longest item (<= context length), end-token padded."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of strings, not one string")
        encodings = self._tok.encode_batch(list(texts), add_special_tokens=True)
        length = max((len(e.ids) for e in encodings), default=2)
        ids = np.full((len(encodings), length), self._spec.pad_token_id, dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
        return ids
