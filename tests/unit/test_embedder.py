import numpy as np
import pytest

from tests.fixtures import images
from visual_search.embedding import Embedder
from visual_search.embedding.encoder import EXACT_INT8_ON_X64
from visual_search.errors import CorruptImage


def test_text_embeddings_are_unit_rows_of_the_model_dimension(tiny_embedder):
    out = tiny_embedder.embed_texts(["a red shirt", "a dog", ""])
    assert out.shape == (3, tiny_embedder.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_image_embeddings_are_the_same_from_bytes_path_and_pil(tiny_embedder, tmp_path):
    data = images.png(300, 200, seed=3)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    pil = images.photo_like(300, 200, seed=3)
    out = tiny_embedder.embed_images([data, path, pil])
    assert out.shape == (3, tiny_embedder.dim)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6)
    np.testing.assert_allclose(out[0], out[2], atol=1e-6)


def test_batching_does_not_change_an_embedding_beyond_int8_noise(tiny_embedder):
    batch = [images.png(seed=s) for s in range(4)]
    together = tiny_embedder.embed_images(batch)
    alone = np.vstack([tiny_embedder.embed_images([b]) for b in batch])
    assert np.min(np.sum(together * alone, axis=1)) >= 0.999


def test_short_and_long_texts_in_one_batch_match_their_single_embeddings(tiny_embedder):
    texts = ["cat", "a long description of a small cat sleeping on a red sofa in the sun"]
    together = tiny_embedder.embed_texts(texts)
    alone = np.vstack([tiny_embedder.embed_texts([t]) for t in texts])
    assert np.min(np.sum(together * alone, axis=1)) >= 0.999


def test_empty_batches_give_empty_arrays(tiny_embedder):
    assert tiny_embedder.embed_texts([]).shape == (0, tiny_embedder.dim)
    assert tiny_embedder.embed_images([]).shape == (0, tiny_embedder.dim)


def test_towers_load_lazily_so_text_search_never_loads_the_image_tower(tiny_model_dir):
    embedder = Embedder.from_dir(tiny_model_dir)
    assert embedder.loaded_towers == frozenset()
    embedder.embed_texts(["a cat"])
    assert embedder.loaded_towers == {"text"}


def test_bad_image_raises_a_precise_error(tiny_embedder):
    with pytest.raises(CorruptImage):
        tiny_embedder.embed_images([images.truncated_jpeg()])


def test_thread_count_is_applied_to_the_session(tiny_model_dir):
    embedder = Embedder.from_dir(tiny_model_dir, threads=2)
    assert embedder.session_options("text").intra_op_num_threads == 2


def test_tower_sessions_ask_for_exact_int8_sums_on_cpus_without_vnni(tiny_embedder):
    # Without it, int8 GEMMs saturate on AVX2-only x86 (tests/parity/test_int8_arithmetic.py).
    key, value = EXACT_INT8_ON_X64
    for tower in ("image", "text"):
        assert tiny_embedder.session_options(tower).get_session_config_entry(key) == value


def test_model_id_comes_from_the_manifest(tiny_embedder):
    assert tiny_embedder.model_id.startswith("preset-tiny-seed0@")
