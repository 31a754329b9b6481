"""The deps layer drops packages the functions never import (layers/build.py NOT_USED_IN_LAMBDA) to fit
in 250 MB. Prove it in a fresh interpreter where importing any of them fails: both handlers, every adapter
a function builds, and embedding a text and an image with the int8 towers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from layers.build import NOT_USED_IN_LAMBDA

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import importlib.abc, io, sys
top_level = {{name for name in {trimmed} if "/" not in name}}
nested = {{name.replace("/", ".") for name in {trimmed} if "/" in name}}

class Trimmed(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in top_level or any(name.startswith(n) for n in nested):
            raise ImportError(f"{{name}} is not in the Lambda layer")

sys.meta_path.insert(0, Trimmed())
sys.path[:0] = ["functions/search", "src"]
import handler as search_handler
sys.path[0] = "functions/ingest"
del sys.modules["handler"]
import handler as ingest_handler
sys.path.insert(0, "functions/authorizer")
del sys.modules["handler"]
import handler as authorizer_handler
import visual_search.index.opensearch, visual_search.storage.s3, visual_search.ledger.dynamodb
import visual_search.embedding.remote_files, visual_search.ingest.renditions
from PIL import Image
from visual_search.embedding.encoder import Embedder
embedder = Embedder.from_dir("src/visual_search/models/tiny")
picture = io.BytesIO()
Image.new("RGB", (64, 48), "red").save(picture, format="JPEG")
import os
os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1")
from opensearchpy.exceptions import ConnectionError as Unreachable
from visual_search.index.opensearch import connect
try:
    connect("https://127.0.0.1:9", auth="sigv4", timeout=1).info()  # signs, sends, fails to connect
except Unreachable:
    pass
import aws_lambda_powertools.utilities.parameters, aws_lambda_powertools.utilities.batch
print(embedder.embed_texts(["a red shirt"]).shape, embedder.embed_images([picture.getvalue()]).shape)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in top_level)
print("leaked", leaked)
"""


def test_functions_import_and_embed_without_the_packages_the_layer_trims():
    script = textwrap.dedent(SCRIPT.format(trimmed=repr(NOT_USED_IN_LAMBDA)))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shapes, leaked = result.stdout.strip().splitlines()[-2:]
    assert shapes == "(1, 32) (1, 32)"
    assert leaked == "leaked []"
