# Moonflower developer entry points. Both `make demo` and `make test` create the
# virtualenv on first use; they work as root and as a normal user.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo sandbox screenshot test unit lint bench faults image-smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

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
