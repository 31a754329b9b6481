"""Cloudinary Upload API signatures, so `cloudinary.uploader.upload` works against this server.

What the SDKs sign (Python `utils.api_sign_request`, Node `utils.api_sign_request`, Java
`Util.produceSignature`, Go `api.SignParametersUsingAlgoAndVersion`): every parameter but file,
cloud_name, resource_type, api_key and the signature itself, empty values left out, lists joined with
","; each pair written `k=v`, the pairs sorted and joined with "&", the api secret appended, then
hex SHA-1 or, with the SDK option `signature_algorithm="sha256"`, hex SHA-256. Signature version 2,
every SDK's default, writes each "&" inside a pair as "%26"; version 1 leaves it as it is.

The request says neither the version nor the digest: no SDK sends them. The digest follows from the
signature's length (40 or 64 hex digits). The version is settled here: **only version 2's string is
checked.** Version 1 cannot tell the pairs apart: `context=caption=hi&folder=users/bob` is one
parameter or two, and the signature is the same. Accepting a version-1 match as well would let a
caller holding a signature for `{context: caption=hi, folder: users/bob}` send the folder inside the
context value and upload outside the folder it was signed for. Where no signed value holds an "&",
the two versions build the same string, so a client configured with `signature_version=1` keeps
working; with an "&" it gets the invalid-signature answer, the one case its signature cannot be
told from a smuggle. Two things version 2 cannot tell apart either: an "&" in a value and a literal
"%26" there (as on Cloudinary), and a pair split at an "=" inside a parameter name, so names
holding "=" or "&" are refused. (A version-1 signer's own `context=caption=hi&folder=evil` is
signed as the very string of a request carrying `folder=evil`: no verifier can refuse that one.)

What a caller without the secret learns: one answer, Cloudinary's "Invalid Signature <signature>.
String to sign - '<string>'.", for an unknown api_key and a wrong signature alike; both are compared
in constant time and both always run. Only a request that passes both is told its timestamp is
missing or stale (more than an hour from the server's clock, as on Cloudinary), so no answer confirms
a key.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from visual_search.errors import BadInput, InvalidSignature

UNSIGNED = frozenset({"file", "cloud_name", "resource_type", "api_key", "signature"})
MAX_AGE_S = 3600
DIGESTS = {40: hashlib.sha1, 64: hashlib.sha256}  # by the length of the hex signature
# Cloudinary echoes the whole string to sign; a field here may hold megabytes (a body may hold an image).
ECHOED_CHARS = 2000


def signed_params(params: Mapping[str, str]) -> dict[str, str]:
    """The parameters a signature covers; a name that would make the string to sign ambiguous is refused."""
    signed = {k: v for k, v in params.items() if k not in UNSIGNED and v != ""}
    for name in signed:
        if not name or "=" in name or "&" in name:
            raise BadInput(f"parameter name {name[:40]!r} cannot be signed: it is empty or holds '=' or '&'")
    return signed


def string_to_sign(params: Mapping[str, str]) -> str:
    """Signature version 2's string, as the SDKs build it. Python's sorts the written pairs, Node's, Java's
    and Go's the names: one order for Cloudinary's parameter names (lowercase letters and underscores).

    >>> string_to_sign({"timestamp": "1", "tags": "rock&roll", "api_key": "k"})
    'tags=rock%26roll&timestamp=1'
    """
    pairs = (f"{k}={v}".replace("&", "%26") for k, v in signed_params(params).items())
    return "&".join(sorted(pairs))


def sign(params: Mapping[str, str], api_secret: str, algorithm: str = "sha1") -> str:
    """The signature an SDK sends for `params` (version 2), with SHA-1 or SHA-256."""
    digest = hashlib.sha256 if algorithm == "sha256" else hashlib.sha1
    return digest((string_to_sign(params) + api_secret).encode("utf-8")).hexdigest()


def verify_upload(
    params: Mapping[str, str], api_key: str, api_secret: str, now: float | None = None
) -> dict[str, str]:
    """Check a signed Upload API request; the parameters its signature covers, which are all the call
    may use. Raises InvalidSignature (401) as described in the module docstring."""
    if not params.get("api_key"):
        raise InvalidSignature("Must supply api_key")
    to_sign = string_to_sign(params)
    given = str(params.get("signature", ""))
    digest = DIGESTS.get(len(given), hashlib.sha1)
    expected = digest((to_sign + api_secret).encode("utf-8")).hexdigest()
    # Both comparisons run whatever the first found, and the answer is one: a key is never confirmed.
    # The keys are compared as digests, so the time taken does not tell the key's length either.
    key_ok = hmac.compare_digest(_sha256(str(params["api_key"])), _sha256(api_key))
    signature_ok = hmac.compare_digest(expected.encode(), given.encode())
    if not (key_ok & signature_ok):
        raise InvalidSignature(
            f"Invalid Signature {given[:64]}. String to sign - '{to_sign[:ECHOED_CHARS]}'."
        )
    timestamp = params.get("timestamp", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise InvalidSignature("Missing required parameter - timestamp (seconds since the epoch)")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_S:
        raise InvalidSignature(f"Stale request - reported time {timestamp} is more than an hour away")
    return signed_params(params)


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()
