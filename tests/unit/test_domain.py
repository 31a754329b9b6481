"""The domain package: the bottom layer (it imports no other visual_search package), the asset's id,
its typed document in the stored form existing indices hold, and the naming rules."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visual_search.domain.document import AssetDocument
from visual_search.domain.identity import asset_id, derived_asset_id, new_asset_id
from visual_search.domain.naming import folder_for, public_id_for
from visual_search.errors import BadInput

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "visual_search" / "domain"
ALLOWED = {"visual_search.domain", "visual_search.errors"}  # errors: a leaf module, no imports of its own


def test_the_domain_package_imports_no_other_visual_search_package():
    for source in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if name.startswith("visual_search"):
                    assert any(name == a or name.startswith(a + ".") for a in ALLOWED), (source.name, name)


def test_a_new_asset_id_is_32_hex_and_never_repeats():
    made = {new_asset_id() for _ in range(1000)}
    assert len(made) == 1000
    assert all(asset_id(a) == a for a in made)


@pytest.mark.parametrize("bad", ["", "A" * 32, "0" * 31, "g" * 32, "0" * 33])
def test_an_asset_id_that_is_not_32_lowercase_hex_is_bad_input(bad):
    with pytest.raises(BadInput):
        asset_id(bad)


def test_an_object_without_an_id_gets_the_same_derived_one_from_every_reader():
    assert derived_asset_id("s3:b", "a/x.jpg") == derived_asset_id("s3:b", "a/x.jpg")
    assert derived_asset_id("s3:b", "a/x.jpg") != derived_asset_id("s3:other", "a/x.jpg")


def test_each_key_has_one_public_id_and_a_public_id_with_an_extension_is_its_own():
    assert public_id_for("vb/photo.jpg") == "vb/photo"
    assert public_id_for("vb/photo.jpg.png") == "vb/photo.jpg"
    assert public_id_for("readme") == "readme"
    assert folder_for("vb/photo.jpg") == "vb"


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="a./é\\ ", max_size=12))
def test_a_key_names_the_public_id_and_folder_a_path_would_name_whatever_its_spelling(key):
    # The names are read from plain strings (a page of 50 results reads 100 of them); a path is the
    # reference, and keys from a bucket's events may hold any spelling.
    path = PurePosixPath(key)
    assert public_id_for(key) == (str(path.with_suffix("")) if path.suffix else key)
    parent = path.parent.as_posix()
    assert folder_for(key) == ("" if parent == "." else parent)


def test_the_document_is_stored_under_the_field_names_existing_indices_hold():
    document = AssetDocument(
        asset_id=asset_id("a" * 32),
        key="shoes/red.png",
        format="png",
        bytes=10,
        created_at=datetime(2026, 11, 24, 10, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        tags=("sale", "new", "sale"),
        width=4,
        height=3,
        etag="e" * 32,
        model_id="m",
    )
    fields = document.to_fields()
    assert fields == {
        "asset_id": "a" * 32,
        "key": "shoes/red.png",
        "public_id": "shoes/red",
        "folder": "shoes",
        "format": "png",
        "width": 4,
        "height": 3,
        "bytes": 10,
        "etag": "e" * 32,
        "tags": ["new", "sale"],
        "created_at": "2026-11-24T10:00:00Z",
        "model_id": "m",
    }
    assert AssetDocument.from_fields(fields) == AssetDocument.from_fields(document.to_fields())
    assert AssetDocument.from_fields(fields).to_fields() == fields


# As the first version's `build_document` wrote it (7972528), and as every version since has for an
# image with no context: no `context` field at all.
FIRST_VERSION = {
    "asset_id": "b" * 32,
    "key": "shoes/red shoe.jpg",
    "public_id": "shoes/red shoe",
    "folder": "shoes",
    "format": "jpg",
    "width": 640,
    "height": 480,
    "bytes": 51234,
    "etag": "e" * 32,
    "tags": ["new", "sale"],
    "created_at": "2026-11-24T10:00:00Z",
    "model_id": "clip-vit-b32",
}


@pytest.mark.parametrize(
    "stored",
    [
        FIRST_VERSION,
        # and with the optional fields a document may lack (no etag, model_id or dimensions)
        {k: v for k, v in FIRST_VERSION.items() if k not in ("etag", "model_id", "width", "height")},
    ],
)
def test_a_document_an_older_version_stored_reads_back_and_is_stored_again_byte_for_byte(stored):
    document = AssetDocument.from_fields(stored)

    assert (document.public_id, document.folder, document.tags, document.context) == (
        "shoes/red shoe",
        "shoes",
        ("new", "sale"),
        (),
    )
    assert document.etag == stored.get("etag")
    assert document.model_id == stored.get("model_id")
    assert json.dumps(document.to_fields()) == json.dumps(stored)  # the same fields, in the same order


def test_a_document_holds_its_tags_and_context_as_stored_so_it_equals_itself_read_back():
    document = AssetDocument(
        asset_id=asset_id("c" * 32),
        key="a.png",
        format="png",
        bytes=1,
        created_at="2026-11-24T10:00:00Z",
        tags=("sale", "new", "sale"),
        context=(("alt", "x"), ("team", "red"), ("alt", "y")),
    )

    assert document.tags == ("new", "sale")
    assert document.context == (("alt", "y"), ("team", "red"))
    assert AssetDocument.from_fields(document.to_fields()) == document
