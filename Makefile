# The command index. `make help` lists every target.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# Every environment installs from a lock with hashes (locks/compile.py; `make lock` re-pins them). torch
# and torchvision are pinned in locks/torch.in; TORCH_INDEX (demo only) takes them from another index.
TORCH_INDEX ?=
STAMP   := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
CDK     := node_modules/.bin/cdk
CHECKOV := .cache/checkov/bin/checkov
ARCH    ?= arm64
MODEL   ?= $(TINY)
TINY    := src/visual_search/models/tiny
LINTED  := src tests bench functions infra layers locks app.py

.DEFAULT_GOAL := help
RUNTIME := $(VENV)/.runtime
BUILD_EXTRA := $(VENV)/.build-extra
.PHONY: help demo build-extra install checkov clients test test-fast lint format model-tiny model-vit model-siglip2 model-openclip bench-embed bench-families bench-int8 bench-quality reliability smoke-opensearch lock layers synth typecheck bench-cold-start bench-upload-staging clean opensearch-fetch opensearch-start opensearch-stop opensearch-spec smoke-opensearch-local bench-opensearch bench-opensearch-bulk rie bench-cold-start-bytecode docs

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml locks/dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r locks/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(RUNTIME): pyproject.toml locks/runtime.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r locks/runtime.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Real CLIP for the demo: where the hub is reachable and the default model is not built yet, the build
# extra (CPU torch, transformers, onnx) goes into .venv first; the runtime itself never needs torch.
demo: $(RUNTIME) ## main job: local server on the embedded index, sample images indexed, real CLIP when it can be had
	@if ! $(BIN)/visual-search fetch-model --check; then $(MAKE) --no-print-directory build-extra; fi
	$(BIN)/visual-search serve --with-samples

build-extra: $(BUILD_EXTRA) ## the model-build tool into .venv (CPU torch, transformers, onnx): what make demo adds to build real CLIP

# On Linux, PyPI's torch wheel brings CUDA libraries (4.7 GB installed here); where PyTorch's own index is
# reachable, `make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu` installs the CPU build instead.
$(BUILD_EXTRA): $(RUNTIME) locks/build.txt
	$(if $(TORCH_INDEX),$(BIN)/pip install --quiet -r locks/torch.in --index-url $(TORCH_INDEX) && \
	  $(BIN)/pip install --quiet -e ".[build]",$(BIN)/pip install --quiet --require-hashes -r locks/build.txt)
	touch $@

install: $(STAMP) $(CDK) ## create .venv (runtime, build, dev and infra extras) and the pinned CDK CLI

# checkov (pyproject's `checkov` dependency group, pinned) in a virtual environment of its own: it pins
# boto3, packaging, networkx and cachetools to releases older than the project's. pip >= 25.1 reads groups.
$(CHECKOV): pyproject.toml locks/checkov.txt
	$(PY) -m venv .cache/checkov
	.cache/checkov/bin/pip install --quiet --upgrade pip
	.cache/checkov/bin/pip install --quiet --require-hashes -r locks/checkov.txt
	touch $@

checkov: $(CHECKOV) ## checkov, pinned, into .cache/checkov (the infra tests and make synth run it)

# The search page's tests drive Debian's Chromium (Playwright's own browser download does not work here).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else echo "the page tests need Chromium: sudo apt-get install chromium" >&2; exit 1; fi

# The CDK CLI at the version package.json pins.
$(CDK): package.json package-lock.json
	npm ci --no-audit --no-fund --silent

# A real single-node OpenSearch 2.19.1 + k-NN from Maven Central (pinned SHA-512s) in .cache/opensearch;
# the test session starts it once and stops it (tests/opensearch_node.py). Needs Java 17 and Maven.
OPENSEARCH := .cache/opensearch/opensearch-2.19.1/plugins/opensearch-knn
$(OPENSEARCH): tests/opensearch_node.py
	@command -v mvn >/dev/null && ls /usr/lib/jvm/java-17-openjdk-*/bin/java >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openjdk-17-jdk-headless maven >/dev/null; \
	else echo "the OpenSearch node needs Java 17 and Maven: sudo apt-get install openjdk-17-jdk-headless maven" >&2; exit 1; fi
	$(PY) -m tests.opensearch_node fetch
	touch $@

