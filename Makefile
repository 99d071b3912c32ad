# Serverless Lakehouse: every target sets up what it needs, idempotently (stamps in build/).
# `make demo` runs the pipeline offline; `make test` runs every test tier.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY ?= python3
VENV := .venv
SUPERSET_VENV := .venv-superset
BUILD := build
# Lambda dependencies for CDK's local bundling, so synth never reaches a package index
WHEELHOUSE := $(BUILD)/wheelhouse/lambda-py312/.complete
APT_PACKAGES := binutils iso-codes openjdk-17-jre-headless libxerial-sqlite-jdbc-java libhttpclient5-java libhttpcore5-java chromium chromium-driver
# pip prints a warning per package for this machine's local indexes: keep the output readable
# (pipefail keeps pip's exit status through the filter)
PIP_QUIET := 2>&1 | { grep -v "^WARNING: Location" || true; }
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYSPARK_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# The locks (hashed, transitive dependencies included) are what set-up installs; `make lock` writes them
# from the hand-edited requirements*.in. uv keeps each venv exactly its lock (extra packages removed).
LOCK := requirements-lock.txt
SUPERSET_LOCK := dashboards/requirements-superset-lock.txt
UV := $(VENV)/bin/uv
LOCK_ARGS := --generate-hashes --python-version 3.11 --custom-compile-command "make lock" --quiet

.PHONY: help setup demo screenshots test test-fast bench synth lock docs clean
help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(BUILD)/apt.stamp $(VENV)/stamp $(BUILD)/jars/stamp $(WHEELHOUSE) node_modules/stamp $(SUPERSET_VENV)/stamp  ## install everything (idempotent)

$(BUILD)/apt.stamp: Makefile
	@mkdir -p $(BUILD)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(VENV)/stamp: $(LOCK) pyproject.toml
	@test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	@mkdir -p $(BUILD)
	@# uv itself first, from its hashed lines in the lock
	@awk '/^uv==/{p=1} p{print} p&&!/\\$$/{exit}' $(LOCK) > $(BUILD)/uv-lock.txt
	@set -o pipefail; $(VENV)/bin/pip install -q --require-hashes -r $(BUILD)/uv-lock.txt $(PIP_QUIET)
	@echo "uv: syncing $(VENV) with $(LOCK) (first time about 2 min)"
	@$(UV) pip sync -q --python $(VENV)/bin/python --require-hashes $(LOCK)
	@$(UV) pip install -q --python $(VENV)/bin/python --no-deps -e .
	@$(VENV)/bin/python -c "import pyspark, pyiceberg, duckdb, moto, aws_cdk, lakehouse"
	@touch $@

$(BUILD)/jars/stamp: $(VENV)/stamp $(BUILD)/apt.stamp lakehouse/lake/spark_jars.py
	@$(VENV)/bin/python -m lakehouse.lake.spark_jars $(BUILD)/jars
	@touch $@

$(WHEELHOUSE): $(VENV)/stamp cdk_app/wheelhouse.py
	@set -o pipefail; $(VENV)/bin/python -m cdk_app.wheelhouse $(PIP_QUIET)

node_modules/stamp: package.json package-lock.json
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(SUPERSET_VENV)/stamp: $(SUPERSET_LOCK) $(VENV)/stamp
	@test -x $(SUPERSET_VENV)/bin/python || $(PY) -m venv $(SUPERSET_VENV)
	@echo "uv: syncing $(SUPERSET_VENV) with $(SUPERSET_LOCK) (first time about 2 min)"
	@$(UV) pip sync -q --python $(SUPERSET_VENV)/bin/python --require-hashes $(SUPERSET_LOCK)
	@$(SUPERSET_VENV)/bin/python -c "import superset, duckdb_engine"
	@touch $@

demo: setup  ## run the whole pipeline offline, then serve the dashboards (ARGS=--no-serve to stop after the numbers)
	$(VENV)/bin/lakehouse demo $(ARGS)

screenshots: setup  ## run the demo, then render every dashboard in headless Chromium into docs/images/
	$(VENV)/bin/lakehouse demo --no-serve
	$(VENV)/bin/lakehouse screenshots

test: setup  ## run every test tier
	$(VENV)/bin/python -m pytest tests $(ARGS)

bench: setup  ## run the benchmarks and write docs/performance.md
	$(VENV)/bin/python -m benchmarks $(ARGS)

synth: $(VENV)/stamp $(WHEELHOUSE) node_modules/stamp  ## synthesize every environment offline
	npx cdk synth -c env=dev -c offline=true 'dev/*' -q
	npx cdk synth -c env=local 'local/*' -q

lock: $(VENV)/stamp  ## re-resolve requirements*.in into the hashed locks (ARGS="--upgrade-package botocore --upgrade-package moto"), then run make test
	$(UV) pip compile requirements.in -o $(LOCK) $(LOCK_ARGS) $(ARGS)
	$(UV) pip compile dashboards/requirements-superset.in -o $(SUPERSET_LOCK) $(LOCK_ARGS) $(ARGS)

docs: setup  ## serve the docs site (mkdocs.yml, docs/) on http://127.0.0.1:8000; the tests build it with --strict
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/python -m mkdocs serve -a 127.0.0.1:8000 $(ARGS)

clean:  ## remove the local lake and build outputs (not the venvs)
	rm -rf .lakehouse $(BUILD) cdk.out
