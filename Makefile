# The Makefile is the interface: setup, run, test, lint, bench, chaos.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp

LOCK := requirements/dev.lock
UV_COMPILE := $(BIN)/uv pip compile -q pyproject.toml --generate-hashes --universal --python-version 3.11

.PHONY: setup run test test-clock lint lock bench chaos clean system-deps api-types k8s-monitoring

WEB_STAMP := web/dist/.build-stamp
WEB_SOURCES := $(shell find web/src web/index.html web/planning web/package-lock.json web/vite.config.ts web/tsconfig.json -type f 2>/dev/null)

setup: $(STAMP) $(WEB_STAMP) system-deps

# Exactly the locked versions, checked by hash; then the project itself, editable, without deps.
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m tests.tools.lockcheck $(LOCK)
	@touch $(STAMP)

# On purpose only: newer versions of everything pyproject.toml allows. dev.lock (everything, for
# setup and CI) first; prod.lock (the image) is its subset, so production runs the tested versions.
lock: setup
	$(UV_COMPILE) --upgrade --extra embedded --extra dev -o requirements/dev.lock
	$(UV_COMPILE) -c requirements/dev.lock -o requirements/prod.lock

# The wallboard: npm ci from the committed lock file, then the Vite build into web/dist.
$(WEB_STAMP): $(WEB_SOURCES)
	@if [ -f web/package-lock.json ]; then \
	  cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build; \
	else echo "web/ has no package-lock.json: the api serves web/basic.html"; fi
	@mkdir -p web/dist && touch $(WEB_STAMP)

system-deps:
	@bash .ci/system-deps

# The api's OpenAPI document (web/openapi.json, from create_app: no server) and the web's types
# generated from it (web/src/lib/api-types.ts); tests/unit/api/test_api_types.py fails when stale.
api-types: setup
	$(BIN)/python -m tests.tools.openapi_dump web/openapi.json
	cd web && npm run --silent api-types

# deploy/k8s/monitoring (ServiceMonitors, PrometheusRules, the dashboards ConfigMap) from
# deploy/prometheus and deploy/grafana; tests/unit/deploy/test_k8s_monitoring.py fails when stale.
k8s-monitoring: setup
	$(BIN)/python -m tests.tools.k8s_monitoring

run: setup
	$(BIN)/ccpulse up --simulate

# Two workers (pytest-xdist), one test file per worker at a time: the e2e tests spend most of
# their time waiting on the stacks they start, so two files overlap well on two cores.
TEST_WORKERS ?= 2
test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

# The time-sensitive tests with the whole stack shifted to DST nights, year end, Sunday 23:55...
# (tests/tools/clock_matrix.py; INSTANT=name runs one).
test-clock: setup
	$(BIN)/python -m tests.tools.clock_matrix $(if $(INSTANT),--instant $(INSTANT))

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m tests.tools.bench
	$(BIN)/python -m tests.tools.bench_ingest
	$(BIN)/python -m tests.tools.bench_erlang
	$(BIN)/python -m tests.tools.bench_contacts --rows 1000000
	$(BIN)/python -m tests.tools.bench_memory --contacts 1000000

# The ingest alone (docs/capacity.md): webhooks per ingest process beside a bare FastAPI +
# aiokafka app, driven by wrk (Debian: apt-get install -y wrk).
.PHONY: bench-ingest
bench-ingest: setup
	$(BIN)/python -m tests.tools.bench_ingest

# Fault injection ending in exact recounts (docs/reliability.md): 1,000,000 events with >= 20
# aggregator kills, then the long fuzz run (budget 125,000: at least 100,000 inputs are sent;
# hypothesis stops early on small input spaces, 100,000 gave 81,825).
chaos: setup
	$(BIN)/python -m tests.tools.chaos --events 1000000 --kills 20
	CCPULSE_FUZZ_EXAMPLES=125000 $(BIN)/python -m pytest -q -s -p no:cacheprovider \
	  -o timeout=3600 tests/e2e/test_fuzz.py

clean:
	rm -rf $(VENV) var
