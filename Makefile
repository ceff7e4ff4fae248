# The README's commands. Everything installs into ./.venv; nothing else on the machine changes
# except the Debian packages named in `system-deps` (only when missing, and only as root).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= socdef-demo
PORT ?= 8000

.PHONY: setup demo test lint bench mutants system-deps clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench,postgres]'  # tests/test_bench.py runs every bench script
	touch $@

setup: $(BIN)/.installed

demo: setup
	$(BIN)/socdef demo --data-dir $(DEMO_DIR) --port $(PORT)

# TEST_WORKERS=2: two pytest-xdist workers, a file a unit of work, the files bound to the wall
# clock one unit in one worker (tests/conftest.py TIMED_FILES). One process (0) by default:
# the timed files' stability beside a busy second worker is not yet shown (docs/testing.md).
TEST_WORKERS ?= 0
test: setup system-deps
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

# The checks .ci/run and the pre-commit hooks run: lint, then types ([tool.mypy] in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy generator exports worker

# Every script in bench/, one after another (half an hour or more on the 2-core machine).
bench: setup system-deps
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/build.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/taxii.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/limits.py
	$(BIN)/python bench/formats.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/extract_eval.py

# Hand-written mutants against fast test subsets (docs/testing.md); prints killed/survived.
mutants: setup system-deps
	$(BIN)/python tools/mutants.py

# Servers and tools the tests and benchmarks start on 127.0.0.1 (PostgreSQL's initdb is not on
# PATH in Debian: it is looked for under /usr/lib/postgresql, as tests/postgres_server.py does).
SYSTEM_TOOLS := redis-server nginx wrk curl wget chromium minisign named-checkzone ipset
SYSTEM_PACKAGES := redis-server nginx-light wrk curl wget chromium minisign postgresql bind9-utils ipset
system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else echo "missing:$$missing (install: sudo apt-get install $(SYSTEM_PACKAGES))"; fi; \
	fi

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .hypothesis
