"""Cloudinary's Go SDK (github.com/cloudinary/cloudinary-go/v2, pinned in tests/clients/go/go.sum) against
the local server over TLS: tests/clients/go/main.go makes every call the SDK exposes and reports each; one
test per call. The Go SDK uploads to auto/upload, in parts once a file is over its chunk size (no separate
upload_large), and has no resources_by_asset_ids."""

from __future__ import annotations

import pytest

from tests.clients import harness
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD

CALLS = [
    "visual_search_text",
    "visual_search_image_url",
    "visual_search_image_file",
    "visual_search_image_asset_id",
    "error_401_admin",
    "error_404",
    "error_400",
    "upload",
    "resource_by_asset_id",
    "upload_large",
    "upload_b",
    "upload_c",
    "upload_sub_d",
    "upload_e",
    "ping",
    "resource",
    "resources",
    "resources_paging",
    "resources_by_tag",
    "destroy",
    "destroy_not_found",
    "delete_resources",
    "delete_resources_by_tag",
    "delete_resources_by_prefix",
    "error_401_upload",
    "identity_upload_jpeg",
    "identity_upload_png",
    "identity_rename",
    "identity_add_tag",
    "identity_resource_by_asset_id",
    "identity_visual_search_image_asset_id",
    *harness.TAG_AND_CONTEXT_CALLS,
]


@pytest.fixture(scope="module")
def outcome(services, tmp_path_factory) -> harness.Outcome:
    credentials = {"VS_CLOUD_NAME": CLOUD, "VS_API_KEY": API_KEY, "VS_API_SECRET": API_SECRET}
    folder = tmp_path_factory.mktemp("go-client")
    # Go's crypto/x509 trusts the certificates in this file
    return harness.run_against(services, harness.go_program(), "go", folder, credentials, "SSL_CERT_FILE")


def test_the_go_program_reports_every_call_and_exits_non_zero_on_a_failure(outcome):
    assert sorted(outcome.calls) == sorted(CALLS), outcome.stderr[-2000:]
    assert (outcome.returncode == 0) == all(call["ok"] for call in outcome.calls.values())


@pytest.mark.parametrize("call", CALLS)
def test_go_sdk_call_succeeds(outcome, call):
    assert outcome[call]["ok"], outcome[call]