opensearch-fetch: $(OPENSEARCH) ## fetch + verify OpenSearch 2.19.1 and k-NN from Maven Central into .cache/opensearch

opensearch-start: $(OPENSEARCH) ## start the local node on 127.0.0.1:19200 (tests reuse it while it runs)
	$(PY) -m tests.opensearch_node start

opensearch-stop: ## stop the local node
	$(PY) -m tests.opensearch_node stop

# The API specification the OpenSearch double validates requests against: ../shared/opensearch-api-spec
# where the workplace provides it, else a pinned copy (commit + digest in tests/doubles/spec_source.py).
opensearch-spec: ## fetch the OpenSearch API specification into .cache when ../shared lacks it
	$(PY) -m tests.doubles.spec_source fetch

# Cloudinary's Node, Java and Go SDKs for the real-client tests (tests/clients/), at the versions their
# package-lock.json, pom.xml and go.sum pin: npm ci, Maven's dependency resolution, go mod download, then
# one javac and one go build, all into .cache/clients/ (rebuilt only when those sources change).
clients: $(STAMP) ## fetch and build the Node, Java and Go client programs the functional tests run
	$(BIN)/python -m tests.clients.harness

# The Lambda Runtime Interface Emulator, built from source with `go install` at the version pinned in
# tests/emulator/rie.py (checked against Go's checksum database) into .cache/rie; the emulator tier runs
# each function behind it.
rie: ## build the Lambda Runtime Interface Emulator (pinned) into .cache/rie
	$(PY) -m tests.emulator.rie

test: $(STAMP) $(CHROMIUM) $(CDK) $(CHECKOV) clients $(OPENSEARCH) opensearch-spec rie ## lint + mypy + import-linter, then every test tier (unit, parity, functional, clients, conformance on a real OpenSearch node, infra synth, cdk-nag, cfn-lint, checkov, each function under the Lambda emulator)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(MAKE) --no-print-directory typecheck
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

docs: $(STAMP) ## build the documentation site strictly into .cache/site (a broken link or anchor fails; make test checks the same)
	$(BIN)/mkdocs build --strict

