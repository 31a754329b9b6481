"""Inference threads follow a Lambda function's CPU share (its memory size), not the cores it can see."""

from __future__ import annotations

import pytest

from visual_search.embedding import Embedder
from visual_search.embedding.encoder import LAMBDA_MEMORY_VARIABLE, default_threads, lambda_threads


@pytest.mark.parametrize(
    ("memory_mb", "threads"),
    [(128, 1), (1024, 1), (1769, 1), (2048, 1), (3008, 2), (3538, 2), (5307, 3), (7076, 4), (10240, 6)],
)
def test_threads_are_the_functions_vcpu_share_by_memory(memory_mb, threads):
    assert lambda_threads(memory_mb) == threads


def test_threads_never_exceed_lambdas_six_vcpus_nor_drop_below_one():
    assert lambda_threads(64) == 1
    assert lambda_threads(1_000_000) == 6


def test_off_lambda_the_default_is_one_thread_whatever_the_visible_cores():
    assert default_threads({}) == 1


def test_a_malformed_memory_variable_falls_back_to_one_thread():
    assert default_threads({LAMBDA_MEMORY_VARIABLE: "lots"}) == 1
    assert default_threads({LAMBDA_MEMORY_VARIABLE: ""}) == 1


def test_embedder_sessions_take_their_threads_from_the_lambda_memory(tiny_model_dir, monkeypatch):
    monkeypatch.setenv(LAMBDA_MEMORY_VARIABLE, "5307")
    embedder = Embedder.from_dir(tiny_model_dir)
    assert embedder.session_options("text").intra_op_num_threads == 3


def test_an_explicit_thread_count_wins_over_the_lambda_memory(tiny_model_dir, monkeypatch):
    monkeypatch.setenv(LAMBDA_MEMORY_VARIABLE, "10240")
    embedder = Embedder.from_dir(tiny_model_dir, threads=1)
    assert embedder.session_options("text").intra_op_num_threads == 1


def test_a_deployed_function_without_vs_model_threads_sizes_its_sessions_by_its_memory(monkeypatch, tmp_path):
    from tests.conftest import TINY_MODEL
    from visual_search.bootstrap import _build_embedder, _limits
    from visual_search.settings import CoreSettings

    monkeypatch.delenv("VS_MODEL_THREADS", raising=False)
    monkeypatch.setenv(LAMBDA_MEMORY_VARIABLE, "3538")
    settings = CoreSettings(model_dir=TINY_MODEL, data_dir=tmp_path)
    assert _build_embedder(settings, _limits(settings)).threads == 2
    monkeypatch.setenv("VS_MODEL_THREADS", "1")
    settings = CoreSettings(model_dir=TINY_MODEL, data_dir=tmp_path)
    assert _build_embedder(settings, _limits(settings)).threads == 1  # an explicit count wins
