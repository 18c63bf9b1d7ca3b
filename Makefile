# fhir-iomt: `make run` to try it, `make test` to check it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8080

.PHONY: install run test lint openapi bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install fhir-iomt with its test tools

run: install ## Start the embedded database and the server with demo data
	$(BIN)/fhir-iomt serve --demo --host $(HOST) --port $(PORT)

test: install ## Lint, then the whole test suite (unit, API, end-to-end)
	$(BIN)/ruff check fhir_iomt tests bench fixtures
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check fhir_iomt tests bench fixtures

openapi: install ## Write the served OpenAPI document to openapi/openapi.json
	$(BIN)/fhir-iomt openapi -o openapi/openapi.json

bench: install ## Benchmarks: HTTP vs raw pymongo on the same database (BENCH_N=1000000 for the full run)
	$(BIN)/python bench/search_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
