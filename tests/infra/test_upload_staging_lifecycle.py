"""The image bucket expires upload_large's staging on its own: a Lambda sweeps staged parts only when
another part arrives, so an abandoned upload's parts would otherwise stay (issue 21, finding 4)."""

from __future__ import annotations

from visual_search.assets.chunked_uploads import ANSWERS, STAGING


def test_staged_upload_parts_and_answers_expire_within_a_day_in_every_version(synthesized):
    images = synthesized.stack.images.bucket.node.default_child
    props = synthesized.json["Resources"][synthesized.stack.get_logical_id(images)]["Properties"]
    rules = {r.get("Prefix"): r for r in props["LifecycleConfiguration"]["Rules"]}
    for prefix in (STAGING, ANSWERS):
        assert rules[prefix]["Status"] == "Enabled"
        assert rules[prefix]["ExpirationInDays"] == 1
        assert rules[prefix]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    # and the rule for the images themselves still applies to the whole bucket
    assert rules[None]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
