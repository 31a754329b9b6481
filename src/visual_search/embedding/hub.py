"""A checkpoint (CLIP, SigLIP, OpenCLIP) from the Hugging Face hub, downloaded with `huggingface_hub`
and verified file by file.

`huggingface_hub` checks a download's size, not its content, so every file is hashed here against the
hub's own listing (sha256 for LFS files, the git blob id for the others) before anything is built from
it; a file that does not match is removed from the hub cache so the next attempt downloads it again.
HF_ENDPOINT, HF_HUB_OFFLINE, HF_HUB_CACHE / HF_HOME and HF_TOKEN apply as for any `huggingface_hub` user.
No torch here: the runtime asks whether the hub is reachable before the build extra is installed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visual_search.embedding.manifest import sha256_file

CONFIG_PATTERNS = ("*.json", "*.txt")  # config, tokenizer and preprocessor files
# The first the repo has is downloaded: a Hugging Face checkpoint's weights, else open_clip's (a repo
# holding both, as LAION's do, is built from the Hugging Face ones).
WEIGHT_FILES = (
    "model.safetensors",
    "pytorch_model.bin",
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.bin",
)


class HubError(Exception):
    """The checkpoint cannot be had; the message is the one-line reason shown to the user."""


class HubUnreachable(HubError):
    """The hub cannot be asked right now (offline mode, no route, timeout, server error)."""


@dataclass(frozen=True)
class HubRef:
    """`owner/name` or `owner/name@revision` (a branch, tag or commit)."""

    repo_id: str
    revision: str | None = None

    @classmethod
    def parse(cls, ref: str) -> HubRef:
        repo_id, _, revision = ref.strip().partition("@")
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise HubError(f"{ref!r} is not a hub model id (owner/name, optionally @revision)")
        return cls(repo_id, revision or None)

    def __str__(self) -> str:
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id


def probe(ref: HubRef, timeout: float) -> Any:
    """The repo's file listing at `ref.revision` (one API call), as `huggingface_hub.ModelInfo`; with
    HF_HUB_OFFLINE, None if the hub cache holds the checkpoint.

    HubUnreachable when the hub cannot be asked; HubError when it answers that the repo or revision
    does not exist (a typo should not read as "offline").
    """
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    if constants.HF_HUB_OFFLINE:
        _cached_snapshot(ref)
        return None
    try:
        return HfApi().model_info(ref.repo_id, revision=ref.revision, files_metadata=True, timeout=timeout)
    except (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError) as exc:
        raise HubError(f"{ref} is not available on {constants.ENDPOINT}: {type(exc).__name__}") from None
    except Exception as exc:  # the HTTP client's transport errors, timeouts, 5xx: all mean "not now"
        raise HubUnreachable(f"{constants.ENDPOINT}: {type(exc).__name__}: {_first_line(exc)}") from None


def fetch_checkpoint(ref: HubRef, timeout: float) -> tuple[Path, str]:
    """Download (or find in the hub cache) the checkpoint; returns (local folder, commit)."""
    from huggingface_hub import constants, snapshot_download

    if constants.HF_HUB_OFFLINE:  # the hub cache may still hold it from an earlier download
        folder = _cached_snapshot(ref)
        return folder, folder.name  # a snapshot folder is named after its commit
    info = probe(ref, timeout)
    wanted = _wanted_files(ref, info)
    try:
        # By the name asked for, not the commit: the hub cache then records which commit `main` (or the
        # tag) was, so HF_HUB_OFFLINE finds it later. The listing checked against is the commit's.
        folder = Path(snapshot_download(ref.repo_id, revision=ref.revision, allow_patterns=sorted(wanted)))
    except Exception as exc:
        raise HubError(f"downloading {ref} failed: {type(exc).__name__}: {_first_line(exc)}") from None
    if folder.name != info.sha:
        raise HubError(f"{ref} moved to another commit during the download: try again")
    for name, sibling in wanted.items():
        _verify(folder / name, sibling)
    return folder, str(info.sha)


def _cached_snapshot(ref: HubRef) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(ref.repo_id, revision=ref.revision, local_files_only=True))
    except Exception:
        raise HubUnreachable(f"HF_HUB_OFFLINE is set and {ref} is not in the hub cache") from None


def _wanted_files(ref: HubRef, info: Any) -> dict[str, Any]:
    siblings = {s.rfilename: s for s in info.siblings or ()}
    weights = next((name for name in WEIGHT_FILES if name in siblings), None)
    if weights is None:
        raise HubError(f"{ref} has no {' or '.join(WEIGHT_FILES)}")
    configs = {
        n: s for n, s in siblings.items() if "/" not in n and any(Path(n).match(p) for p in CONFIG_PATTERNS)
    }
    return {**configs, weights: siblings[weights]}


def _verify(path: Path, sibling: Any) -> None:
    lfs = getattr(sibling, "lfs", None)
    if lfs is not None:
        expected, actual, kind = lfs.sha256, sha256_file(path), "sha256"
    else:
        expected, actual, kind = sibling.blob_id, _git_blob_id(path), "git blob id"
    if expected and actual != expected:
        _evict(path)
        raise HubError(
            f"{path.name} downloaded with {kind} {actual[:12]}… but the hub lists {expected[:12]}…: "
            "removed from the hub cache, the next attempt downloads it again"
        )


def _evict(path: Path) -> None:
    """Remove a snapshot file and the cached blob behind it (the snapshot entry is a symlink)."""
    if path.is_symlink():
        path.resolve().unlink(missing_ok=True)
    path.unlink(missing_ok=True)


def _git_blob_id(path: Path) -> str:
    data = path.read_bytes()  # only small, non-LFS files (configs, vocabularies) get here
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
