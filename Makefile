# One entry point for people and CI: `make run` starts the hotline locally, `make test` runs
# every check. Both set up what they need first.

SHELL := /bin/bash
# sam build needs python3.13 on PATH (the Lambda runtime); pyenv provides it here.
export PYENV_VERSION ?= 3.11.7:3.12.1:3.13.0
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
BIN := $(VENV)/bin
SAM := $(SAM_VENV)/bin/sam
export SAM_CLI_TELEMETRY := 0
PORT ?= 3000

.PHONY: run test setup lint typecheck template build pytest schemas generated browser-deps bench clean

run: setup
	$(BIN)/hotline local --port $(PORT) --directory examples/phonenumber.json \
	  --members examples/members.json --benefits examples/benefits.csv

test: setup browser-deps lint typecheck template build pytest

setup: $(VENV)/.installed $(SAM_VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# aws-sam-cli pins its own boto3 and cfn-lint: it lives in its own environment.
$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

# Debian's Chromium and CJK fonts for the browser tests; never a downloaded browser.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK" \
	    || ! fc-list 2>/dev/null | grep -qi "Noto Color Emoji"; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null; \
	  else \
	    echo "browser tests need: sudo apt-get install chromium fonts-noto-cjk fonts-noto-color-emoji" >&2; exit 1; \
	  fi; \
	fi

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# template.yaml takes its contact flows, event schemas and repeated alarms from generated/:
# fail when that is not what scripts/generate.py writes, then lint both templates.
template: setup
	$(BIN)/python scripts/generate.py --check
	$(SAM_VENV)/bin/cfn-lint template.yaml generated/alarms.yaml
	$(SAM) validate --lint --template template.yaml --region ap-northeast-1

build: setup
	@command -v python3.13 >/dev/null || { echo "sam build needs python3.13 on PATH" >&2; exit 1; }
	$(SAM) build --template template.yaml --build-dir .aws-sam/build --parallel --cached >/dev/null
	@# template.yaml names its retry policies by YAML anchor; CloudFormation takes no aliases,
	@# so the template sam build writes (and sam package uploads) must have them expanded.
	@! grep -nE '(: |- )[&*][A-Za-z_]' .aws-sam/build/template.yaml || { echo "built template has YAML aliases" >&2; exit 1; }
	@echo "sam build: ok (.aws-sam/build)"

pytest: setup
	$(BIN)/python -m pytest -n 2 -q

# Regenerate what is generated from code; tests fail when the committed copies drift.
schemas: setup
	$(BIN)/python -m hotline_core.schemas schemas

generated: setup
	$(BIN)/python scripts/generate.py

bench: setup
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
