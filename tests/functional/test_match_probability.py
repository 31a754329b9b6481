"""A family trained with a sigmoid (SigLIP) scores a text query by its match probability,
sigmoid(logit_scale * cosine + logit_bias), and `threshold` is read on that scale; an image query on
it, and every query on CLIP, is scored by the cosine clipped to [0, 1]. Ranking and paging never change:
the map is increasing and the cursor carries the raw cosine."""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator

import pytest

from tests.functional.conftest import make_settings, seed_images
from visual_search.bootstrap import Services, build_services
from visual_search.search.service import SearchQuery

SCALE, BIAS = 10.0, -3.0


def probability(cosine: float) -> float:
    return 1.0 / (1.0 + math.exp(-(SCALE * cosine + BIAS)))


@pytest.fixture(scope="module")
def sigmoid_services(tmp_path_factory, tiny_model_dir) -> Iterator[Services]:
    # The tiny model's towers, with the score a SigLIP manifest carries (the towers do not matter here).
    model = tmp_path_factory.mktemp("sigmoid") / "model"
    shutil.copytree(tiny_model_dir, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["score"] = {"kind": "sigmoid", "logit_scale": SCALE, "logit_bias": BIAS}
    (model / "manifest.json").write_text(json.dumps(manifest))
    services = build_services(make_settings(tmp_path_factory.mktemp("data"), model))
    seed_images(services, 12)
    yield services
    services.close()


def test_a_text_query_on_a_sigmoid_family_is_scored_by_its_match_probability(sigmoid_services):
    page = sigmoid_services.search.search(SearchQuery(text="a red shoe", max_results=12))
    assert page.hits
    assert page.scores == pytest.approx([probability(hit.score) for hit in page.hits], abs=1e-9)
    assert page.scores == sorted(page.scores, reverse=True)


def test_an_image_query_on_a_sigmoid_family_is_scored_by_its_clipped_cosine(sigmoid_services):
    first = sigmoid_services.search.search(SearchQuery(text="a red shoe", max_results=1)).hits[0]
    page = sigmoid_services.search.search(SearchQuery(asset_id=first.asset_id, max_results=5))
    assert page.scores == pytest.approx([min(1.0, max(0.0, hit.score)) for hit in page.hits])


def test_threshold_on_a_sigmoid_family_is_a_match_probability(sigmoid_services):
    everything = sigmoid_services.search.search(SearchQuery(text="a red shoe", max_results=12))
    middle = sorted(everything.scores)[len(everything.scores) // 2]
    kept = sigmoid_services.search.search(SearchQuery(text="a red shoe", max_results=12, threshold=middle))
    assert kept.scores
    assert all(score >= middle - 1e-9 for score in kept.scores)
    assert [h.asset_id for h in kept.hits] == [
        h.asset_id for h, s in zip(everything.hits, everything.scores, strict=True) if s >= middle - 1e-9
    ]


def test_a_cosine_family_scores_text_by_the_clipped_cosine(services):
    page = services.search.search(SearchQuery(text="a red shoe", max_results=5))
    assert page.scores == pytest.approx([min(1.0, max(0.0, hit.score)) for hit in page.hits])
