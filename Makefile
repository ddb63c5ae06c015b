# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

# A real search on an embedded local Dask cluster; leaves reports/weather-tc.html.
demo: install
	$(BIN)/supervisor search search_spaces/weather.yaml --plain

lint: install
	$(BIN)/ruff check supervisor benchmarks_sci tests
	$(BIN)/ruff format --check supervisor benchmarks_sci tests
	$(BIN)/mypy

test: install lint
	$(BIN)/pytest

clean:
	rm -rf runs reports/*.html .pytest_cache .mypy_cache .ruff_cache
