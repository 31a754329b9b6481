"""Cloudinary's asset calls around visual_search: the Upload API (`upload`, `upload_large`, `destroy`,
`rename`, `tags`, `context`, `explicit`, signed in the body) and the Admin API (`ping`, `resources`,
`resources_by_ids`, `resources_by_tag`, `resources_by_context`, `resources_by_asset_ids`, `resource`,
`update`, `delete_resources` by ids, prefix or tag), and an indexed image by its asset_id. Paths and
parameters as the SDKs send them. Who may call each is the route table's (api/routes.py), checked before
the handler runs; each handler is one call into `uploads`, `labels` or `listing`."""

from __future__ import annotations

from typing import Any

from visual_search.api import params
from visual_search.api.http import Http
from visual_search.api.responses import json_text, resource
from visual_search.assets import names
from visual_search.assets.chunked_uploads import parse_part
from visual_search.assets.listing import DEFAULT_RESULTS, EVERYTHING, MAX_RESULTS, Selection
from visual_search.assets.uploads import flag
from visual_search.bootstrap import Services
from visual_search.domain.naming import public_id_for
from visual_search.errors import BadInput

# Cloudinary deletes at most 1000 assets per call and answers `partial`; 200 here, so a call that deletes
# from S3 and the index one by one still answers within the search function's 28 s.
MAX_DELETE_MATCHES = 200
# What Cloudinary's explicit and update can also change, and nothing here can: no renditions are
# delivered, no moderation or add-on runs. Refused by name, so a client never believes it was done.
EXPLICIT_UNSUPPORTED = frozenset(
    {
        "eager",
        "eager_async",
        "transformation",
        "moderation",
        "raw_convert",
        "ocr",
        "categorization",
        "detection",
        "background_removal",
        "auto_tagging",
        "face_coordinates",
        "custom_coordinates",
        "regions",
        "metadata",
        "access_control",
    }
)
UPDATE_UNSUPPORTED = EXPLICIT_UNSUPPORTED | {
    "moderation_status",
    "quality_override",
    "display_name",
    "asset_folder",
}
ONLY_IMAGES = "Visual Search stores and indexes images only: upload with resource_type 'image' or 'auto'"


