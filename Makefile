# Moonflower developer entry points. Both `make demo` and `make test` create the
# virtualenv on first use; they work as root and as a normal user.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv lock demo sandbox screenshot test unit lint bench faults image-smoke clean

# The runtime dependencies come pinned, with hashes, from requirements.lock (as in the
# image); the development tools on top of them from pyproject.toml.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Refresh requirements.lock after changing the dependencies in pyproject.toml (or to take
# newer releases): pip-tools in a virtualenv of its own, the lock for this Python.
lock:
	$(PYTHON) -m venv .lock-tools
	.lock-tools/bin/python -m pip install --quiet pip-tools
	.lock-tools/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml
	rm -rf .lock-tools

demo: venv
	$(BIN)/python scripts/demo.py

sandbox: venv
	$(BIN)/python scripts/sandbox.py

screenshot: venv
	$(BIN)/python scripts/page_screenshot.py

image-smoke: venv
	scripts/image-smoke.sh

faults: venv
	$(BIN)/python -m pytest -m faults

bench: venv
	$(BIN)/python -m compileall -q moonflower
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_pitr.py
	$(BIN)/python scripts/bench_replicas.py

lint: venv
	$(BIN)/ruff check moonflower tests scripts
	$(BIN)/ruff format --check --quiet moonflower tests scripts
	$(BIN)/mypy
	$(BIN)/vulture
	$(BIN)/lint-imports

unit: venv
	$(BIN)/python -m pytest tests/unit

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info .image-root
