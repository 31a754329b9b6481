"""The CLI through the same services: add (with refusals and resume), search, duplicates."""

from __future__ import annotations

import pytest

from tests.fixtures import images
from visual_search.bootstrap import build_services
from visual_search.cli import main as cli_main
from visual_search.server import LocalServer
from visual_search.settings import ServiceSettings


@pytest.fixture
def env(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("VS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VS_MODEL_DIR", str(tiny_model_dir))
    folder = tmp_path / "photos"
    (folder / "trips").mkdir(parents=True)
    for i in range(5):
        (folder / "trips" / f"p{i}.jpg").write_bytes(images.jpeg(seed=i))
    (folder / "copy-of-p0.jpg").write_bytes(images.jpeg(seed=0))
    (folder / "notes.txt").write_bytes(images.text_file())
    (folder / "broken.jpg").write_bytes(images.truncated_jpeg())
    return folder


def test_add_indexes_good_files_and_lists_refused_ones_with_reasons(env, capsys):
    assert cli_main(["add", str(env), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "indexed: 6" in out
    assert "refused: 2" in out
    assert "notes.txt: unsupported_format" in err
    assert "broken.jpg: corrupt" in err


def test_re_running_add_skips_what_is_already_indexed(env, capsys):
    cli_main(["add", str(env), "--quiet"])
    capsys.readouterr()
    assert cli_main(["add", str(env), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert "unchanged: 6" in out
    assert "indexed" not in out


def test_search_prints_a_table_of_hits(env, capsys):
    cli_main(["add", str(env), "--quiet"])
    capsys.readouterr()
    assert cli_main(["search", "--file", str(env / "trips" / "p3.jpg"), "--max-results", "3"]) == 0
    out, _ = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].split() == ["score", "asset_id", "size", "public_id"]
    assert lines[1].endswith("trips/p3")
    assert "3 hit(s)" in lines[-1]


def test_duplicates_report_groups_exact_copies(env, capsys):
    cli_main(["add", str(env), "--quiet"])
    capsys.readouterr()
    assert cli_main(["duplicates", "--quiet"]) == 0
    out, err = capsys.readouterr()
    exact = [line for line in out.splitlines() if line.startswith("exact")]
    assert exact == ["exact    2 assets: copy-of-p0, trips/p0"]
    assert "group(s)" in err


@pytest.fixture
def served(env):
    """`visual-search serve` on the same data folder, as in another terminal."""
    services = build_services(ServiceSettings())
    server = LocalServer(services, "127.0.0.1", 0).start()
    yield server.url
    server.stop()
    services.close()


def test_add_on_a_served_data_folder_says_so_in_one_line_and_names_the_way_through(env, served, capsys):
    assert cli_main(["add", str(env), "--quiet"]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1
    assert err.startswith("error: the index in ")
    assert "already open" in err
    assert "visual-search add --server URL" in err


def test_add_through_the_server_indexes_refuses_and_resumes(env, served, capsys):
    assert cli_main(["add", str(env), "--server", served, "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "indexed: 6" in out
    assert "refused: 2" in out
    assert "notes.txt: not an image" in err
    assert "broken.jpg: " in err
    assert cli_main(["add", str(env), "--server", served, "--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert "unchanged: 6" in out
    assert "indexed" not in out


def test_add_through_the_server_with_wrong_credentials_stops_at_once(env, served, monkeypatch, capsys):
    monkeypatch.setenv("VS_API_SECRET", "not-the-secret")
    assert cli_main(["add", str(env), "--server", served, "--quiet"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("error: the server refused the credentials")


def test_adding_a_corrupt_copy_of_an_indexed_file_leaves_the_asset_and_its_file_as_they_were(env, capsys):
    # Given trips/p1.jpg indexed
    assert cli_main(["add", str(env), "--quiet"]) == 0
    stored = (env.parent / "data" / "images" / "trips" / "p1.jpg").read_bytes()
    capsys.readouterr()
    # When a corrupt copy of it is added under the same name
    (env / "trips" / "p1.jpg").write_bytes(images.truncated_jpeg())
    assert cli_main(["add", str(env), "--quiet"]) == 0
    _, err = capsys.readouterr()
    # Then the stored file is unchanged, the asset is still found, and one line says so
    assert (env.parent / "data" / "images" / "trips" / "p1.jpg").read_bytes() == stored
    lines = [line for line in err.splitlines() if "trips/p1.jpg" in line]
    assert len(lines) == 1, err
    assert "kept as they were" in lines[0]
    assert cli_main(["search", "--file", str(env / "trips" / "p0.jpg"), "--max-results", "10"]) == 0
    assert "trips/p1" in capsys.readouterr().out
