# Developer and CI entry points. CI (.ci/run) calls these same targets.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -m "not slow"

.PHONY: venv control-plane demo demo-down test lint typecheck crds clean

# Reinstalls only when a pyproject.toml changed since the last install. Two distributions:
# the operator (the image installs only this one) and operator/ (stand-in + dev tooling).
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml operator/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test]' -e ./operator
	@touch $@

# etcd, kube-apiserver and helm, built from the Go module proxy into ~/.cache (once).
control-plane:
	hack/build-control-plane.sh all

# The quick start: local control plane + Sui stand-in + operator, samples applied, Ready.
demo: venv control-plane
	$(BIN)/atoma-dev demo up

demo-down:
	@if [ -x $(BIN)/atoma-dev ]; then $(BIN)/atoma-dev demo down; fi

# The whole suite; integration tests start a real control plane (built above).
test: venv control-plane
	$(BIN)/pytest $(PYTEST_ARGS)

# Long fault tests (kill -9 across many submissions, a 60 s chain outage, ...); the
# default `make test` leaves them out (PYTEST_ARGS above).
.PHONY: test-slow bench
SLOW_PYTEST_ARGS ?=
test-slow: venv control-plane
	$(BIN)/pytest -m slow $(SLOW_PYTEST_ARGS)

# Figures against the bare-pysui and daemon baselines; BENCH_ARGS=--quick for a smoke run.
BENCH_ARGS ?=
bench: venv control-plane
	$(BIN)/python -m bench $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check
	$(BIN)/ruff format --check

typecheck: venv
	$(BIN)/mypy

crds: venv
	$(BIN)/atoma-operator crds --out crds/ --out charts/atoma-operator/files/crds/

clean:
	@if [ -x $(BIN)/atoma-dev ]; then $(BIN)/atoma-dev control-plane down; fi
	rm -rf .atoma-dev .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
