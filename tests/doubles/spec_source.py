"""Where the OpenSearch API specification comes from: `../shared/opensearch-api-spec/spec` beside the
repository where the workplace provides it, else a pinned copy fetched into `.cache/opensearch-api-spec`
by `make opensearch-spec` (`python -m tests.doubles.spec_source fetch`).

The copy is the `spec/` folder of opensearch-project/opensearch-api-specification at COMMIT, checked by
TREE_SHA256: a SHA-256 over every file's relative path and bytes, in path order (GitHub's archives are not
byte-stable, the files in them are). The digest equals that of the commit's `spec/` tree in the upstream
git repository and of ../shared's copy.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "opensearch-api-spec" / "spec"
CACHED = ROOT / ".cache" / "opensearch-api-spec" / "spec"
REPOSITORY = "opensearch-project/opensearch-api-specification"
COMMIT = "fbe9edebac41d098c67e2d379667184368c4ab6c"
TREE_SHA256 = "615ce628096783ae6ff38790cf2d5498c40759e3618acaf5876028acb9e9ed0a"


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def spec_folder() -> Path:
    """The specification's `spec/` folder; FileNotFoundError naming the command that provides it."""
    for folder in (SHARED, CACHED):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(
        f"no OpenSearch API specification in {SHARED} or {CACHED}: run `make opensearch-spec`"
    )


def fetch() -> None:
    if SHARED.is_dir() or CACHED.is_dir():
        return
    url = f"https://codeload.github.com/{REPOSITORY}/tar.gz/{COMMIT}"
    with urllib.request.urlopen(url, timeout=120) as response:  # a fixed https URL
        archive = response.read()
    staging = CACHED.parent / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.split("/")[1:2] == ["spec"] and m.isfile()]
        for member in members:
            member.name = "/".join(member.name.split("/")[2:])
        tar.extractall(staging, members=members, filter="data")
    found = tree_digest(staging)
    if found != TREE_SHA256:
        shutil.rmtree(staging)
        raise SystemExit(f"the fetched specification's digest {found} is not the pinned {TREE_SHA256}")
    staging.rename(CACHED)


if __name__ == "__main__":
    if sys.argv[1:] == ["fetch"]:
        fetch()
    elif sys.argv[1:] == ["digest"]:
        print(tree_digest(spec_folder()))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
