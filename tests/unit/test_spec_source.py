"""The pinned fetch of OpenSearch's API specification, for a clone without ../shared (no network: the
download is replaced by an archive shaped as GitHub serves one)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tests.doubles import spec_source


def github_archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in {**files, "README.md": b"not the spec"}.items():
            info = tarfile.TarInfo(f"opensearch-api-specification-{spec_source.COMMIT}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    files = {"spec/namespaces/search.yaml": b"paths: {}\n", "spec/_info.yaml": b"title: x\n"}
    expected = tmp_path / "expected"
    for name, data in files.items():
        (expected / name).parent.mkdir(parents=True, exist_ok=True)
        (expected / name).write_bytes(data)
    archive = github_archive(files)
    monkeypatch.setattr(spec_source, "SHARED", tmp_path / "shared" / "spec")
    monkeypatch.setattr(spec_source, "CACHED", tmp_path / "cache" / "spec")
    monkeypatch.setattr(spec_source.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(archive))
    return tree_of(expected / "spec")


def tree_of(folder: Path) -> str:
    return spec_source.tree_digest(folder)


def test_the_fetch_keeps_only_the_spec_folder_and_checks_its_digest(offline, monkeypatch):
    monkeypatch.setattr(spec_source, "TREE_SHA256", offline)

    spec_source.fetch()

    assert spec_source.spec_folder() == spec_source.CACHED
    assert sorted(
        p.relative_to(spec_source.CACHED).as_posix() for p in spec_source.CACHED.rglob("*.yaml")
    ) == [
        "_info.yaml",
        "namespaces/search.yaml",
    ]


def test_a_fetched_specification_with_another_digest_is_refused_and_not_kept(offline, monkeypatch):
    monkeypatch.setattr(spec_source, "TREE_SHA256", "0" * 64)

    with pytest.raises(SystemExit, match="not the pinned"):
        spec_source.fetch()

    assert not spec_source.CACHED.exists()
    with pytest.raises(FileNotFoundError, match="make opensearch-spec"):
        spec_source.spec_folder()
