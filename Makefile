# The two commands a fresh clone needs: `make run` and `make test`.
# Everything installs into .venv from uv.lock, so every machine runs what CI tested.

PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.8
UV := $(VENV)/bin/uv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint typecheck unit install install-run lock clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Everything: the service, the PostgreSQL driver and the development tools (`make test`).
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-extras --quiet
	@touch $@ $(VENV)/.synced-run

# What running needs, and no development tools (`make run`); --inexact keeps them if a
# `make test` installed them already.
$(VENV)/.synced-run: uv.lock pyproject.toml | $(UV)
	@$(UV) sync --frozen --all-extras --no-dev --inexact --quiet
	@touch $@

install: $(VENV)/.synced

install-run: $(VENV)/.synced-run

run: install-run
	@$(BIN)/filegate migrate --quiet
	@$(BIN)/filegate serve --embedded-worker

# The container files too, offline: hadolint's rules, and the Compose specification's schema
# (vendored in check-jsonschema); tests/unit/test_container_files.py checks what they mean.
lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/hadolint deploy/Dockerfile
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec deploy/compose.staging.yaml

typecheck: install
	$(BIN)/mypy

# Two workers, whole files per worker (a file's fixtures and live servers stay together): the
# suite took 15.6 min serially and 9.4 min this way on two cores (docs/decisions.md).
unit: install
	$(BIN)/pytest -n 2 --dist loadfile --durations=15

test: lint typecheck unit

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The staging stack of deploy/compose.staging.yaml as local processes (no Docker engine
# needed): nginx, two APIs, two workers, PostgreSQL, Redis, clamd, SeaweedFS (tools/staging.py).
# On a Docker host: docker compose -f deploy/compose.staging.yaml --env-file deploy/staging.env up
.PHONY: staging staging-check staging-verify staging-down release

staging: install
	$(BIN)/python -m tools.staging up

staging-check: install
	$(BIN)/python -m tools.staging check

staging-verify: install
	$(BIN)/python -m tools.staging verify

staging-down: install
	$(BIN)/python -m tools.staging down

# The release checklist (docs/release.md): make release VERSION=X.Y.Z [DRY_RUN=1]
release: install
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=X.Y.Z [DRY_RUN=1]"; exit 2; }
	$(BIN)/python -m tools.release $(VERSION) $(if $(DRY_RUN),--dry-run)

# Benchmarks (bench/): filegate against @tus/server, tuspyserver and a raw fsync baseline, on
# loopback; with --s3 also filegate on S3 against @tus/server + @tus/s3-store, on one SeaweedFS
# (weed from uv.lock). The harness installs the peers into bench/.peers/ itself (npm and PyPI).
# `bench` writes bench/results/<date>.json, docs/benchmarks.md and docs/benchmarks.png;
# `bench-quick` (small sizes, 1 round) writes into bench/.peers/runs/quick/ instead.
.PHONY: bench bench-quick

bench: install
	$(BIN)/python -m bench.run --s3

bench-quick: install
	$(BIN)/python -m bench.run --quick --s3

# Inspection throughput: files/s for small files, MB/s through a big archive (docs/benchmarks.md).
.PHONY: bench-inspect
bench-inspect: install
	$(BIN)/python -m bench.inspect_bench

# The upload page's script and stylesheet (ui/upload/: tus-js-client and vanilla JS, bundled by
# esbuild) into src/filegate/web/static/upload/, from the lock file; the same sources give the
# same bytes. The output is committed, so `make run` and `make test` need no node;
# tests/unit/test_upload_page.py fails if ui/upload/ changed without a rebuild.
.PHONY: ui
ui:
	cd ui/upload && npm ci --no-audit --no-fund && node build.mjs
