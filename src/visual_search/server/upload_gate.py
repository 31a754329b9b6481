"""An Upload API request whose signature fails is refused from the fields before its file, without
reading the file.

Every Cloudinary SDK (Python, Node, Java, Go, and so `cld`) sends an upload's multipart body with the
file part last, after the signed fields. While such a body streams in, its text parts are collected;
when the file part begins, and the fields so far carry a `signature`, they are verified as the route
would verify them (the same merge of query and body, the same check): a failure is answered then, with
the route's own message, and the file is never read. The outcome does not depend on whether the api_key
is known (a stranger's request and a bad signature are refused at the same point), so it tells nothing
more than the route would.

A body whose fields come after its file (curl `-F file=@x -F api_key=...`), or that has no signature
before it, is read whole and judged by the route as before; memory stays bounded by the body budget.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import parse_qs

import multipart

from visual_search.api import params
from visual_search.errors import Unauthorized

MAX_FIELD_BYTES = 64 * 1024  # the fields before the file (api_key, timestamp, signature, tags...)
Verify = Callable[[dict[str, str]], None]  # raises Unauthorized


class Refusal(Exception):
    """The fields before the file do not verify: the request's answer, with the route's message."""


class SignedFieldsFirst:
    def __init__(self, boundary: str, query: Mapping[str, list[str]], verify: Verify):
        self._parser = multipart.PushMultipartParser(boundary, max_segment_count=params.MAX_PARTS)
        self._query, self._verify = query, verify
        self._parts: list[tuple[str, str | bytes]] = []
        self._name: str | None = None
        self._value = bytearray()
        self._seen = 0
        self.done = False

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body; raise Refusal once the fields before the file fail."""
        if self.done:
            return
        try:
            for event in self._parser.parse(chunk):
                if isinstance(event, multipart.MultipartSegment):
                    if event.filename is not None:
                        self.done = True
                        return self._judge()
                    self._name, self._value = event.name, bytearray()
                elif event is None:
                    self._parts.append((self._name or "", self._value.decode("utf-8")))
                else:
                    self._seen += len(event)
                    self._value += event
                    if self._seen > MAX_FIELD_BYTES:
                        self.done = True  # not an SDK's body: the route reads and judges it
                        return
        except (multipart.MultipartError, UnicodeDecodeError):
            self.done = True  # the route answers the malformed body with its own 400

    def _judge(self) -> None:
        try:
            merged = params.merge(self._query, params.multipart_fields(self._parts))
        except Exception:  # whatever the route would refuse (bad Unicode...), it refuses itself
            return
        fields = {k: v for k, v in merged.items() if isinstance(v, str)}
        if "signature" not in fields:
            return
        try:
            self._verify(fields)
        except Unauthorized as exc:
            raise Refusal(str(exc)) from None
        except Exception:  # a 400 the route gives too (a name that cannot be signed): it answers it
            return


def gate_for(method: str, path: str, query_string: bytes, headers: Mapping[str, str], verify: Verify):
    """A SignedFieldsFirst for a multipart Upload API upload, else None."""
    parts = path.split("/")
    if method != "POST" or len(parts) != 5 or parts[1] != "v1_1" or parts[4] != "upload":
        return None
    mime, options = multipart.parse_options_header(headers.get("content-type", ""))
    if mime != "multipart/form-data" or not options.get("boundary"):
        return None
    try:
        query = parse_qs(query_string.decode("ascii"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    try:
        return SignedFieldsFirst(options["boundary"], query, verify)
    except multipart.MultipartError:
        return None
