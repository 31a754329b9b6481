"""A real single-node OpenSearch for the tests and benchmarks, from Maven Central.

    python -m tests.opensearch_node fetch   # download (Maven), verify the pinned SHA-512s, install k-NN
    python -m tests.opensearch_node start   # start on 127.0.0.1, wait for green, print its URL
    python -m tests.opensearch_node stop
    python -m tests.opensearch_node running # its URL if one is running (exit status 1 if not)

What Maven Central serves (checked 2026-11): OpenSearch's minimal `integ-test-zip` distribution (the one
plugin builds use for their integration tests: the server and the transport module only) and the k-NN
plugin `opensearch-knn` 2.19.1.0 - the only 2.19 release of it there, so the server is pinned to 2.19.1
to match. k-NN extends the `lang-painless` module, which the minimal distribution lacks; Maven serves that
module as its jar and dependencies, so it is laid out as a module folder here with the descriptor and
security policy its build would have written. The plugin zip from Maven carries no native libraries:
the faiss and nmslib engines cannot load (a faiss index kills the node with UnsatisfiedLinkError), so
the tests run the Lucene engine (`ENGINE`).

OpenSearch refuses to run as root, so when we are root the node runs as `nobody`, with its config, data
and logs in a temporary folder that user owns. Everything downloaded lives in .cache/opensearch (ignored
by git). Security plugin: absent from this distribution, so the node speaks plain HTTP on loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "opensearch"
VERSION = "2.19.1"
ENGINE = "lucene"  # faiss needs native libraries the Maven artifact does not ship (see above)
HOME = CACHE / f"opensearch-{VERSION}"
STATE = CACHE / "node.json"  # the running node: pid, url, folder
PORT = int(os.environ.get("VS_OPENSEARCH_PORT", "19200"))
JAVA_HOME = os.environ.get("OPENSEARCH_JAVA_HOME") or next(
    (str(p) for p in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*"))),
    "/usr/lib/jvm/java-17-openjdk-amd64",
)

# (group:artifact:version:packaging, SHA-512): the .sha512 Maven Central publishes beside each artifact
# (antlr4-runtime 4.13.1 has only a .sha1 there, which `mvn -C` checks; its SHA-512 was computed here).
DISTRIBUTION = (
    f"org.opensearch.distribution.integ-test-zip:opensearch:{VERSION}:zip",
    "0bed69daad3c80e1302a0dba083f04f5accbb94ba8451052822ec065d24432fe"
    "096e329d6971758a8a021025b0302ee5b27eb5d89506853d8be736305f407651",
)
KNN = (
    f"org.opensearch.plugin:opensearch-knn:{VERSION}.0:zip",
    "b773727c4c41d08f3e3af4726cde420b90749c55a5cc82ca5fd42a5b58f3edb0"
    "02f2210b8653a597b5121d4034b428857df7bd82627b44946da7d2ad67111b28",
)
PAINLESS = (
    (
        f"org.opensearch.plugin:lang-painless:{VERSION}:jar",
        "ba2fe248236b51b7ffc8a8eb9999b893161f2708215fd65d8363dc2054d6c67e"
        "c25b6c1aca13f1d580789e14ecc10a714b69ed1e2e152c61ce3c22c47aee4ec2",
    ),
    (
        f"org.opensearch.plugin:opensearch-scripting-painless-spi:{VERSION}:jar",
        "964cb4b3b8ce94a42bc7e4e699d01db7b34c68966c8fc2d5014461c2b5e98a22"
        "e53b04173f8b33e2f12cd3ec9e571f033341ea72039017551de70641442624b1",
    ),
    (
        "org.antlr:antlr4-runtime:4.13.1:jar",
        "63eb51bfcee49c52848d8b7c3c46d8b4d367d85fb3c3db7175eaacba94e4d0c2"
        "27b78e5955a0e86e575e1c6206fc2a43e5fa96fb04ad7c16e24ec94015cfc18b",
    ),
    (
        "org.ow2.asm:asm:9.7:jar",
        "ada37fcc95884a4d2cbc64495f5f67556c847e7724e26ccfbb15cc42a476436f"
        "a54b5d4fd4d9ed340241d848999d415e1cff07045d9e97d451c16aeed4911045",
    ),
    (
        "org.ow2.asm:asm-util:9.7:jar",
        "7056f5905a27a8a3bc2e2b9774d1c70378b2441779bdce218f45aa2a549d1f4e"
        "2b81d562f20bf9a8d5be96d33e30a8f9e15caeebade6287dde6cc082afb36089",
    ),
    (
        "org.ow2.asm:asm-tree:9.7:jar",
        "60c548f80af02ea8da5866104921ca818a8de846504faebac5cf016becba6b27"
        "7a33bf594a7fd783443856310864b2ffc99aa11cd6f4e439c086734923ef823b",
    ),
    (
        "org.ow2.asm:asm-commons:9.7:jar",
        "64544d7515aa4582ebf40e9a5ec32cbcee3ef0e3e15448bd56e6adb583d4ff76"
        "4a34bba866816e4415298da939b029384a6ccf887c70b5fe98ac23589e626f79",
    ),
    (
        "org.ow2.asm:asm-analysis:9.7:jar",
        "69c2a9f73262b0fe5c1758973b5406dc0639b0e1d9a82863d5bc2d664395b737"
        "e45f50789c6f7ba3c8915d7ec79858e197032066d6b8386e35d6aed6cd95a8f2",
    ),
)
PAINLESS_DESCRIPTOR = f"""description=An easy, safe and fast scripting language for OpenSearch
version={VERSION}
name=lang-painless
classname=org.opensearch.painless.PainlessPlugin
java.version=11
opensearch.version={VERSION}
extended.plugins=
has.native.controller=false
"""
# modules/lang-painless/src/main/plugin-metadata/plugin-security.policy in OpenSearch's source
PAINLESS_POLICY = """grant {
  permission java.lang.RuntimePermission "createClassLoader";
  permission java.lang.RuntimePermission "getClassLoader";
};
"""


def _file_name(coordinate: str) -> str:
    _group, artifact, version, packaging = coordinate.split(":")
    return f"{artifact}-{version}.{packaging}"


def _download(coordinate: str, sha512: str) -> Path:
    """One artifact through Maven (its configured repository, strict checksums), then our pinned hash."""
    target = CACHE / "artifacts" / _file_name(coordinate)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mvn", "-q", "-B", "-C", "-Dstyle.color=never",
                "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
                f"-Dartifact={coordinate}", f"-DoutputDirectory={target.parent}",
            ],
            check=True,
        )  # fmt: skip
    digest = hashlib.sha512(target.read_bytes()).hexdigest()
    if digest != sha512:
        target.unlink()
        raise SystemExit(f"{coordinate}: SHA-512 {digest} is not the pinned {sha512}")
    return target


def installed() -> bool:
    return (HOME / "plugins" / "opensearch-knn").is_dir()


def fetch() -> None:
    if installed():
        return
    distribution = _download(*DISTRIBUTION)
    knn = _download(*KNN)
    jars = [_download(*pin) for pin in PAINLESS]
    shutil.rmtree(HOME, ignore_errors=True)
    with zipfile.ZipFile(distribution) as archive:
        archive.extractall(CACHE)
    for script in (HOME / "bin").iterdir():
        script.chmod(0o755)
    module = HOME / "modules" / "lang-painless"
    module.mkdir(parents=True)
    for jar in jars:
        shutil.copy(jar, module / jar.name)
    (module / "plugin-descriptor.properties").write_text(PAINLESS_DESCRIPTOR)
    (module / "plugin-security.policy").write_text(PAINLESS_POLICY)
    subprocess.run(
        [str(HOME / "bin" / "opensearch-plugin"), "install", "--batch", knn.as_uri()],
        env={**os.environ, "OPENSEARCH_JAVA_HOME": JAVA_HOME},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"OpenSearch {VERSION} with k-NN installed in {HOME}")


def _get(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return json.loads(response.read())


def running_url() -> str | None:
    """The URL of the node `start` left running, if it answers."""
    if not STATE.exists():
        return None
    url = json.loads(STATE.read_text())["url"]
    try:
        _get(f"{url}/_cluster/health")
    except OSError:
        return None
    return url


def start(heap: str = "512m", wait_s: float = 120.0) -> str:
    """Start the node (or reuse the one running) and return its URL once the cluster is green."""
    url = running_url()
    if url:
        return url
    if not installed():
        fetch()
    folder = Path(tempfile.mkdtemp(prefix="vs-opensearch-"))
    config = folder / "config"
    shutil.copytree(HOME / "config", config)
    # The stock jvm.options writes GC logs and heap dumps relative to the working folder.
    options = (config / "jvm.options").read_text()
    options = options.replace("logs/", f"{folder}/logs/").replace(
        "HeapDumpPath=data", f"HeapDumpPath={folder}"
    )
    options = "\n".join(line for line in options.splitlines() if not line.startswith("-Xm"))
    (config / "jvm.options").write_text(options + "\n")
    (folder / "data").mkdir()
    (folder / "logs").mkdir()
    as_user: list[str] = []
    home = HOME
    if os.geteuid() == 0:  # OpenSearch will not run as root
        as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if subprocess.run([*as_user, "test", "-x", str(HOME / "bin" / "opensearch")]).returncode:
            home = folder / "home"  # the checkout is not readable by `nobody`: run a copy
            shutil.copytree(HOME, home, symlinks=True)
        subprocess.run(["chown", "-R", "nobody:nogroup", str(folder)], check=True)
    url = f"http://127.0.0.1:{PORT}"
    env = {
        **os.environ,
        "OPENSEARCH_JAVA_HOME": JAVA_HOME,
        "OPENSEARCH_PATH_CONF": str(config),
        "OPENSEARCH_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
    }
    settings = {
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": PORT,
        "transport.port": PORT + 100,
        "path.data": folder / "data",
        "path.logs": folder / "logs",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.auto_create_index": "false",
        # Lucene merges an HNSW graph on this many threads (k-NN 2.19's KNN9120PerFieldKnnVectorsFormat
        # hands Lucene99HnswVectorsFormat a pool of `index_thread_qty`; the default, 1, merges on one).
        "knn.algo_param.index_thread_qty": os.cpu_count() or 1,
    }
    log = open(folder / "stdout.log", "wb")  # noqa: SIM115 (the node outlives this call)
    process = subprocess.Popen(
        [*as_user, str(home / "bin" / "opensearch"), *[f"-E{k}={v}" for k, v in settings.items()]],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, stopped as one
    )
    STATE.write_text(json.dumps({"pid": process.pid, "url": url, "folder": str(folder)}))
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"OpenSearch exited ({process.returncode}); see {folder}/logs/opensearch.log")
        try:
            if _get(f"{url}/_cluster/health?wait_for_status=green&timeout=1s")["status"] == "green":
                return url
        except OSError:
            time.sleep(0.5)
    stop()
    raise RuntimeError(f"OpenSearch was not green within {wait_s:.0f} s; see {folder}/logs")


def stop() -> None:
    if not STATE.exists():
        return
    state = json.loads(STATE.read_text())
    try:
        os.killpg(state["pid"], signal.SIGTERM)
        for _ in range(100):
            os.killpg(state["pid"], 0)
            time.sleep(0.1)
        os.killpg(state["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass
    shutil.rmtree(state["folder"], ignore_errors=True)
    STATE.unlink()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "fetch":
        fetch()
    elif command == "start":
        print(start())
    elif command == "stop":
        stop()
    elif command == "running":  # exit status 0 with the URL if a node started by `start` answers
        url = running_url()
        if url is None:
            return 1
        print(url)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
