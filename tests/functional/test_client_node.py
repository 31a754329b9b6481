"""Cloudinary's Node SDK (npm `cloudinary`, pinned in tests/clients/node) against the local server over
TLS: tests/clients/node/calls.js makes every call and reports each; one test per call."""

from __future__ import annotations

import pytest

from tests.clients import harness
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD

CALLS = [
    "visual_search_text",
    "visual_search_image_url",
    "visual_search_image_file",
    "visual_search_image_asset_id",
    "upload",
    "resource_by_asset_id",
    "upload_b",
    "upload_c",
    "upload_sub_d",
    "upload_e",
    "delete_resources",
    "error_401_admin",
    "error_401_upload",
    "error_404",
    "error_400",
    "upload_large",
    "ping",
    "resource",
    "resources",
    "resources_paging",
    "resources_by_tag",
    "resources_by_asset_ids",
    "destroy",
    "destroy_not_found",
    "delete_resources_by_tag",
    "delete_resources_by_prefix",
    "error_400_upload_large_raw",
    "identity_upload_jpeg",
    "identity_upload_png",
    "identity_rename",
    "identity_add_tag",
    "identity_resources_by_asset_ids",
    "identity_visual_search_image_asset_id",
    *harness.TAG_AND_CONTEXT_CALLS,
]


@pytest.fixture(scope="module")
def outcome(services, tmp_path_factory) -> harness.Outcome:
    credentials = {"VS_CLOUD_NAME": CLOUD, "VS_API_KEY": API_KEY, "VS_API_SECRET": API_SECRET}
    folder = tmp_path_factory.mktemp("node-client")
    # the SDK speaks https only
    return harness.run_against(
        services, harness.node_program(), "node", folder, credentials, "NODE_EXTRA_CA_CERTS"
    )


def test_the_node_program_reports_every_call_and_exits_non_zero_on_a_failure(outcome):
    assert sorted(outcome.calls) == sorted(CALLS), outcome.stderr[-2000:]
    assert (outcome.returncode == 0) == all(call["ok"] for call in outcome.calls.values())


@pytest.mark.parametrize("call", CALLS)
def test_node_sdk_call_succeeds(outcome, call):
    assert outcome[call]["ok"], outcome[call]
