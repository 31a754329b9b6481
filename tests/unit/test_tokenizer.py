import pytest

from visual_search.embedding.manifest import Manifest
from visual_search.embedding.tokenizer import TextTokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    manifest = Manifest.load(tiny_model_dir)
    return TextTokenizer(manifest.read_verified(manifest.tokenizer_file).decode(), manifest.text)


def test_batch_is_trimmed_to_its_longest_item_and_padded_with_the_end_token(tokenizer):
    ids = tokenizer.encode_batch(["a cat", "a photo of a red shirt"])
    assert ids.shape[0] == 2
    assert ids.shape[1] < 77
    assert ids[0, 0] == 49406
    assert list(ids[0, 3:]) == [49407] * (ids.shape[1] - 3)


def test_long_text_is_truncated_to_the_context_length_keeping_the_end_token(tokenizer):
    ids = tokenizer.encode_batch(["word " * 200])
    assert ids.shape == (1, 77)
    assert ids[0, 0] == 49406
    assert ids[0, -1] == 49407


def test_text_is_lower_cased_and_whitespace_folded(tokenizer):
    a = tokenizer.encode_batch(["Red   SHIRT"])
    b = tokenizer.encode_batch(["red shirt"])
    assert (a == b).all()


def test_a_single_string_is_refused_instead_of_being_split_into_characters(tokenizer):
    with pytest.raises(TypeError):
        tokenizer.encode_batch("red shirt")
