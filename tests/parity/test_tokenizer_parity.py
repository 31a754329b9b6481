"""Runtime tokenizer (the `tokenizers` library reading the built tokenizer.json) against transformers'
CLIPTokenizer built independently from CLIP's BPE file, on 200+ varied strings."""

from __future__ import annotations

import random

import pytest
from transformers import CLIPTokenizer

from visual_search.embedding.manifest import Manifest
from visual_search.embedding.tokenizer import TextTokenizer
from visual_search.model_build.clip_vocab import clip_vocab_and_merges

FIXED = [
    "",
    " ",
    "a photo of a cat",
    "Red SHIRT",
    "red   shirt\t\n",
    "it's a dog's life, isn't it?",
    "they'll we've I'm you'd",
    "café crème brûlée",
    "naïve façade coöperate",
    "東京タワーの夜景",
    "서울의 밤",
    "Москва зимой",
    "مرحبا بالعالم",
    "🐶🐱 dog and cat 🎉🎉",
    "👩‍👩‍👧‍👦 family emoji with ZWJ",
    "flag 🇫🇷 and skin tone 👍🏽",
    "$19.99 50% off!!! #sale @shop",
    "snake_case camelCase kebab-case",
    "1234567890 3.14159 1e-9",
    "<|startoftext|> literal special tokens <|endoftext|>",
    "e\u0301 combining accent vs é",
    "ﬁ ligature and ＦＵＬＬＷＩＤＴＨ",
    "tab\tseparated\tvalues",
    "mixed 中文 English 日本語 text",
    "\u200b zero width space",
    "...---...",
    "(((nested)))",
    "a" * 300,
    "word " * 100,
    "the quick brown fox jumps over the lazy dog " * 10,
]

ALPHABETS = [
    "abcdefghijklmnopqrstuvwxyz",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    " \t\n  ",
    ".,;:!?'\"()[]{}<>/\\|@#$%^&*-_=+~`",
    "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿß",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    "的一是不了人我在有他这为之大来以个中上们",
    "あいうえおかきくけこアイウエオ",
    "😀😂🥲😍🤖👍🏽🐍🍕🚀🌍❤️✨",
    "\u0301\u0308\u200d\ufe0f",
]


def _random_strings(n: int, seed: int = 2026) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.choice([1, 3, 8, 20, 60, 200])
        pools = rng.sample(ALPHABETS, k=rng.randint(1, 4))
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(length)))
    return out


CASES = FIXED + _random_strings(250)


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
