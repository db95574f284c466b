# The Makefile is the interface: setup, run, test, lint, bench, chaos.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

.PHONY: setup run test lint bench chaos clean system-deps

WEB_STAMP := web/dist/.build-stamp
WEB_SOURCES := $(shell find web/src web/index.html web/planning web/package-lock.json web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)

setup: $(STAMP) $(WEB_STAMP) system-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The wallboard: npm ci from the committed lock file, then the Vite build into web/dist.
$(WEB_STAMP): $(WEB_SOURCES)
	@if [ -f web/package-lock.json ]; then \
	  cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	else echo "web/ has no package-lock.json: the api serves web/basic.html"; fi
	@mkdir -p web/dist && touch $(WEB_STAMP)

system-deps:
	@bash .ci/system-deps

run: setup
	$(BIN)/ccpulse up --simulate

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m tests.bench
	$(BIN)/python -m tests.bench_ingest

# The ingest alone (docs/capacity.md): webhooks per ingest process beside a bare FastAPI +
# aiokafka app, driven by wrk (Debian: apt-get install -y wrk).
.PHONY: bench-ingest
bench-ingest: setup
	$(BIN)/python -m tests.bench_ingest

# Fault injection ending in exact recounts (docs/reliability.md): 1,000,000 events with >= 20
# aggregator kills, then the long fuzz run (budget 125,000: at least 100,000 inputs are sent;
# hypothesis stops early on small input spaces, 100,000 gave 81,825).
chaos: setup
	$(BIN)/python -m tests.chaos --events 1000000 --kills 20
	CCPULSE_FUZZ_EXAMPLES=125000 $(BIN)/python -m pytest -q -s -p no:cacheprovider \
	  -o timeout=3600 tests/e2e/test_fuzz.py

clean:
	rm -rf $(VENV) var
