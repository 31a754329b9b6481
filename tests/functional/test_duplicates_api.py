"""Duplicates over HTTP (a module of its own: it adds images to its services)."""

from __future__ import annotations

import visual_search.api.search_routes as search_routes
from tests.fixtures import images
from tests.functional.conftest import CLOUD
from tests.functional.helpers import ingest_keys
from visual_search.domain.identity import derived_asset_id
from visual_search.search.duplicates import Link, groups


def test_duplicates_of_one_asset_are_tiered(api, services):
    original = images.jpeg(400, 300, seed=42)
    ingest_keys(services, {"dupes/original.jpg": original, "dupes/copy.jpg": original})
    asset = derived_asset_id("local", "dupes/original.jpg")
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
    pair = sorted([derived_asset_id("local", "report/a.jpg"), derived_asset_id("local", "report/b.jpg")])
    assert pair in exact


def test_a_duplicates_report_past_its_time_budget_pages_and_the_pages_merge_into_the_same_groups(
    api, services, monkeypatch
):
    # Given a collection with exact copies, and a page budget so small that each page walks one asset
    same = images.jpeg(300, 300, seed=78)
    ingest_keys(services, {"paged/a.jpg": same, "paged/b.jpg": same, "paged/c.jpg": images.jpeg(300, 300)})
    _, whole, _ = api.request("GET", f"/v1_1/{CLOUD}/duplicates")
    monkeypatch.setattr(search_routes, "REPORT_PAGE_BUDGET_S", 0.0)

    # When walking the report page by page
    pairs, pages, cursor = [], 0, ""
    while cursor is not None:
        status, body, _ = api.request("GET", f"/v1_1/{CLOUD}/duplicates?next_cursor={cursor}")
        assert status == 200
        assert body["assets_in_page"] == 1
        assert "groups" not in body
        pairs += body["pairs"]
        cursor, pages = body["next_cursor"], pages + 1

    # Then every asset was a page, and the pages' pairs make the groups of the one-answer report
    assert pages == whole["assets"]
    links = [Link(p["tier"], *p["asset_ids"], p["score"]) for p in pairs]
    assert [{"tier": g.tier, "asset_ids": list(g.asset_ids)} for g in groups(links)] == whole["groups"]


def test_a_forged_duplicates_report_cursor_is_a_400(api):
    status, body, _ = api.request("GET", f"/v1_1/{CLOUD}/duplicates?next_cursor=-1")
    assert status == 400
    assert "next_cursor" in body["error"]["message"]
