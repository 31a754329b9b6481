"""Duplicates over HTTP (a module of its own: it adds images to its services)."""

from __future__ import annotations

from tests.fixtures import images
from tests.functional.conftest import CLOUD
from tests.functional.helpers import ingest_keys
from visual_search.assets.identity import asset_id_for


def test_duplicates_of_one_asset_are_tiered(api, services):
    original = images.jpeg(400, 300, seed=42)
    ingest_keys(services, {"dupes/original.jpg": original, "dupes/copy.jpg": original})
    asset = asset_id_for("local", "dupes/original.jpg")
    status, body, _ = api.request(
        "GET", f"/v1_1/{CLOUD}/resources/{asset}/duplicates", fields={"threshold": "0"}
    )
    assert status == 200
    first = body["duplicates"][0]
    assert (first["public_id"], first["tier"]) == ("dupes/copy", "exact")
    assert all(d["tier"] in ("near", "similar") for d in body["duplicates"][1:])


def test_duplicates_report_groups_exact_copies_over_the_collection(api, services):
    same = images.jpeg(300, 300, seed=77)
    ingest_keys(services, {"report/a.jpg": same, "report/b.jpg": same})
    status, body, _ = api.request("GET", f"/v1_1/{CLOUD}/duplicates")
    assert status == 200
    exact = [g["asset_ids"] for g in body["groups"] if g["tier"] == "exact"]
    pair = sorted([asset_id_for("local", "report/a.jpg"), asset_id_for("local", "report/b.jpg")])
    assert pair in exact