class AssetRoutes:
    def __init__(self, http: Http, services: Services):
        self.http, self.services = http, services

    # -- Upload API
    def upload(self, cloud_name: str, resource_type: str):
        data = self.http.params().pop("file", None)
        filename = getattr(data, "filename", None)
        text_fields = self.http.signed()
        if resource_type not in ("image", "auto"):
            raise BadInput(ONLY_IMAGES)
        if isinstance(data, str):
            data = (
                params.decode_data_uri(data, self.services.settings.max_image_bytes)
                if data.startswith("data:")
                else None
            )
        if not data:
            raise BadInput(
                "file is required: a file part or a data: URI (remote URLs are not fetched on upload)"
            )
        headers = self.http.app.current_event.headers  # Powertools': case-insensitive
        if "x-unique-upload-id" in headers or "content-range" in headers:
            return self._upload_part(headers, bytes(data), text_fields, filename)
        return self.http.respond(200, self._stored(bytes(data), text_fields, filename).decode())

    def _upload_part(self, headers: dict[str, str], data: bytes, text_fields: dict[str, str], filename):
        """upload_large: a part staged, and answered `done: false`, until the one that completes the file."""
        part = parse_part(headers.get("x-unique-upload-id", ""), headers.get("content-range", ""))
        answer = self.services.chunks.receive(
            part, data, lambda whole: self._stored(whole, text_fields, filename)
        )
        if answer is not None:
            return self.http.respond(200, answer.decode())
        # The SDK sends the public_id it gets back with the next part: echo or choose it now.
        public_id = text_fields.get("public_id") or (
            None if text_fields.get("use_filename") else part.upload_id
        )
        body = {"done": False, "upload_id": part.upload_id, "public_id": public_id}
        return self.http.respond(200, json_text({k: v for k, v in body.items() if v is not None}))

    def _stored(self, data: bytes, text_fields: dict[str, str], filename: str | None) -> bytes:
        """The one upload path, and its answer as Cloudinary gives it."""
        uploaded = self.services.uploads.upload(data, text_fields, filename)
        body = resource(uploaded.document, self.http.urls())
        # Cloudinary's: returned, not replaced / replaced (never both)
        if uploaded.existing:
            body["existing"] = True
        if uploaded.overwritten:
            body["overwritten"] = True
        return json_text(body).encode()

    def destroy(self, cloud_name: str, resource_type: str):
        fields = self.http.signed()
        public_id = fields.get("public_id")
        if not public_id:
            raise BadInput("public_id is required")
        if resource_type != "image" or fields.get("type", "upload") != "upload":
            return self.http.respond(200, json_text({"result": "not found"}))
        found = self.services.uploads.destroy(public_id)
        return self.http.respond(200, json_text({"result": "ok" if found else "not found"}))

    def rename(self, cloud_name: str, resource_type: str):
        """Upload API rename (signed): `from_public_id` to `to_public_id`, `overwrite`; `invalidate` is
        accepted and has nothing to do (no CDN caches the files)."""
        fields = self.http.signed()
        source, target = fields.get("from_public_id"), fields.get("to_public_id")
        if not source or not target:
            raise BadInput("from_public_id and to_public_id are required")
        if resource_type != "image" or {fields.get("type"), fields.get("to_type")} - {None, "", "upload"}:
            raise BadInput(ONLY_IMAGES + ", of type upload")
        document = self.services.uploads.rename(source, target, flag(fields, "overwrite", False))
        return self.http.respond(200, json_text(resource(document, self.http.urls())))

    def tags(self, cloud_name: str, resource_type: str):
        """Upload API tags (signed): `command` add, remove, replace or remove_all of `tag` on `public_ids`."""
        fields = self._upload_call(resource_type)
        changed = self.services.labels.tags(
            fields.get("command", ""), fields.get("tag"), params.id_list(fields, "public_ids")
        )
        return self.http.respond(200, json_text({"public_ids": changed}))

    def context(self, cloud_name: str, resource_type: str):
        """Upload API context (signed): `command` add or remove_all of `context` on `public_ids`."""
        fields = self._upload_call(resource_type)
        changed = self.services.labels.context(
            fields.get("command", ""), fields.get("context"), params.id_list(fields, "public_ids")
        )
        return self.http.respond(200, json_text({"public_ids": changed}))

    def explicit(self, cloud_name: str, resource_type: str):
        """Upload API explicit (signed), for what it can change here: `tags` and `context` of `public_id`.
        Eager transformations and the other media options have nothing to act on (no renditions are
        delivered), so they are refused rather than silently ignored."""
        fields = self._upload_call(resource_type)
        public_id = fields.get("public_id")
        if not public_id:
            raise BadInput("public_id is required")
        if unsupported := sorted(set(fields) & EXPLICIT_UNSUPPORTED):
            raise BadInput(f"explicit here changes tags and context only, not {', '.join(unsupported)}")
        document = self.services.labels.update(public_id, fields.get("tags"), fields.get("context"))
        return self.http.respond(200, json_text(resource(document, self.http.urls())))

    def _upload_call(self, resource_type: str) -> dict[str, str]:
        """A signed Upload API call on stored images: its signed text fields."""
        fields = self.http.signed()
        if resource_type != "image" or fields.get("type", "upload") != "upload":
            raise BadInput(ONLY_IMAGES + ", of type upload")
        return fields

    # -- Admin API
    def ping(self, cloud_name: str):
        return self.http.respond(200, json_text({"status": "ok"}))

    def resources(self, cloud_name: str):
        fields = self.http.params()
        return self._page(fields, prefix=params.text(fields, "prefix") or "")

    def resources_typed(self, cloud_name: str, upload_type: str):
        """`resources` of one delivery type, and `resources_by_ids` (`public_ids`)."""
        fields = self.http.params()
        if upload_type != "upload":
            return self.http.respond(200, json_text({"resources": []}))
        if public_ids := params.id_list(fields, "public_ids"):
            documents = self.services.listing.by_public_ids(public_ids)
            urls = self.http.urls()
            return self.http.respond(200, json_text({"resources": [resource(d, urls) for d in documents]}))
        return self._page(fields, prefix=params.text(fields, "prefix") or "")

    def resources_by_tag(self, cloud_name: str, tag: str):
        return self._page(self.http.params(), selection=Selection(tag=_one_tag(tag)))

    def resources_by_context(self, cloud_name: str):
        """Resources with the context `key` (set to `value`, when given)."""
        fields = self.http.params()
        key = params.text(fields, "key")
        if not key:
            raise BadInput("key is required")
        return self._page(
            fields, selection=Selection(context_key=key, context_value=params.text(fields, "value"))
        )

    def update(self, cloud_name: str, public_id: str):
        """Admin API update of one resource: its `tags` (comma-separated, replacing them) and `context`."""
        fields = self.http.params()
        # Java's SDK sends `moderation_status` without a value when it is not set: an empty field asks
        # for nothing (as in a signed call, whose empty fields are not even signed).
        asked = {name for name, value in fields.items() if value != ""}
        if unsupported := sorted(asked & UPDATE_UNSUPPORTED):
            raise BadInput(f"update here changes tags and context only, not {', '.join(unsupported)}")
        tags, context = (fields.get(name) for name in ("tags", "context"))
        document = self.services.labels.update(
            public_id,
            tags if isinstance(tags, str) else None,
            context if isinstance(context, str) else None,
        )
        return self.http.respond(200, json_text(resource(document, self.http.urls())))

    def resources_by_asset_ids(self, cloud_name: str):
        ids = params.id_list(self.http.params(), "asset_ids")
        if not ids:
            raise BadInput("asset_ids is required")
        documents = self.services.listing.by_asset_ids(ids)
        urls = self.http.urls()
        return self.http.respond(200, json_text({"resources": [resource(d, urls) for d in documents]}))

    def resource_by_public_id(self, cloud_name: str, public_id: str):
        document = self.services.listing.by_public_id(public_id)
        return self.http.respond(200, json_text(resource(document, self.http.urls())))

    def delete_resources(self, cloud_name: str):
        """DELETE /resources/image/upload: by `public_ids` (a query, a form body as Java's http5 client
        sends it, or JSON as the Python, Node and Go SDKs do), or by `prefix`. Every id is checked before
        any is deleted."""
        fields = self.http.params()
        public_ids = params.id_list(fields, "public_ids")
        prefix = params.text(fields, "prefix")
        if public_ids and prefix:
            raise BadInput("give public_ids or prefix, not both")
        if prefix:
            names.existing_public_id(prefix)
            return self._delete_matching(prefix=names.normalise(prefix))
        if not public_ids:
            raise BadInput("public_ids or prefix is required")
        if len(public_ids) > names.MAX_IDS_PER_CALL:
            raise BadInput(f"at most {names.MAX_IDS_PER_CALL} public_ids per call, as Cloudinary allows")
        for public_id in public_ids:
            names.existing_public_id(public_id)
        deleted = {pid: self.services.uploads.delete(pid) for pid in public_ids}
        return self.http.respond(200, json_text({"deleted": deleted, "partial": False}))

    def delete_by_tag(self, cloud_name: str, tag: str):
        return self._delete_matching(tag=_one_tag(tag))

    # -- Visual Search's own
    def get_resource(self, cloud_name: str, asset_id: str):
        document = self.services.listing.by_asset_id(asset_id)
        return self.http.respond(200, json_text(resource(document, self.http.urls())))

    # -- helpers
    def _page(self, fields: dict[str, Any], prefix: str = "", selection: Selection = EVERYTHING):
        if (params.text(fields, "direction") or "asc").lower() not in ("asc", "1"):
            raise BadInput("only direction=asc is supported: listings follow the public_id order")
        page = self.services.listing.page(
            prefix=prefix,
            selection=selection,
            max_results=params.integer(fields, "max_results", DEFAULT_RESULTS, 1, MAX_RESULTS),
            next_cursor=params.text(fields, "next_cursor"),
        )
        urls = self.http.urls()
        body: dict[str, Any] = {"resources": [resource(d, urls) for d in page.documents]}
        if page.next_cursor:
            body["next_cursor"] = page.next_cursor
        return self.http.respond(200, json_text(body))

    def _delete_matching(self, prefix: str = "", tag: str | None = None):
        keys, complete = self.services.listing.matching(prefix, tag, limit=MAX_DELETE_MATCHES)
        deleted = {public_id_for(key): self.services.uploads.delete_key(key) for key in keys}
        return self.http.respond(200, json_text({"deleted": deleted, "partial": not complete}))


def _one_tag(value: str) -> str:
    found = names.tags(value)
    if len(found) != 1:
        raise BadInput("give exactly one tag (a tag holds no comma)")
    return found[0]
