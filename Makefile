# zapvisor developer entry points (see README.md, "Quick start").
#
#   make run     create .venv if missing, install zapvisor, run the daemon (embedded defaults:
#                SQLite under ./data, in-memory bus). CONFIG=path/to/file.toml to use a file.
#   make test    create .venv if missing, install zapvisor[test], make sure the PostgreSQL and
#                Redis server binaries and Chromium exist (apt-get when root), run pytest.
#                PYTEST_ARGS="tests/config -x" to narrow it down.
#   make bench   every bench/<name>.py (not _*.py) as `python -m bench.<name> --quick`
#                (each prints one JSON object on its last line).
#
# Installs happen only when pyproject.toml is newer than the stamp file of the target.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test
.ONESHELL:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?=
PYTEST_ARGS ?=

.PHONY: run test bench

# pip is the last thing venv creation installs: its presence means the venv is complete.
$(BIN)/pip:
	PYTHON="$(PYTHON)" .ci/bootstrap-venv "$(VENV)"

$(VENV)/.installed-run: pyproject.toml | $(BIN)/pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/zapvisor run $(if $(CONFIG),--config "$(CONFIG)")

test: $(VENV)/.installed-test
	pg_bindir="$$(.ci/server-binaries)"
	export ZAPVISOR_PG_BINDIR="$$pg_bindir"
	.ci/browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	pg_bindir="$$(.ci/server-binaries)"
	export ZAPVISOR_PG_BINDIR="$$pg_bindir"
	shopt -s nullglob
	benches=(bench/[!_]*.py)    # bench/_helpers.py are modules, not benchmarks
	if (( $${#benches[@]} == 0 )); then echo "no benchmarks in bench/ yet"; exit 0; fi
	for bench in "$${benches[@]}"; do
	    name="$$(basename "$$bench" .py)"
	    echo "== python -m bench.$$name --quick"
	    # As modules: run by path, bench/actors.py would shadow the actors package.
	    $(BIN)/python -m "bench.$$name" --quick
	done
