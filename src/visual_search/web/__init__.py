"""The search page: static files served by the same resolver as the API (so the same origin, no CORS),
locally and on API Gateway. They hold no data and no secret; every call they make is authenticated."""

from __future__ import annotations

from importlib import resources

FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
# Same origin only; thumbnails may come from the store's own origin (S3 presigned URLs are https).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' https: blob: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def read(name: str) -> tuple[str, str] | None:
    """(content type, text) of a page file, or None if there is no such file."""
    if name not in FILES:
        return None
    return FILES[name], resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
