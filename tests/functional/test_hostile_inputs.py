"""Bad and odd images through search-by-file, unicode and over-long keys through upload, and failing
dependencies: valid inputs work, invalid ones get a clear 4xx in Cloudinary's shape, nothing hangs, no
5xx, memory stays bounded."""

from __future__ import annotations

import resource
import time

import pytest

from tests.fixtures import images
from tests.functional.conftest import CLOUD
from visual_search.errors import DependencyUnavailable

SEARCH = f"/v1_1/{CLOUD}/resources/visual_search"
REQUEST_SECONDS = 10.0
RSS_GROWTH_MB = 600  # a 12 MP photo decodes at reduced scale; a bomb is refused from its header


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("kind", sorted(images.CORPUS))
def test_every_corpus_image_searched_by_file_works_or_is_refused_clearly(api, kind):
    factory, error = images.CORPUS[kind]
    before = peak_rss_mb()
    started = time.monotonic()
    status, body, _ = api.request("POST", SEARCH, fields={"image_file": (f"{kind}.jpg", factory())})
    assert time.monotonic() - started < REQUEST_SECONDS
    assert peak_rss_mb() - before < RSS_GROWTH_MB
    if error is None:
        assert status == 200
        assert body["resources"]
    else:
        assert status == 400
        assert set(body) == {"error"}
        assert body["error"]["message"]


def test_an_unavailable_index_is_a_429_with_retry_after_not_a_hang(api, services, monkeypatch):
    def unavailable(*_args, **_kwargs):
        raise DependencyUnavailable("index throttled")

    monkeypatch.setattr(services.index, "knn_page", unavailable)
    status, body, headers = api.search(text="shoe")
    assert status == 429  # not 503: Cloudinary's Node SDK drops the body of a 503
    assert int(headers["Retry-After"]) > 0
    assert "throttled" in body["error"]["message"]


def test_an_unavailable_store_during_upload_is_retryable_and_indexes_nothing(services, monkeypatch):
    def unavailable(*_args, **_kwargs):
        raise DependencyUnavailable("store timed out")

    monkeypatch.setattr(services.store, "put", unavailable)
    count = services.index.count()
    with pytest.raises(DependencyUnavailable):
        services.uploads.upload(images.jpeg(seed=1), {"public_id": "never-stored"})
    assert services.index.count() == count


def test_unicode_public_ids_are_stored_indexed_and_found(services):
    uploaded = services.uploads.upload(images.jpeg(seed=41), {"public_id": "фото/café ☕ 1", "tags": "ünï"})
    assert uploaded.document.public_id == "фото/café ☕ 1"
    assert uploaded.document.folder == "фото"
    assert services.index.get(uploaded.document.asset_id).document.tags == ("ünï",)


def test_a_public_id_over_255_characters_is_refused_before_anything_is_stored(services):
    # 600 characters, 1,200 bytes: past Cloudinary's 255 characters and S3's 1,024 bytes alike
    from visual_search.errors import BadInput

    count, keys = services.index.count(), set(services.store.list())
    with pytest.raises(BadInput, match="255"):
        services.uploads.upload(images.jpeg(seed=42), {"public_id": "é" * 600})
    assert services.index.count() == count
    assert set(services.store.list()) == keys


# -- Corrupt PNGs were a 500: `getexif()` decoded the pixels outside the error handling.
UPLOAD = f"/v1_1/{CLOUD}/image/upload"


def signed_upload_fields(data: bytes, public_id: str) -> dict:
    from tests.functional.conftest import API_KEY, API_SECRET
    from visual_search.api.upload_signature import sign

    fields = {"public_id": public_id, "timestamp": str(int(time.time()))}
    return {**fields, "api_key": API_KEY, "signature": sign(fields, API_SECRET), "file": ("f.png", data)}


@pytest.mark.parametrize("kind", ["png_first_60_bytes", "png_corrupt_idat"])
def test_a_corrupt_png_searched_by_file_is_a_400_not_a_500(api, kind):
    data = images.CORPUS[kind][0]()
    status, body, _ = api.request("POST", SEARCH, fields={"image_file": ("x.png", data)})
    assert (status, set(body)) == (400, {"error"})
    assert "cannot decode" in body["error"]["message"]


