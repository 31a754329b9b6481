"""Names given to the API: Cloudinary's public_id and tag rules, NFC, the reserved prefix, and the limits
at and just past each bound."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from visual_search.assets import names
from visual_search.assets.names import InvalidName, ReservedName


def test_the_same_name_in_nfc_and_nfd_is_one_public_id():
    nfc, nfd = unicodedata.normalize("NFC", "café/crème"), unicodedata.normalize("NFD", "café/crème")
    assert nfc != nfd
    assert names.new_public_id(nfd) == names.new_public_id(nfc) == nfc
    assert names.existing_public_id(nfd) == nfc


@pytest.mark.parametrize(
    ("given_id", "folder", "expected"),
    [
        ("dir/", "", "dir"),
        ("  /red shoe/  ", "", "red shoe"),
        ("red", "/shoes/summer/", "shoes/summer/red"),
        (".upload-x", "", ".upload-x"),
        ("фото/café ☕ 1", "", "фото/café ☕ 1"),
    ],
)
def test_leading_and_trailing_spaces_and_slashes_are_trimmed_as_cloudinary_does(given_id, folder, expected):
    assert names.new_public_id(given_id, folder) == expected


@pytest.mark.parametrize("given_id", ["/", " ", " / ", "\t/\n"])
def test_a_public_id_that_trims_to_nothing_is_refused(given_id):
    with pytest.raises(InvalidName, match="empty"):
        names.new_public_id(given_id)


@pytest.mark.parametrize("char", list("?&#\\%<>+"))
def test_cloudinarys_forbidden_characters_are_refused_in_new_names(char):
    with pytest.raises(InvalidName, match="may not contain"):
        names.new_public_id(f"a{char}b")


def test_a_comma_is_refused_in_new_names_because_it_separates_list_items():
    with pytest.raises(InvalidName, match="comma"):
        names.new_public_id("a,b")


def test_existing_names_may_hold_characters_a_bucket_allows_so_they_can_still_be_deleted():
    assert names.existing_public_id("photos/red flower été + (2)") == "photos/red flower été + (2)"


@pytest.mark.parametrize("given_id", ["a//b", "a/./b", "a/../b", "../b", "a/.."])
def test_empty_dot_and_dotdot_segments_are_refused(given_id):
    with pytest.raises(InvalidName, match="segment"):
        names.new_public_id(given_id)
    with pytest.raises(InvalidName, match="segment"):
        names.existing_public_id(given_id)


@pytest.mark.parametrize("given_id", ["a\x00b", "a\nb", "a\x7fb", "a\ud800b"])
def test_control_characters_and_lone_surrogates_are_refused(given_id):
    with pytest.raises(InvalidName, match="control"):
        names.new_public_id(given_id)
    with pytest.raises(InvalidName, match="control"):
        names.existing_public_id(given_id)


@pytest.mark.parametrize(
    ("given_id", "folder"),
    [
        ("_vs/renditions/w320/x.jpg", ""),
        ("x", "_vs"),
        ("x", "_vs/models"),
        ("_VS/x", ""),  # the same folder on a case-insensitive disk
        ("_vs", ""),
        (" /_vs/x", ""),
    ],
)
def test_the_reserved_prefix_is_refused_for_new_names(given_id, folder):
    with pytest.raises(ReservedName, match="_vs/"):
        names.new_public_id(given_id, folder)


@pytest.mark.parametrize("given_id", ["_vs/renditions/w320/shoes/item-01.jpg", "/_vs/x", "_vs"])
def test_the_reserved_prefix_is_refused_for_lookups_and_filters(given_id):
    with pytest.raises(ReservedName):
        names.existing_public_id(given_id)
    with pytest.raises(ReservedName):
        names.folder_filter(given_id)


def test_names_that_only_start_like_the_reserved_prefix_are_ordinary():
    assert names.new_public_id("_vsx/a") == "_vsx/a"
    assert names.new_public_id("a/_vs/b") == "a/_vs/b"


def test_a_folder_reading_as_a_version_is_refused_as_cloudinary_does():
    with pytest.raises(InvalidName, match="version"):
        names.new_public_id("x", folder="v123")
    assert names.new_public_id("v123") == "v123"  # only folders read as versions
    assert names.new_public_id("x", folder="v1a") == "v1a/x"


def test_a_public_id_of_255_characters_is_accepted_and_256_refused():
    assert names.new_public_id("a" * 255) == "a" * 255
    assert names.new_public_id("b" * 100, folder="f" * 154) == "f" * 154 + "/" + "b" * 100
    with pytest.raises(InvalidName, match="255"):
        names.new_public_id("a" * 256)
    with pytest.raises(InvalidName, match="255"):
        names.new_public_id("b" * 100, folder="f" * 155)


def test_a_segment_of_255_utf8_bytes_is_accepted_and_256_refused():
    at_limit = "é" * 127 + "a"  # 255 bytes, 128 characters
    assert names.new_public_id("x", folder=at_limit) == at_limit + "/x"
    with pytest.raises(InvalidName, match="255 bytes"):
        names.new_public_id("x", folder="é" * 128)  # 256 bytes in 128 characters
    # a bucket may hold longer segments (S3 allows them): lookups and deletes still reach them
    assert names.existing_public_id("é" * 128 + "/x") == "é" * 128 + "/x"


def test_the_stored_key_leaves_room_in_its_last_segment_for_the_extension_and_the_rendition():
    room = 255 - len(".jpg") - len(".jpg")  # the key's extension, then the rendition's
    assert names.stored_key("a" * room, "jpg") == "a" * room + ".jpg"
    with pytest.raises(InvalidName, match=f"at most {room} bytes"):
        names.stored_key("a" * (room + 1), "jpg")
    with pytest.raises(InvalidName):
        names.stored_key("f/" + "é" * 124, "jpeg")  # 248 bytes + ".jpeg" + ".jpg"


def test_tags_are_trimmed_nfc_and_each_kept_once():
    nfd = unicodedata.normalize("NFD", "été")
    assert names.tags(f" red, ,été,{nfd},red ") == ("red", "été")
    assert names.tags(["a,b", "c"]) == ("a", "b", "c")
    assert names.tags("") == ()


def test_1000_tags_are_accepted_and_1001_refused():
    assert len(names.tags(",".join(f"t{i}" for i in range(1000)))) == 1000
    with pytest.raises(InvalidName, match="1000"):
        names.tags(",".join(f"t{i}" for i in range(1001)))


def test_1001_copies_of_one_tag_are_one_tag():
    assert names.tags(",".join(["same"] * 1001)) == ("same",)


def test_a_tag_of_255_characters_is_accepted_and_256_refused():
    assert names.tags("é" * 255) == ("é" * 255,)
    with pytest.raises(InvalidName, match="255"):
        names.tags("é" * 256)


def test_the_folder_filter_trims_and_empty_means_no_filter():
    assert names.folder_filter(" /shoes/ ") == "shoes"
    assert names.folder_filter("/") == ""


@given(st.text(max_size=300), st.text(max_size=40))
def test_a_new_public_id_is_refused_clearly_or_is_a_fixed_point_of_its_own_rules(given_id, folder):
    try:
        full = names.new_public_id(given_id, folder)
    except InvalidName:
        return
    assert names.new_public_id(full) == full
    assert names.existing_public_id(full) == full
    assert len(full) <= 255
    assert not full.startswith(("/", "_vs/"))
