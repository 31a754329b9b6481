"""kill -9 in the middle of bulk indexing loses nothing that was acknowledged, and re-running finishes the
rest without duplicates: the embedded default (SQLite with synchronous=FULL, files written atomically)
under a real process kill, not a simulated one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cloudinary
import cloudinary.uploader
import pytest

from tests.fixtures import images
from tests.functional.conftest import API_KEY, API_SECRET, CLOUD, make_settings
from visual_search.assets.identity import stored_asset_id
from visual_search.bootstrap import build_services

IMAGES = 60


def environment(data_dir: Path, model_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "VS_DATA_DIR": str(data_dir),
        "VS_MODEL_DIR": str(model_dir),
        "VS_CLOUD_NAME": CLOUD,
        "VS_API_KEY": API_KEY,
        "VS_API_SECRET": API_SECRET,
        "VS_CURSOR_SECRET": "cursor-secret-for-tests-0123456789",
    }


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.02)


def test_kill_9_during_add_then_rerunning_add_completes_without_duplicates(tmp_path, tiny_model_dir):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(IMAGES):
        (folder / f"p{i:03d}.jpg").write_bytes(images.jpeg(160, 120, seed=i))
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "visual_search.cli", "add", str(folder), "--quiet"]
    env = environment(data_dir, tiny_model_dir)

    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = data_dir / "images"
    wait_for(lambda: stored.is_dir() and sum(1 for _ in stored.glob("*.jpg")) >= 20)  # originals only
    victim.send_signal(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, "add finished before the kill: nothing was tested"

    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=True)
    assert "unchanged" in finished.stdout, "the rerun should have found work already done"
    services = build_services(make_settings(data_dir, tiny_model_dir))
    try:
        keys = sorted(services.store.list())
        assert keys == [f"p{i:03d}.jpg" for i in range(IMAGES)]
        assert services.index.count() == IMAGES
        assert all(services.index.get(stored_asset_id(services.store, k)) is not None for k in keys)
    finally:
        services.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, model_dir: Path, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "visual_search.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command, env=environment(data_dir, model_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening)
    return server


@pytest.fixture
def sdk_config():
    previous = cloudinary.config().__dict__.copy()
    yield
    cloudinary.config(**previous)


def test_uploads_acknowledged_before_a_kill_9_of_the_server_are_all_there_after_restart(
    tmp_path, tiny_model_dir, sdk_config
):
    data_dir, port = tmp_path / "data", free_port()
    server = start_server(data_dir, tiny_model_dir, port)
    cloudinary.config(
        cloud_name=CLOUD,
        api_key=API_KEY,
        api_secret=API_SECRET,
        upload_prefix=f"http://127.0.0.1:{port}",
        secure=False,
    )
    acknowledged: list[str] = []

    def upload_until_killed() -> None:
        for i in range(IMAGES):
            try:
                result = cloudinary.uploader.upload(images.jpeg(160, 120, seed=i), public_id=f"up/{i:03d}")
            except Exception:
                return  # the server is gone: this upload was never acknowledged
            acknowledged.append(result["public_id"])

    uploader = threading.Thread(target=upload_until_killed)
    uploader.start()
    wait_for(lambda: len(acknowledged) >= 15)
    server.send_signal(signal.SIGKILL)
    server.wait()
    uploader.join(timeout=60)
    assert len(acknowledged) < IMAGES, "every upload finished before the kill: nothing was tested"

    services = build_services(make_settings(data_dir, tiny_model_dir))
    try:
        found = {
            pid
            for pid in acknowledged
            if services.index.get(stored_asset_id(services.store, f"{pid}.jpg")) is not None
        }
        assert found == set(acknowledged), "an acknowledged upload was lost"
        assert services.index.count() in (len(acknowledged), len(acknowledged) + 1)  # + one in flight
    finally:
        services.close()
