"""The search handlers: visual_search (Cloudinary's, GET and POST), the duplicates extensions and the health
check. Each: parse, one core call, Cloudinary-shaped response; the route table checks the caller first.
Handlers carry no return annotation: with validation on, Powertools would try to build a response
schema from `Response`."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from visual_search.api import params
from visual_search.api.http import Http
from visual_search.api.responses import json_text, resource, search_response
from visual_search.api.search_params import SearchParams
from visual_search.bootstrap import Services
from visual_search.errors import BadInput
from visual_search.search.duplicates import groups

REPORT_MAX_ASSETS = 10_000
# One page of the collection duplicates report: as many assets as fit in this time (one k-NN query each),
# well inside the search function's 28 s; the rest is reached with next_cursor.
REPORT_PAGE_BUDGET_S = 10.0
REPORT_PAGE_MAX_ASSETS = 2_000
NOT_PARSED = SearchParams()  # the GET search's `query`: see SearchRoutes.search_get


class SearchRoutes:
    def __init__(self, http: Http, services: Services):
        self.http, self.services = http, services

    def visual_search(self, cloud_name: str):
        settings = self.services.settings
        query = params.to_search_query(
            self.http.params(), settings.default_max_results, settings.max_image_bytes
        )
        page = self.services.search.search(query)
        return self.http.respond(200, json_text(search_response(page, self.http.urls())))

    def search_get(self, cloud_name: str, query: Annotated[SearchParams, Query()] = NOT_PARSED):
        """The parameters are declared by SearchParams (for the OpenAPI document) and validated with it
        once, on every route and transport alike (`search_params.read`, over `Http.params`). The
        route is registered without Powertools' validation, so `query` is always its default: Powertools
        would validate the query string alone, a second time, with its own generic 400."""
        return self.visual_search(cloud_name)

    def duplicates(self, cloud_name: str, asset_id: str):
        """Extension (not in Cloudinary's API): the tiered duplicates of one asset."""
        threshold = params.number(self.http.params(), "threshold", None, 0.0, 1.0)
        found = self.services.duplicates.of_asset(asset_id, threshold)
        urls = self.http.urls()
        body = {
            "asset_id": asset_id,
            "duplicates": [
                {
                    **resource(d.document, urls),
                    "score": round(max(0.0, d.score), 6),
                    "tier": d.tier,
                }
                for d in found
            ],
        }
        return self.http.respond(200, json_text(body))

    def duplicates_report(self, cloud_name: str):
        """Extension: duplicate groups over the whole collection, per tier. One k-NN query per asset, so
        it pages by time: a report that does not finish inside REPORT_PAGE_BUDGET_S answers the links
        (`pairs`) it found and a `next_cursor` to continue from; the caller merges the pairs of every
        page into groups. A report that finishes in one answer also carries `groups`. Collections over
        REPORT_MAX_ASSETS are for `visual-search duplicates`, which streams."""
        request = self.http.params()
        threshold = params.number(request, "threshold", None, 0.0, 1.0)
        offset = _report_offset(request.get("next_cursor"))
        ids = self.services.collection_ids(limit=REPORT_MAX_ASSETS + 1)
        if len(ids) > REPORT_MAX_ASSETS:
            raise BadInput(
                f"the collection has over {REPORT_MAX_ASSETS:,} images: use `visual-search duplicates`"
            )
        page = ids[offset : offset + REPORT_PAGE_MAX_ASSETS]
        links, done = self.services.duplicates.report_page(page, threshold, REPORT_PAGE_BUDGET_S)
        more = offset + done < len(ids)
        body: dict[str, object] = {
            "assets": len(ids),
            "assets_in_page": done,
            "pairs": [{"tier": k.tier, "asset_ids": [k.first, k.second], "score": k.score} for k in links],
            "next_cursor": str(offset + done) if more else None,
        }
        if offset == 0 and not more:
            body["groups"] = [{"tier": g.tier, "asset_ids": list(g.asset_ids)} for g in groups(links)]
        return self.http.respond(200, json_text(body))

    def health(self):
        search = self.services.search
        body = {"status": "ok", "model_id": search.model_id, "assets": search.indexed()}
        return self.http.respond(200, json_text(body))


def _report_offset(cursor: str | bytes | None) -> int:
    """The duplicates report's next_cursor: how many assets earlier pages walked."""
    if cursor is None or cursor == "":
        return 0
    text = cursor.decode() if isinstance(cursor, bytes) else cursor
    if not text.isdigit() or len(text) > 6:
        raise BadInput("next_cursor is not one this report returned")
    return int(text)
