"""Runtime tokenizer (the `tokenizers` library reading the built tokenizer.json) against transformers'
CLIPTokenizer built independently from CLIP's BPE file, on 200+ varied strings."""

from __future__ import annotations

import pytest
from transformers import CLIPTokenizer

from tests.fixtures.texts import CASES
from visual_search.embedding.manifest import Manifest
from visual_search.embedding.tokenizer import TextTokenizer
from visual_search.model_build.clip_vocab import clip_vocab_and_merges


@pytest.fixture(scope="module")
def reference() -> CLIPTokenizer:
    vocab, merges = clip_vocab_and_merges()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


@pytest.fixture(scope="module")
def runtime(built_model) -> TextTokenizer:
    manifest = Manifest.load(built_model)
    return TextTokenizer(manifest.read_verified(manifest.tokenizer_file).decode(), manifest.text)


def test_there_are_at_least_200_cases_including_over_length_ones(reference):
    assert len(CASES) >= 200
    assert sum(len(reference(c)["input_ids"]) > 77 for c in CASES) >= 10


def test_token_ids_equal_the_reference_for_every_case(reference, runtime):
    mismatches = []
    for text in CASES:
        want = reference(text, truncation=True, max_length=77)["input_ids"]
        got = runtime.encode_batch([text])[0].tolist()
        if got != want:
            mismatches.append((text, want[:10], got[:10]))
    assert mismatches == []


def test_batched_ids_equal_the_reference_padded_to_the_longest(reference, runtime):
    batch = CASES[:40]
    want = reference(batch, truncation=True, max_length=77, padding="longest")["input_ids"]
    got = runtime.encode_batch(batch).tolist()
    assert got == want
