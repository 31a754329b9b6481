"""Domain errors. The API layer maps these types (never their messages) to HTTP statuses.

Every error that comes from bad input is *permanent*: retrying the same input cannot succeed. An image
the ingest pipeline refuses is recorded in the ledger as refused, with its reason, and never retried; a
queue message that is no object event at all (`ingest.events.MalformedEvent`) names no asset to record,
so it fails alone and, after the queue's receives, waits in the dead-letter queue for an operator
(tests/functional/test_ingest_ordering.py and test_ingest_faults.py show both).
"""


class VisualSearchError(Exception):
    """Base of every error this package raises on purpose."""


class BadInput(VisualSearchError):
    """The caller's input is invalid; retrying it unchanged cannot succeed."""


class BodyTooLarge(BadInput):
    """A request body past the largest any route parses (413: refused before it is parsed)."""


class ImageRejected(BadInput):
    """An image was refused. `reason` is a stable machine-readable code for logs and metrics."""

    reason = "image_rejected"


class EmptyImage(ImageRejected):
    reason = "empty"


class ImageTooLarge(ImageRejected):
    """More bytes than the configured limit."""

    reason = "too_many_bytes"


class DecompressionBomb(ImageRejected):
    """More pixels than the configured limit (checked from the header, before decoding)."""

    reason = "too_many_pixels"


class UnsupportedImageFormat(ImageRejected):
    """Not an image, or a format outside the allow-list (SVG, HTML, PDF, ...)."""

    reason = "unsupported_format"


class CorruptImage(ImageRejected):
    """Recognised as an allowed format but cannot be decoded (truncated, damaged)."""

    reason = "corrupt"


class ModelError(VisualSearchError):
    """The model folder is missing, incomplete or does not match its manifest."""


class ChecksumMismatch(ModelError):
    """A model file's sha256 differs from the one recorded in the manifest."""


class InvalidCursor(BadInput):
    """A next_cursor that is forged, truncated, of an old version, or from another query."""


class NotFound(VisualSearchError):
    """The named resource (asset, cloud) does not exist."""


class Unauthorized(VisualSearchError):
    """Missing or wrong credentials."""


class InvalidSignature(Unauthorized):
    """A signed Upload API call refused (api_key, signature or timestamp). Its answer carries no Basic
    challenge: these calls authenticate by their signature, not by Basic auth."""


class DependencyUnavailable(VisualSearchError):
    """The index or store cannot answer now; retrying later may succeed."""


class ModelSwitched(DependencyUnavailable):
    """The index serves another model than the one this process embeds queries with: a model switch
    moved readers to the new model's index (OpenSearch's alias) before this process was restarted on it.
    Its query vectors mean nothing there, even at the same dimension; a retry reaches a process on the
    new model once it is deployed."""

    def __init__(self, served: str, running: str):
        super().__init__(
            f"the index now serves model {served}, and this service embeds with {running}: a model "
            "switch is under way; retry once the service runs the new model"
        )


class StagingFull(DependencyUnavailable):
    """upload_large's staging holds all it may. It empties as uploads finish or expire, so it is answered
    as an unavailable dependency is: 429 with Retry-After."""


class UploadInProgress(DependencyUnavailable):
    """Another process is assembling this upload_large right now; its answer will be there shortly."""


class IndexInUse(VisualSearchError):
    """The embedded index is open in another process (one writer per index file)."""


class ConfigurationError(VisualSearchError):
    """Settings are missing or inconsistent; the process cannot serve."""


class RemoteFetchRefused(BadInput):
    """An image_url that may not be fetched: scheme, credentials, private address, too many redirects."""

    reason = "url_refused"


class RemoteFetchFailed(BadInput):
    """An image_url that could not be fetched as an image: timeout, HTTP error, too large, not an image."""

    reason = "url_failed"
