"""Cloudinary's `cld` CLI (PyPI cloudinary-cli) against the local server, as a team moving from
Cloudinary runs it: upload (the CLI uploads to auto/upload), admin listings with auto-pagination,
lookups, deletes and destroy — and its errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings
from visual_search.bootstrap import build_services
from visual_search.server import LocalServer

CLD = Path(sys.executable).with_name("cld")


@pytest.fixture(scope="module")
def base_url(tmp_path_factory, tiny_model_dir) -> Iterator[str]:
    services = build_services(make_settings(tmp_path_factory.mktemp("cld"), tiny_model_dir))
    server = LocalServer(services, "127.0.0.1", 0).start()
    yield server.url
    server.stop()
    services.close()


def cld(base_url: str, *args: str, secret: str = API_SECRET) -> subprocess.CompletedProcess:
    env = {
        "CLOUDINARY_URL": f"cloudinary://{API_KEY}:{secret}@{CLOUD}?upload_prefix={base_url}",
        "PATH": "/usr/bin:/bin",
        "HOME": "/tmp",
    }
    return subprocess.run([str(CLD), *args], env=env, capture_output=True, text=True, timeout=60)


def output(done: subprocess.CompletedProcess):
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_cld_upload_goes_through_auto_upload_and_is_found(base_url, tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(images.jpeg(seed=1))
    uploaded = output(cld(base_url, "uploader", "upload", str(path), "public_id=cli/photo", "tags=sale"))
    assert (uploaded["public_id"], uploaded["tags"]) == ("cli/photo", ["sale"])
    found = output(cld(base_url, "admin", "resource", "cli/photo"))
    assert found["asset_id"] == uploaded["asset_id"]


def test_cld_admin_resources_walks_every_page(base_url, tmp_path):
    for i in range(5):
        path = tmp_path / f"p{i}.jpg"
        path.write_bytes(images.jpeg(seed=10 + i))
        output(cld(base_url, "uploader", "upload", str(path), f"public_id=walk/{i}", "tags=walk"))
    listed = output(cld(base_url, "admin", "-A", "-F", "resources", "prefix=walk/", "max_results=2"))
    assert [r["public_id"] for r in listed["resources"]] == [f"walk/{i}" for i in range(5)]
    tagged = output(cld(base_url, "admin", "resources_by_tag", "walk", "max_results=10"))
    assert len(tagged["resources"]) == 5


def test_cld_ping_delete_and_destroy(base_url, tmp_path):
    assert output(cld(base_url, "admin", "ping"))["status"] == "ok"
    path = tmp_path / "x.jpg"
    path.write_bytes(images.jpeg(seed=30))
    output(cld(base_url, "uploader", "upload", str(path), "public_id=del/a"))
    output(cld(base_url, "uploader", "upload", str(path), "public_id=del/b"))
    assert output(cld(base_url, "uploader", "destroy", "del/a"))["result"] == "ok"
    deleted = output(cld(base_url, "admin", "-F", "delete_resources_by_prefix", "del/"))
    assert deleted["deleted"] == {"del/b": "deleted"}


def test_cld_reports_the_servers_errors(base_url, tmp_path):
    wrong = cld(base_url, "admin", "ping", secret="wrong-secret")
    assert (wrong.returncode, wrong.stderr.strip()) == (1, "error: Error 401 - invalid credentials")
    missing = cld(base_url, "admin", "resource", "no/such")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "error: Error 404 - Resource not found - no/such",
    )
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    refused = cld(base_url, "uploader", "upload", str(text))
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: not an image")


def test_cld_visual_search_finds_an_uploaded_image(base_url, tmp_path):
    path = tmp_path / "probe.jpg"
    path.write_bytes(images.jpeg(seed=40))
    uploaded = output(cld(base_url, "uploader", "upload", str(path), "public_id=probe/one"))
    found = output(cld(base_url, "admin", "visual_search", f"image_asset_id={uploaded['asset_id']}"))
    assert uploaded["asset_id"] not in [r["asset_id"] for r in found["resources"]]
    assert found["resources"]  # the other images of the collection, most similar first