@pytest.mark.parametrize("kind", ["png_first_60_bytes", "png_corrupt_idat"])
def test_a_corrupt_png_uploaded_is_a_400_and_stores_nothing(api, services, kind):
    count = services.index.count()
    fields = signed_upload_fields(images.CORPUS[kind][0](), f"corrupt-{kind}")
    status, body, _ = api.request("POST", UPLOAD, auth=False, fields=fields)
    assert (status, set(body)) == (400, {"error"})
    assert services.index.count() == count
    assert not [k for k in services.store.list() if "corrupt-" in k]


# -- Bodies: bounded nesting and size, before the parser runs.
def test_json_nested_100000_levels_is_a_400_on_search(api):
    body = b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer, _ = api.request("POST", SEARCH, body=body, headers={"Content-Type": "application/json"})
    assert status == 400
    assert "nested deeper" in answer["error"]["message"]


def test_json_nested_100000_levels_is_refused_on_upload_without_a_signature(api):
    body = b'{"public_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, answer, _ = api.request(
        "POST", UPLOAD, auth=False, body=body, headers={"Content-Type": "application/json"}
    )
    assert status == 400
    assert "nested deeper" in answer["error"]["message"]


def test_a_form_with_thousands_of_fields_is_a_400(api):
    body = "&".join(f"f{i}=x" for i in range(5000)).encode()
    status, answer, _ = api.request(
        "POST", SEARCH, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 400
    assert "fields" in answer["error"]["message"]


# -- Limit-sized images of every mode: the memory and time guarantee, measured in a fresh process.
WORST_ALONE = ["tiff_float32_one_strip", "jpeg_cmyk_progressive"]  # the largest decode costs


@pytest.fixture(scope="module")
def limit_dir(tmp_path_factory):
    """Where the limit-sized files are written once for the module (each takes up to a second to make)."""
    return tmp_path_factory.mktemp("limit")


def probe(tmp_path, tiny_model_dir, names: list[str], each: bool = False):
    """Search the files in a fresh process (tests/fixtures/decode_probe.py): all at once, or each alone."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    paths = []
    for name in names:
        path = tmp_path / name
        if not path.exists():
            path.write_bytes(images.LIMIT_CORPUS[name]())
        paths.append(str(path))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fixtures.decode_probe",
            str(tiny_model_dir),
            *(["--each"] if each else []),
            *paths,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=180,
        check=True,
    )
    return json.loads(done.stdout)


def test_every_limit_sized_mode_searched_alone_stays_within_memory_and_time(limit_dir, tiny_model_dir):
    names = sorted(images.LIMIT_CORPUS)
    reports = dict(zip(names, probe(limit_dir, tiny_model_dir, names, each=True), strict=True))
    for name, report in reports.items():
        (request,) = report["requests"]
        outcome = request["outcome"]
        assert outcome == "ok" or outcome.startswith("refused: too_many_pixels"), (name, outcome)
        assert request["seconds"] < REQUEST_SECONDS, (name, request)
        assert report["growth_mb"] < RSS_GROWTH_MB, (name, report)
    refused = sorted(n for n, r in reports.items() if r["requests"][0]["outcome"] != "ok")
    assert refused == ["webp_rgba"]  # 16 bytes a pixel in Pillow's WebP decoder: over the budget at 49 MP


@pytest.mark.parametrize("name", WORST_ALONE)
def test_three_limit_sized_images_at_once_stay_within_memory_and_time(limit_dir, tiny_model_dir, name):
    report = probe(limit_dir, tiny_model_dir, [name] * 3)
    assert [r["outcome"] for r in report["requests"]] == ["ok"] * 3
    assert max(r["seconds"] for r in report["requests"]) < REQUEST_SECONDS
    assert report["growth_mb"] < RSS_GROWTH_MB


def test_an_upload_at_the_limit_decodes_once_at_the_models_scale_and_is_indexed(services):
    # Uploads decoded at full scale first: a progressive CMYK JPEG at 49 MP then needed 630 MB and was
    # refused on upload while search accepted it.
    started = time.monotonic()
    uploaded = services.uploads.upload(images.LIMIT_CORPUS["jpeg_cmyk_progressive"](), {"public_id": "limit"})
    assert time.monotonic() - started < REQUEST_SECONDS
    document = uploaded.document
    assert (document.width, document.height, document.format) == (7000, 7000, "jpg")
    assert services.index.get(document.asset_id) is not None
