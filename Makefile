# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint system clean

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

# Real components for the tests where this machine can have them (root + apt-get);
# each script says what it skipped and why, and the tests that need it then skip.
system:
	tests/system/slurm.sh up || echo "system: no Slurm here; the slurm tests will be skipped"
	tests/system/postgres.sh up || echo "system: no PostgreSQL here; the postgres tests will be skipped"
	sh tests/system/chromium.sh

test: install lint system
	$(BIN)/pytest

clean:
	rm -rf runs reports/*.html .pytest_cache .mypy_cache .ruff_cache
