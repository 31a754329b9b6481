"""Text tokenization for every model family: the `tokenizers` library reading the `tokenizer.json` the
build tool saved from the reference tokenizer, cut and padded as the manifest's `TextSpec` says.

That file is the reference's own pipeline (for CLIP: NFC, whitespace folding, lower-casing, CLIP's
split pattern, byte-level BPE, start/end tokens; for SigLIP 2: lower-casing, Gemma's BPE with byte
fallback, the end token; for OpenCLIP: CLIP's BPE after open_clip's own Python cleaning, which
`text_clean` applies first). The runtime adds truncation to the context length
(special tokens kept) and padding: to the batch's longest item where the tower's causal mask keeps
padding out of the pooled token (CLIP), so a short query costs a short sequence; to the full context
length where the tower reads every position (SigLIP, OpenCLIP towers without a causal mask).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tokenizers import Tokenizer

from visual_search.embedding.manifest import TextSpec
from visual_search.embedding.text_clean import cleaner


class TextTokenizer:
    def __init__(self, tokenizer_json: str, spec: TextSpec):
        self._tok = Tokenizer.from_str(tokenizer_json)
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=spec.context_length)
        self._spec = spec
        self._clean = cleaner(spec.clean)

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> int64 ids of shape (N, L): L the longest item (padding "longest") or the context
        length (padding "max_length"), filled with the pad id on the padding side."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a sequence of strings, not one string")
        items = [self._clean(t) for t in texts] if self._clean else list(texts)
        encodings = self._tok.encode_batch(items, add_special_tokens=True)
        if self._spec.padding == "max_length":
            length = self._spec.context_length
        else:
            length = max((len(e.ids) for e in encodings), default=2)
        ids = np.full((len(encodings), length), self._spec.pad_token_id, dtype=np.int64)
        left = self._spec.padding_side == "left"
        for row, enc in enumerate(encodings):
            if left:
                ids[row, length - len(enc.ids) :] = enc.ids
            else:
                ids[row, : len(enc.ids)] = enc.ids
        return ids
