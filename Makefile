# idgraph: `make run` serves the API on a real Neo4j; `make test` runs the whole suite against one.
# Both work from a fresh clone with no environment variables.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
WEB_INSTALLED := web/node_modules/.package-lock.json
JAR := neo4j-local/target/neo4j-local-1.0.0.jar
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint unit db-up db-down db-status migrate demo bench install web test-browser screenshot neo4j-local clean

install: $(INSTALLED) $(WEB_INSTALLED)

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "idgraph needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,dev]"
	@touch $@

# The pages' browser libraries (cytoscape for /inspect; GraphiQL, React and ReactDOM for /graphql), from the npm
# registry at the versions pinned in web/package-lock.json. The app serves them from web/node_modules (a wheel
# carries copies, app/web/vendor.json lists them): no CDN, no committed copy.
web: $(WEB_INSTALLED)

$(WEB_INSTALLED): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

# The local Neo4j for machines without Docker; the first build downloads the Neo4j jars from Maven Central.
neo4j-local: $(JAR)

$(JAR): neo4j-local/pom.xml $(shell find neo4j-local/src -name '*.java')
	mvn -B -q -f neo4j-local/pom.xml package -DskipTests
	@touch $@

db-up: install neo4j-local
	$(BIN)/idgraph db up

db-down: install
	$(BIN)/idgraph db down

db-status: install
	$(BIN)/idgraph db status

migrate: db-up
	$(BIN)/idgraph migrate

# The demo data set (app/demo/demo.jsonl), loaded only when the database holds no profile.
demo: migrate
	$(BIN)/idgraph demo
	@# Compiles the resolve query plans on the server, so a newcomer's first lookup does not pay for it.
	@$(BIN)/idgraph resolve phone_number=+14155552671 >/dev/null 2>&1 || true

# A fresh dev token (all scopes) every run, replacing the previous one: its hash goes into IDGRAPH_TOKENS_FILE
# (var/tokens.json by default, created when missing); the token itself is only printed.
run: demo
	@token=$$($(BIN)/idgraph token dev --quiet) && \
	echo "idgraph on http://$(HOST):$(PORT)  (health: /healthz, readiness: /readyz)" && \
	echo "Inspector: http://$(HOST):$(PORT)/inspect  (paste the token below when it asks)" && \
	echo "GraphiQL: open http://$(HOST):$(PORT)/graphql and set the header   Authorization: Bearer $$token" && \
	echo "  (in GraphiQL's Headers tab: {\"Authorization\": \"Bearer $$token\"}; a new dev token is made each run)"
	$(BIN)/idgraph serve --host $(HOST) --port $(PORT)

# bench/ joins once it holds code (git keeps no empty directories, so a fresh clone may not have it).
LINT_PATHS := app tests setup.py $(wildcard bench) $(wildcard scripts)

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit -q

# The whole suite against a real Neo4j: NEO4J_URI if set, else Docker, else a neo4j-local of the test session's own.
test: install neo4j-local lint
	$(BIN)/pytest -q

# Benchmarks, each on scratch Neo4j servers of its own; each writes its section of docs/benchmarks.md, and
# bench.summary prints (and writes there) the table of targets met and missed at the end: GraphQL resolve at 10k
# and 1M profiles with its baselines, writes, throughput and memory (bench.http_latency, about 8 minutes on the
# 2-core machine at 5,000 rounds, 4 of them writing the 1M graph through the offline importer); pathological shapes
# (bench.pathological, about 2); `idgraph ingest` beside an idempotent MERGE floor and the raw CREATE baseline
# (bench.ingest, about 1; the issue's figure is --records 1000000, about 13); `idgraph export` beside the paged
# export it replaced (bench.export, under 1 at 50k; the issue's figure is --profiles 375000, about 3); `idgraph import`
# from the file to a ready database against 10,000 records/s (bench.import_load, under 1 at 100k; the issue's figure
# is --records 1000000, and --records 375000 --export times the import then `idgraph export`); the contested rule on
# and off on generated households, precision/recall and FOUND answers naming one real person (bench.households, about
# 1.5 at 300 households; the issue's figure is the default, 1,500 households and 1,500 lookups, about 2.5): about 14
# minutes in all (10,000 rounds of http_latency, as before issue 17, would take it past the 15-minute budget).
# BENCH_LARGE=200000 BENCH_ROUNDS=2000 makes a quick run.
# bench.engine_latency (no HTTP) runs on its own.
BENCH_PROFILES ?= 10000
BENCH_LARGE ?= 1000000
BENCH_ROUNDS ?= 5000
BENCH_RECORDS ?= 20000
BENCH_EXPORT ?= 50000
BENCH_IMPORT ?= 100000
BENCH_HOUSEHOLDS ?= 300
bench: install neo4j-local
	$(BIN)/python -m bench.summary --reset
	$(BIN)/python -m bench.http_latency --profiles $(BENCH_PROFILES) --large $(BENCH_LARGE) --rounds $(BENCH_ROUNDS)
	$(BIN)/python -m bench.pathological
	$(BIN)/python -m bench.ingest --records $(BENCH_RECORDS)
	$(BIN)/python -m bench.export --profiles $(BENCH_EXPORT)
	$(BIN)/python -m bench.import_load --records $(BENCH_IMPORT)
	$(BIN)/python -m bench.households --households $(BENCH_HOUSEHOLDS) --singles $(BENCH_HOUSEHOLDS) --lookups 1000
	$(BIN)/python -m bench.summary

# Only the browser tests of /inspect (headless Chromium from /usr/bin/chromium; `make test` runs them too).
test-browser: install neo4j-local
	$(BIN)/pytest -q -m browser

# Retake docs/inspector.png, the README's picture of a merged customer, from the real stack.
screenshot: install neo4j-local
	IDGRAPH_UPDATE_SCREENSHOT=1 $(BIN)/pytest -q tests/browser/test_screenshot.py

clean:
	rm -rf $(VENV) neo4j-local/target .pytest_cache .mypy_cache .ruff_cache web/node_modules
