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

lint: install
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools

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

# Benchmarks (bench/): filegate against @tus/server, tuspyserver and a raw fsync baseline, on
# loopback. The harness installs the peers into bench/.peers/ itself (npm and PyPI).
# `bench` writes bench/results/<date>.json, docs/benchmarks.md and docs/benchmarks.png;
# `bench-quick` (small sizes, 1 round) writes into bench/.peers/runs/quick/ instead.
.PHONY: bench bench-quick

bench: install
	$(BIN)/python -m bench.run

bench-quick: install
	$(BIN)/python -m bench.run --quick

# Inspection throughput: files/s for small files, MB/s through a big archive (docs/benchmarks.md).
.PHONY: bench-inspect
bench-inspect: install
	$(BIN)/python -m bench.inspect_bench
