# One entry for everything: each target bootstraps .venv by itself on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test check demo bench fmt clean screenshots

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Three xdist workers on two cores: the process-level tests mostly wait on sockets; an idle
# worker steals queued tests from a busy one (tests/conftest.py puts the heavy ones first).
PYTEST_WORKERS ?= 3

test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal --cov --cov-report=term $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)
	$(BIN)/tongban demo run

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage

# Refresh the screenshots the docs show (the browser test takes them).
screenshots: $(STAMP)
	TONGBAN_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest --no-cov -q tests/integration/test_browser_window.py
