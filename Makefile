# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
# Test processes (pytest-xdist): three on the two cores the suite is timed on, because the tests
# that run against real time (tests/conftest.py's REAL_TIME_MODULES, the browser) mostly wait and
# a third process keeps both cores busy meanwhile; 0 runs serially. PYTEST_ARGS adds to them (a
# later -n wins). The type checker runs as one of the tests (tests/test_types.py).
TEST_PROCESSES ?= 3

.PHONY: run test lint i18n clean

$(BIN)/duan8: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,postgres]"
	touch $@

run: $(BIN)/duan8  ## install, then serve web chat and worker on SQLite at http://127.0.0.1:$(PORT)/chat
	PORT=$(PORT) $(BIN)/duan8 run --host $(HOST)

# The suite starts some hundred Python processes of its own (commands, workers, web servers):
# with Python's bytecode cache on, which some environments turn off, each after the first reads
# the service's compiled modules instead of compiling them again, and pytest keeps its rewritten
# test modules between runs.
test: export PYTHONDONTWRITEBYTECODE =
test: $(BIN)/duan8  ## install, then ruff and the whole suite, mypy included (PostgreSQL too when DUAN8_TEST_DATABASE_URL is set)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

i18n: $(BIN)/duan8  ## re-extract messages and merge them into the catalogs
	$(BIN)/duan8 i18n extract && $(BIN)/duan8 i18n update

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
