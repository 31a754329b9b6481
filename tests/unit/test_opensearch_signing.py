"""SigV4 signs for the cluster's region: an existing domain or collection may live in another region
than the functions (CDK passes the region of `existing_arn` as VS_OPENSEARCH_REGION)."""

from __future__ import annotations

import pytest
import requests

import visual_search.index.opensearch as opensearch
from visual_search.bootstrap import _build_index
from visual_search.settings import IngestSettings


class _Embedder:
    dim, model_id = 4, "tiny"


@pytest.fixture
def signed_client(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # where the function runs
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # The index adapter would reach the cluster at once: keep the client it is given.
    monkeypatch.setattr(opensearch, "OpenSearchIndex", lambda client, *args, **kwargs: client)

    def build(**settings: str):
        return _build_index(
            IngestSettings(
                index_backend="opensearch", opensearch_endpoint="https://search.example", **settings
            ),
            _Embedder(),
        )

    return build


def _credential_scope(client) -> str:
    """The region/service part of the SigV4 Authorization header the client would send."""
    sign = client.transport.kwargs["http_auth"]
    signed = sign(requests.Request("GET", "https://search.example/_cluster/health").prepare())
    return signed.headers["Authorization"].split("Credential=")[1].split(",")[0].split("/", 2)[2]


def test_sigv4_signs_for_the_region_the_settings_name(signed_client):
    client = signed_client(opensearch_region="us-gov-west-1", opensearch_mode="serverless")
    assert _credential_scope(client) == "us-gov-west-1/aoss/aws4_request"


def test_without_a_region_sigv4_signs_for_the_functions_own(signed_client):
    assert _credential_scope(signed_client()) == "eu-west-1/es/aws4_request"
