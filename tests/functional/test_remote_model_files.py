"""A model folder without its image tower (as in a Lambda whose layers cannot hold both towers) fetches
it from S3 on first use, verified against the manifest, and keeps it in a local cache."""

from __future__ import annotations

import shutil
from dataclasses import replace

import boto3
import numpy as np
import pytest

from tests.fixtures import images
from visual_search.embedding import Embedder
from visual_search.embedding.manifest import Manifest
from visual_search.embedding.remote_files import S3ModelFiles
from visual_search.errors import ChecksumMismatch, DependencyUnavailable, ModelError

BUCKET = "models"


@pytest.fixture
def text_only_model(aws_env, tmp_path, tiny_model_dir):
    """The tiny model's folder minus the int8 image tower, which is put in a moto bucket instead."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    manifest = Manifest.load(folder)
    tower = manifest.tower_file("image", "int8")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"tiny/{tower}", Body=(folder / tower).read_bytes())
    (folder / tower).unlink()
    return folder, tower, s3


def embedder(folder, cache, s3) -> Embedder:
    manifest = Manifest.load(folder)
    return Embedder(replace(manifest, remote=S3ModelFiles(f"s3://{BUCKET}/tiny/", cache, client=s3)))


def test_the_missing_tower_is_fetched_verified_and_cached(text_only_model, tmp_path, tiny_embedder):
    folder, tower, s3 = text_only_model
    fetched = embedder(folder, tmp_path / "cache", s3).embed_images([images.jpeg(seed=1)])
    np.testing.assert_allclose(fetched, tiny_embedder.embed_images([images.jpeg(seed=1)]), atol=1e-6)
    assert (tmp_path / "cache" / tower).is_file()

    s3.delete_object(Bucket=BUCKET, Key=f"tiny/{tower}")  # the cache alone serves a second process
    again = embedder(folder, tmp_path / "cache", s3).embed_images([images.jpeg(seed=1)])
    np.testing.assert_allclose(again, fetched, atol=1e-6)


def test_text_queries_never_touch_the_remote_tower(text_only_model, tmp_path):
    folder, _tower, s3 = text_only_model
    model = embedder(folder, tmp_path / "cache", s3)
    model.embed_texts(["a red shirt"])
    assert model.loaded_towers == {"text"}
    assert not (tmp_path / "cache").exists()


def test_a_tampered_remote_file_is_refused_and_not_cached(text_only_model, tmp_path):
    folder, tower, s3 = text_only_model
    s3.put_object(Bucket=BUCKET, Key=f"tiny/{tower}", Body=b"not the tower")
    with pytest.raises(ChecksumMismatch):
        embedder(folder, tmp_path / "cache", s3).embed_images([images.jpeg(seed=1)])
    assert not (tmp_path / "cache" / tower).exists()


def test_a_damaged_cache_file_is_replaced_from_s3(text_only_model, tmp_path):
    folder, tower, s3 = text_only_model
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / tower).write_bytes(b"truncated")
    embedder(folder, tmp_path / "cache", s3).embed_images([images.jpeg(seed=2)])
    assert (tmp_path / "cache" / tower).stat().st_size > 1000


def test_a_missing_remote_file_is_a_model_error_and_a_bad_url_is_refused(text_only_model, tmp_path):
    folder, tower, s3 = text_only_model
    s3.delete_object(Bucket=BUCKET, Key=f"tiny/{tower}")
    with pytest.raises(ModelError, match="does not exist"):
        embedder(folder, tmp_path / "cache", s3).embed_images([images.jpeg(seed=1)])
    with pytest.raises(ModelError, match="s3://"):
        S3ModelFiles("https://example.com/models", tmp_path)


def test_a_download_that_trickles_past_its_budget_is_abandoned_and_retried_by_the_next_query(
    text_only_model, tmp_path
):
    folder, tower, s3 = text_only_model
    now, slow = [0.0], [True]

    class SlowBody:
        def __init__(self, body):
            self.body = body

        def iter_chunks(self, size):
            for part in self.body.iter_chunks(1024 if slow[0] else size):
                now[0] += 1.0 if slow[0] else 0.0  # a second per kilobyte while S3 struggles
                yield part

        def close(self):
            self.body.close()

    class StrugglingS3:
        def get_object(self, **kwargs):
            response = s3.get_object(**kwargs)
            return {**response, "Body": SlowBody(response["Body"])}

    remote = S3ModelFiles(
        f"s3://{BUCKET}/tiny/", tmp_path / "cache", client=StrugglingS3(), clock=lambda: now[0]
    )
    model = Embedder(replace(Manifest.load(folder), remote=remote))
    with pytest.raises(DependencyUnavailable, match="took over 20 s"):
        model.embed_images([images.jpeg(64, 64)])
    assert now[0] <= 21.0
    assert not (tmp_path / "cache" / tower).exists()  # nothing half-written is cached
    slow[0] = False  # S3 recovers: the same process's next image query succeeds
    assert model.embed_images([images.jpeg(64, 64)]).shape == (1, 32)
