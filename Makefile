# One entry point for every task. `make up` runs the mesh; `make test` is CI's command.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := uv
PYTEST_ARGS ?=
SOURCES := shared/src services/metrics-ingest/src services/alert-engine/src services/notifier/src services/query-analyzer/src services/health-aggregator/src services/console/src dev/src sdk/python/src bench examples

.PHONY: help deps up test lint format typecheck unit integration e2e faults compose-images compose-test schemas bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

deps:  ## install what is missing: Debian packages (Docker engine too), uv, the locked workspace, Kafka jars
	@scripts/bootstrap.sh

up: deps  ## start Kafka, PostgreSQL, Redis, the five services, a webhook sink and demo traffic
	$(UV) run --frozen opsmesh up

test: deps lint  ## lint, then unit, integration, end-to-end, fault and compose-stack tests over real infrastructure
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: typecheck  ## ruff (lint + format check) and mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck:
	$(UV) run --frozen mypy $(SOURCES)

format:  ## apply ruff's fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

unit:  ## only the fast tests (no infrastructure)
	$(UV) run --frozen pytest -m "not integration and not e2e and not faults and not compose" $(PYTEST_ARGS)

integration:  ## only the integration tests
	$(UV) run --frozen pytest -m integration $(PYTEST_ARGS)

e2e:  ## only the end-to-end tests
	$(UV) run --frozen pytest -m e2e $(PYTEST_ARGS)

faults:  ## only the fault suite: SIGKILL each service, restart Kafka/PostgreSQL/Redis under load
	$(UV) run --frozen pytest -m faults $(PYTEST_ARGS)

compose-images: deps  ## build the compose stack's images (Debian base by debootstrap, no registry); needs a Docker engine
	compose/images/build.sh

compose-test: deps  ## only the compose stack, for real: its own dockerd if none runs, build, up, alert and metric through, down
	$(UV) run --frozen pytest -m compose tests/compose $(PYTEST_ARGS)

schemas:  ## export the events' JSON Schemas to docs/schemas and the signal catalogue to docs/signals.md
	$(UV) run --frozen opsmesh schema export docs/schemas
	$(UV) run --frozen opsmesh signals --markdown > docs/signals.md

bench: deps  ## run the benchmarks (never part of the tests)
	$(UV) run --frozen python -m bench

clean:
	rm -rf .opsmesh .pytest_cache .mypy_cache .ruff_cache
