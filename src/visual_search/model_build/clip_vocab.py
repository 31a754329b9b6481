"""CLIP's BPE vocabulary, derived offline from the file the `open-clip-torch` wheel ships.

Used when a checkpoint has no tokenizer files (and for the random-weight presets). The derivation is
CLIP's own (`simple_tokenizer.py`): 256 byte symbols, the same with `</w>`, 48,894 merges, 2 specials.
"""

from __future__ import annotations

import gzip
import importlib.util
from functools import lru_cache
from pathlib import Path

from visual_search.model_build import BuildRefused

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
N_MERGES = 49152 - 256 - 2


def bpe_file() -> Path:
    # find_spec locates the package without importing it (importing open_clip would need torchvision).
    spec = importlib.util.find_spec("open_clip")
    if spec is None or spec.origin is None:
        raise BuildRefused(
            "the checkpoint has no tokenizer files and open-clip-torch is not installed "
            "(the build extra installs it: it provides CLIP's BPE vocabulary)"
        )
    path = Path(spec.origin).parent / BPE_FILE
    if not path.is_file():
        raise BuildRefused(f"{BPE_FILE} not found beside open_clip at {path.parent}")
    return path


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    keep = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    )
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, [chr(c) for c in chars], strict=True))


@lru_cache(maxsize=1)
def clip_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    lines = gzip.decompress(bpe_file().read_bytes()).decode("utf-8").split("\n")
    merges = [(left, right) for left, right in (line.split() for line in lines[1 : N_MERGES + 1])]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(vocab)}, merges