test-fast: $(STAMP) ## unit tests only (seconds)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP) ## ruff lint + format check + mypy + import-linter (packages import only downwards)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(MAKE) --no-print-directory typecheck
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP) ## mypy over src/, infra/, app.py and each Lambda handler (config in pyproject.toml)
	$(BIN)/mypy
	for handler in functions/*/handler.py; do $(BIN)/mypy $$handler || exit 1; done

format: $(STAMP) ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

model-tiny: $(STAMP) ## rebuild the tiny test model shipped in the package ($(TINY))
	$(BIN)/visual-search build-model --preset tiny --seed 0 --precisions int8 --out $(TINY) --force

model-vit: $(STAMP) ## build the ViT-B/32 architecture with random weights into .cache/models/vit-b-32
	$(BIN)/visual-search build-model --preset vit-b-32 --seed 0 --out .cache/models/vit-b-32 --force

model-siglip2: $(STAMP) ## build the SigLIP 2 ViT-B/16 architecture with random weights into .cache/models/vit-b-16-siglip2
	$(BIN)/visual-search build-model --preset vit-b-16-siglip2 --seed 0 --out .cache/models/vit-b-16-siglip2 --force

model-openclip: $(STAMP) ## build OpenCLIP's ViT-B-32 (LAION) and MobileCLIP S1, S2, B with random weights into .cache/models
	for preset in vit-b-32-laion mobileclip-s1 mobileclip-s2 mobileclip-b; do \
	$(BIN)/visual-search build-model --preset $$preset --seed 0 --out .cache/models/$$preset --force || exit 1; done

reliability: $(STAMP) $(CHROMIUM) ## every reliability/security check + the Locust load test, as a table of figures
	$(BIN)/python bench/reliability.py

smoke-opensearch: $(RUNTIME) ## against a real cluster: make smoke-opensearch OPENSEARCH_URL=https://...
	OPENSEARCH_URL=$(OPENSEARCH_URL) $(BIN)/python -m tests.smoke.opensearch

smoke-opensearch-local: $(RUNTIME) $(OPENSEARCH) ## the same smoke test against the local node (started and stopped if not running)
	@was_running=$$($(PY) -m tests.opensearch_node running >/dev/null && echo yes); \
	url=$$($(PY) -m tests.opensearch_node start) || exit 1; \
	OPENSEARCH_URL=$$url OPENSEARCH_AUTH=none OPENSEARCH_ENGINE=lucene OPENSEARCH_REPLICAS=0 \
	$(BIN)/python -m tests.smoke.opensearch; status=$$?; \
	[ -n "$$was_running" ] || $(PY) -m tests.opensearch_node stop; exit $$status

bench-opensearch: $(STAMP) $(OPENSEARCH) ## embedded vs the local OpenSearch node: 100,000 x 512 (writes bench/results)
	nice $(BIN)/python bench/opensearch.py

bench-opensearch-bulk: $(STAMP) $(OPENSEARCH) ## upsert vs bulk load into the local node: 100,000 x 512 (writes bench/results)
	nice $(BIN)/python bench/opensearch_bulk.py

bench-int8: $(STAMP) ## int8 image towers side by side with OpenVINO + NNCF as a baseline (needs make model-vit)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/int8.py

bench-quality: $(STAMP) ## int8 vs fp32 on 1,000 real photos: cosine, top-10 overlap [MODEL_DIR=.cache/models/vit-b-32]
	$(BIN)/python bench/quality.py $(or $(MODEL_DIR),.cache/models/vit-b-32)

bench-embed: $(STAMP) ## embedding benchmark: torch vs ONNX fp32 vs ONNX int8 (writes bench/results/embed.json)
	$(BIN)/python bench/embed.py

bench-families: $(STAMP) ## every family's architecture side by side, int8, one thread, and where each tower fits on Lambda (needs model-vit, model-siglip2, model-openclip)
	nice $(BIN)/python bench/embed.py --families

lock: $(STAMP) ## re-pin every lock (locks/*.txt, layers/requirements.lock and requirements-openclip.lock: versions + hashes) after changing pyproject's dependencies
	$(BIN)/python locks/compile.py
	$(BIN)/python layers/build.py --lock

# The deps layer's byte code is compiled by a CPython 3.12 (Lambda's): python3.12 on PATH or pyenv's.
layers: $(STAMP) ## build the Lambda layers into layers/build: make layers [ARCH=arm64|x86_64] [MODEL=$(TINY)]
	$(BIN)/python layers/build.py --arch $(ARCH) --model $(MODEL)

synth: $(STAMP) $(CDK) $(CHECKOV) ## cdk synth (cdk-nag, then cfn-lint and checkov) into cdk.out; deploy: node_modules/.bin/cdk deploy
	$(CDK) synth --no-notices --quiet
	$(BIN)/python -m infra.template_lint cdk.out/VisualSearch.template.json
	$(BIN)/python -m infra.template_scan cdk.out/VisualSearch.template.json

bench-cold-start: $(STAMP) ## search function cold start, image tower from S3 vs local (needs make model-vit)
	$(BIN)/python bench/cold_start.py

bench-cold-start-bytecode: $(STAMP) $(OPENSEARCH) rie ## search function cold start under the Lambda emulator, with vs without the layers' byte code
	nice $(BIN)/python bench/cold_start.py --bytecode --runs 8

bench-upload-staging: $(STAMP) ## upload_large's per-part latency with 2,000 unfinished uploads staged (writes bench/results)
	$(BIN)/python bench/upload_staging.py

clean: ## remove caches and build outputs (keeps .venv)
	rm -rf .pytest_cache .ruff_cache .mypy_cache .hypothesis bench/results cdk.out
