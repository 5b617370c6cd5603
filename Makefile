# Convenience targets for working on the template (the README's commands need only Python and git).
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help install test test-all docs lint screenshots locks

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/pytest:
	python3 -m venv $(VENV) && $(BIN)/pip install -q -e '.[test]'

install: $(BIN)/pytest ## Create .venv with copier and the test tools

test: install ## Quick tests (renders every level; no generated-project installs)
	$(BIN)/pytest

test-all: install ## The whole suite, slow end-to-end tests included (what CI runs)
	$(BIN)/pytest --slow

docs: install ## Build the docs site strictly into site/
	$(BIN)/mkdocs build --strict

screenshots: install ## Retake docs/images/screenshots/ from a generated project (needs chromium)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/screenshots.py $(ARGS)

locks: install ## Relock the uv.lock each level ships, in locks/ (ARGS=--upgrade: newest pins; --check)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python scripts/locks.py $(ARGS)

lint: install ## Lint the template's own Python
	$(BIN)/ruff check extensions tests benchmarks docs scripts
	$(BIN)/ruff format --check extensions tests benchmarks docs scripts
