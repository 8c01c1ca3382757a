# idgraph: `make run` serves the API on a real Neo4j; `make test` runs the whole suite against one.
# Both work from a fresh clone with no environment variables.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
JAR := neo4j-local/target/neo4j-local-1.0.0.jar
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint unit db-up db-down db-status migrate bench install neo4j-local clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "idgraph needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,dev]"
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

run: migrate
	@echo "idgraph on http://$(HOST):$(PORT)  (health: /healthz, readiness: /readyz)"
	$(BIN)/idgraph serve --host $(HOST) --port $(PORT)

# bench/ joins once it holds code (git keeps no empty directories, so a fresh clone may not have it).
LINT_PATHS := app tests $(wildcard bench)

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit -q

# The whole suite against a real Neo4j: NEO4J_URI if set, else Docker, else a neo4j-local of the test session's own.
test: install neo4j-local lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) neo4j-local/target .pytest_cache .mypy_cache .ruff_cache
