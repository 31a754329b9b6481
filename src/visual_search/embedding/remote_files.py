"""Model files fetched on first use from S3 into a local cache, verified against the manifest.

Why: a Lambda's code + layers are capped at 250 MB unzipped, and the ViT-B/32 int8 towers with
onnxruntime, numpy and Pillow do not all fit. The search function ships the text tower (every text query
needs it, cold starts stay short) and fetches the image tower the first time an image query arrives;
the ingest function ships only the image tower. The cache (`/tmp` on Lambda, up to 10 GB) survives for
the life of the execution environment, and a cached file is re-verified before use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from visual_search.deadline import budget, out_of_time, request_expired
from visual_search.errors import ChecksumMismatch, DependencyUnavailable, ModelError

CLIENT_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})
# A whole download, however slowly the bytes trickle in, ends by then: the query that triggered it gets
# 429 + Retry-After within the search function's timeout, and the next one tries again.
DOWNLOAD_BUDGET_S = 20.0
CHUNK = 1 << 20


class S3ModelFiles:
    """Files under `s3://bucket/prefix/`, cached in `cache_dir`."""

    def __init__(
        self,
        url: str,
        cache_dir: Path,
        client: Any = None,
        budget_s: float = DOWNLOAD_BUDGET_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ModelError(f"model file location must be s3://bucket/prefix/, not {url!r}")
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self.cache_dir = Path(cache_dir)
        self._s3 = client or boto3.client("s3", config=CLIENT_CONFIG)
        self._budget_s, self._clock = budget_s, clock

    def fetch(self, name: str, sha256: str) -> bytes:
        cached = self.cache_dir / name
        if cached.is_file():
            data = cached.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha256:
                return data
            cached.unlink()  # damaged or from another model: fetch again
        data = self._download(name)
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            where = f"s3://{self.bucket}/{self._key(name)}"
            raise ChecksumMismatch(f"{where}: sha256 {actual[:12]}… but the manifest says {sha256[:12]}…")
        self._cache(cached, data)
        return data

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _download(self, name: str) -> bytes:
        deadline = self._clock() + budget(self._budget_s)  # or the request's, if nearer
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            parts = []
            for part in body.iter_chunks(CHUNK):
                parts.append(part)
                if self._clock() > deadline:
                    body.close()
                    if request_expired():
                        raise out_of_time("model file download")
                    raise DependencyUnavailable(
                        f"model file download took over {self._budget_s:.0f} s: try again shortly"
                    )
            return b"".join(parts)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NoSuchBucket"):
                raise ModelError(f"model file s3://{self.bucket}/{self._key(name)} does not exist") from None
            raise DependencyUnavailable(f"model file download failed: {code}") from None
        except BotoCoreError as exc:
            raise DependencyUnavailable(f"model file download failed: {type(exc).__name__}") from None

    @staticmethod
    def _cache(path: Path, data: bytes) -> None:
        """Atomically, so a concurrent or interrupted writer never leaves half a file under the name."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
