"""Functional tier: the real services (tiny model, embedded index, local store) behind the real local
server on a loopback port, driven over HTTP."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cloudinary
import moto.sqs.models
import pytest
import urllib3
from moto import mock_aws

from tests.fixtures import images
from tests.fixtures.ingest_world import IngestWorld
from tests.functional.helpers import ingest_keys
from visual_search.bootstrap import Services, build_services
from visual_search.server import LocalServer
from visual_search.settings import ServiceSettings

API_KEY, API_SECRET, CLOUD = "test-key", "test-secret-123", "testcloud"


def make_settings(data_dir: Path, model_dir: Path, **overrides) -> ServiceSettings:
    return ServiceSettings(
        model_dir=model_dir,
        data_dir=data_dir,
        cloud_name=CLOUD,
        api_key=API_KEY,
        api_secret=API_SECRET,
        cursor_secret="cursor-secret-for-tests-0123456789",
        allow_private_urls=True,  # the image_url tests fetch from a loopback server
        **overrides,
    )


def seed_images(services: Services, n: int = 30) -> list[str]:
    """n distinct images in two folders, with tags; returns their keys."""
    keys = [f"{'shoes' if i % 2 else 'shirts/summer'}/item-{i:02d}.jpg" for i in range(n)]
    ingest_keys(
        services,
        {k: images.jpeg(200 + i, 160, seed=i) for i, k in enumerate(keys)},
        tags={k: ("sale",) if i % 3 == 0 else () for i, k in enumerate(keys)},
    )
    return keys


@pytest.fixture(scope="module")
def services(tmp_path_factory, tiny_model_dir) -> Iterator[Services]:
    built = build_services(make_settings(tmp_path_factory.mktemp("data"), tiny_model_dir))
    seed_images(built)
    yield built
    built.close()


@pytest.fixture(scope="module")
def server(services) -> Iterator[str]:
    srv = LocalServer(services, "127.0.0.1", 0).start()
    yield srv.url
    srv.stop()


class Api:
    """A tiny HTTP client for the tests: auth by default, JSON decoded."""

    def __init__(self, base: str):
        self.base = base
        self.http = urllib3.PoolManager(retries=False, timeout=30)
        self.auth = {
            "Authorization": "Basic " + base64.b64encode(f"{API_KEY}:{API_SECRET}".encode()).decode()
        }

    def request(self, method: str, path: str, auth: bool = True, **kwargs):
        headers = {**(self.auth if auth else {}), **kwargs.pop("headers", {})}
        response = self.http.request(method, self.base + path, headers=headers, **kwargs)
        return response.status, json.loads(response.data or b"null"), response.headers

    def search(self, method: str = "GET", **params):
        path = f"/v1_1/{CLOUD}/resources/visual_search"
        if method == "GET":
            return self.request("GET", path, fields=params)
        return self.request("POST", path, fields=params)


@pytest.fixture(scope="module")
def api(server) -> Api:
    return Api(server)


def _fast_clock(original: Callable[..., float], scale: float) -> Callable[..., float]:
    """moto's SQS asks the clock for every queued message on every receive, through a datetime round
    trip that made a 1,000-message queue take minutes; same values, from time.time()."""

    def clock(dt: Any = None) -> float:
        return time.time() * scale if dt is None else original(dt)

    return clock


@pytest.fixture
def aws_env(monkeypatch) -> Iterator[None]:
    """moto for every AWS client created inside the test."""
    monkeypatch.setattr(moto.sqs.models, "unix_time", _fast_clock(moto.sqs.models.unix_time, 1.0))
    monkeypatch.setattr(
        moto.sqs.models, "unix_time_millis", _fast_clock(moto.sqs.models.unix_time_millis, 1000.0)
    )
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


@pytest.fixture
def world(aws_env, tmp_path, tiny_model_dir) -> IngestWorld:
    return IngestWorld(tiny_model_dir, tmp_path)


@pytest.fixture
def versioned_world(aws_env, tmp_path, tiny_model_dir) -> IngestWorld:
    return IngestWorld(tiny_model_dir, tmp_path, versioned=True)


def sdk_served_from(services: Services) -> Iterator[str]:
    """A local server over `services` with Cloudinary's Python SDK pointed at it; yields its URL."""
    server = LocalServer(services, "127.0.0.1", 0).start()
    cloudinary.reset_config()
    cloudinary.config(
        cloud_name=CLOUD, api_key=API_KEY, api_secret=API_SECRET, upload_prefix=server.url, secure=False
    )
    yield server.url
    cloudinary.reset_config()
    server.stop()
