"""What a similarity means for a model family, from the manifest's `ScoreSpec`.

CLIP and OpenCLIP were trained with a softmax over a batch, so their cosine only orders images: 0.3 may
be a good match for one query and a poor one for another. SigLIP was trained with a sigmoid per
(text, image) pair, so sigmoid(logit_scale * cosine + logit_bias) is a match probability in 0-1 that
means the same for every query. The map is increasing, so either scale ranks images alike, and a
probability threshold is a cosine threshold (`cosine_at`).

The API's `score` and `threshold` (`api_score`, `min_cosine`): a text query on a sigmoid family is scored
by its match probability; every other query (CLIP, OpenCLIP, and an image query on any family, whose
image-image cosine the sigmoid was never trained on) by its cosine clipped to [0, 1]. The unit tests
check the maps invert each other, and the SigLIP parity test checks the probability against the
reference model's.

>>> siglip = ScoreSpec("sigmoid", logit_scale=10.0, logit_bias=-3.0)
>>> round(match_probability(siglip, 0.3), 6)
0.5
>>> round(cosine_at(siglip, 0.5), 6)
0.3
"""

from __future__ import annotations

import math

from visual_search.embedding.manifest import ScoreSpec


def match_probability(spec: ScoreSpec, cosine: float) -> float | None:
    """The probability that a query matches an image of this cosine; None where the family has none."""
    if spec.kind != "sigmoid" or spec.logit_scale is None or spec.logit_bias is None:
        return None
    logit = spec.logit_scale * cosine + spec.logit_bias
    # Written to never overflow: exp of a large positive logit is never computed.
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    z = math.exp(logit)
    return z / (1.0 + z)


def api_score(spec: ScoreSpec, cosine: float, text_query: bool) -> float:
    """The `score` a result shows: the match probability of a text query on a sigmoid family, else the
    cosine clipped to [0, 1]."""
    probability = match_probability(spec, cosine) if text_query else None
    return float(min(1.0, max(0.0, cosine))) if probability is None else probability


def min_cosine(spec: ScoreSpec, threshold: float, text_query: bool) -> float | None:
    """The cosine below which no result reaches `threshold` on the `api_score` scale; None: no bound.

    >>> siglip = ScoreSpec("sigmoid", logit_scale=10.0, logit_bias=-3.0)
    >>> round(min_cosine(siglip, 0.5, text_query=True), 6), min_cosine(siglip, 0.5, text_query=False)
    (0.3, 0.5)
    """
    if threshold <= 0:
        return None
    if text_query and threshold < 1 and (cosine := cosine_at(spec, threshold)) is not None:
        return cosine
    return threshold


def cosine_at(spec: ScoreSpec, probability: float) -> float | None:
    """The cosine whose match probability is `probability` (0 < p < 1); None where the family has none."""
    if spec.kind != "sigmoid" or spec.logit_scale is None or spec.logit_bias is None:
        return None
    if not 0.0 < probability < 1.0:
        raise ValueError(f"a match probability is strictly between 0 and 1, not {probability}")
    return (math.log(probability / (1.0 - probability)) - spec.logit_bias) / spec.logit_scale
