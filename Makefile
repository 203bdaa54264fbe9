# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
# Test processes (pytest-xdist): two, for the two cores the suite is timed on; 0 runs serially.
# PYTEST_ARGS adds to them (a later -n wins).
TEST_PROCESSES ?= 2

.PHONY: run test lint i18n clean

$(BIN)/duan8: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,postgres]"
	touch $@

run: $(BIN)/duan8  ## install, then serve web chat and worker on SQLite at http://127.0.0.1:$(PORT)/chat
	PORT=$(PORT) $(BIN)/duan8 run --host $(HOST)

test: $(BIN)/duan8  ## install, then run the whole suite (PostgreSQL too when DUAN8_TEST_DATABASE_URL is set)
	$(BIN)/ruff check .
	$(BIN)/mypy bot handlers storage messages_vi
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

i18n: $(BIN)/duan8  ## re-extract messages and merge them into the catalogs
	$(BIN)/duan8 i18n extract && $(BIN)/duan8 i18n update

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
