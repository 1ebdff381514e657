# One entry point for people and CI. `make test` is exactly what .ci/run runs:
# it creates the environments from the lock file, then lints, type-checks, tests and checks the template.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The interpreter of the tools' environment: the first of python3.11, 3.12, 3.13 on PATH, or
# PYTHON=<a python 3.11 or later> (a name on PATH or a path).
PYTHON_CANDIDATES := python3.11 python3.12 python3.13
ifndef PYTHON
# The name, not its path: uv matches the environment's interpreter by it (a pyenv shim's path
# would not match the interpreter behind it).
PYTHON := $(firstword $(foreach name,$(PYTHON_CANDIDATES),$(if $(shell command -v $(name) 2>/dev/null),$(name))))
endif
NO_PYTHON := found none of $(PYTHON_CANDIDATES) on PATH: install Python 3.11 or later, or give \
  make PYTHON=<path to a python3.11 or later>
# uv is the one tool installed outside the lock: pinned here, bootstrapped with the stock pip.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/uv/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
# The Lambda runtime is python3.13; `sam build` looks for a matching interpreter on PATH and
# refuses pyenv's shim ("Binary validation failed"), so find a real one: pyenv's own install, then
# the system's. Override with PY313_DIR=<the bin directory of a python3.13>.
PY313_CANDIDATES := $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13 \
  /root/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13)
PY313_DIR ?= $(patsubst %/python3.13,%,$(firstword $(PY313_CANDIDATES)))
NO_PY313 := make build needs python3.13 (the Lambda runtime) and found none: install Python 3.13 \
  (pyenv install 3.13, or your system's python3.13 package) or set PY313_DIR to its bin directory
VENV := .venv
RUN := $(UV) run --locked --no-sync
# The fleet's templates (docs/fleet.md): checked like template.yaml by `make template`.
FLEET_TEMPLATES := fleet/template.yaml fleet/app.yaml fleet/member-role.yaml

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	$(if $(PYTHON),,$(error $(NO_PYTHON)))
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.PHONY: dev
dev: $(UV) ## Create .venv from uv.lock: what the demo, the tests and the tools need.
	$(UV) sync --locked --quiet

.PHONY: sam-env
sam-env: $(UV)
	UV_PROJECT_ENVIRONMENT=.venv-sam $(UV) sync --locked --quiet --only-group sam

.PHONY: setup
setup: dev sam-env ## Create .venv (dev), .venv-sam and .venv-checkov from uv.lock.
	UV_PROJECT_ENVIRONMENT=.venv-checkov $(UV) sync --locked --quiet --only-group checkov

.PHONY: lint
lint: ## ruff check + ruff format --check.
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: typecheck
typecheck: ## mypy --strict on src/, tests/, sandbox/ and the rest of the Python in the repo.
	$(RUN) mypy

.PHONY: unit
unit: ## pytest with branch coverage (fails under 90 %).
	$(RUN) pytest

.PHONY: test-deep
test-deep: setup ## The hypothesis state machine with many more examples (HYPOTHESIS_PROFILE=deep, ~7 min).
	HYPOTHESIS_PROFILE=deep $(RUN) pytest --no-cov tests/functional/test_state_machine.py

.PHONY: security
security: ## bandit on src/ (0 findings) + pip-audit of uv.lock (SKIPPED, said so, when offline).
	$(RUN) bandit --quiet --recursive src
	$(RUN) python -m tools.audit --uv $(UV) --allow-offline

.PHONY: audit
audit: setup ## pip-audit of every locked group; fails when no vulnerability data is reachable.
	$(RUN) python -m tools.audit --uv $(UV)

.PHONY: demo
demo: dev ## See rotations happen end to end against a local AWS and SMTP server (no account needed)
	$(RUN) python -m sandbox.demo $(DEMO_ARGS)

.PHONY: local
local: dev ## A local world for `sam local invoke` and the CLI: prints the commands to run next; Ctrl-C stops it
	$(RUN) python -m sandbox.local $(LOCAL_ARGS)

.PHONY: build
build: ## sam build (python3.13, arm64, no Docker) into .aws-sam/; Powertools comes from AWS's layer.
ifeq ($(wildcard $(PY313_DIR)/python3.13),)
	$(error $(NO_PY313))
endif
	$(MAKE) --no-print-directory sam-env
	SAM_CLI_TELEMETRY=0 PATH="$(PY313_DIR):$$PATH" .venv-sam/bin/sam build $(SAM_BUILD_ARGS)

# Regions without AWS's Powertools layer (docs/configuration.md, "Powertools: layer or bundled"):
# the same build with Powertools in the zip, from the locked versions; deploy it with
# PowertoolsLayerArn=none. Into the same directory as `make build`, so `sam deploy` finds it.
BUNDLED_MANIFEST := src/requirements-bundled.txt

.PHONY: build-bundled
build-bundled: ## make build with Powertools in the zip, for regions without AWS's layer (PowertoolsLayerArn=none).
	$(MAKE) --no-print-directory build SAM_BUILD_ARGS="--manifest $(BUNDLED_MANIFEST)"

.PHONY: build-fleet
build-fleet: ## sam build of fleet/template.yaml (the fleet's function) into .aws-sam/fleet (docs/fleet.md).
ifeq ($(wildcard $(PY313_DIR)/python3.13),)
	$(error $(NO_PY313))
endif
	$(MAKE) --no-print-directory sam-env
	SAM_CLI_TELEMETRY=0 PATH="$(PY313_DIR):$$PATH" .venv-sam/bin/sam build \
	  --template-file fleet/template.yaml --build-dir .aws-sam/fleet $(SAM_BUILD_ARGS)

.PHONY: build-fleet-bundled
build-fleet-bundled: ## make build-fleet with Powertools in the zip (PowertoolsLayerArn=none).
	$(MAKE) --no-print-directory build-fleet SAM_BUILD_ARGS="--manifest $(BUNDLED_MANIFEST)"

.PHONY: bench
bench: setup ## Benchmarks: rotation overshoot, AWS calls, cold start, package size, RSS (writes bench/results.json)
	PY313_DIR="$(PY313_DIR)" $(RUN) python -m bench

.PHONY: template
template: ## sam validate --lint, cfn-lint, checkov, the IAM policy check, sam build (also bundled): template.yaml and fleet/*.yaml.
	@# Each check runs quietly: one line with its duration; its full output only when it fails.
	@# No network but the package index: telemetry and checkov's update check off, --skip-download.
	@# fleet/template.yaml holds the fleet's function: it is built too, into .aws-sam/fleet.
	@# The default build leaves Powertools to AWS's layer; the bundled one (.aws-sam/bundled) has it.
	@export SAM_CLI_TELEMETRY=0 CKV_SKIP_PACKAGE_UPDATE_CHECK=true; \
	check() { \
	  local name=$$1 start=$$EPOCHREALTIME out; shift; \
	  if ! out=$$("$$@" 2>&1); then printf '%s\n' "$$out" >&2; echo "template: $$name FAILED" >&2; return 1; fi; \
	  printf '  %-13s ok %6.1fs\n' "$$name" "$$(awk "BEGIN { print $$EPOCHREALTIME - $$start }")"; \
	}; \
	test -x "$(PY313_DIR)/python3.13" || { echo "template: $(NO_PY313)" >&2; exit 1; }; \
	for file in template.yaml $(FLEET_TEMPLATES); do \
	  echo "$$file"; \
	  check "sam validate" .venv-sam/bin/sam validate --lint --region us-east-1 --template-file "$$file"; \
	  check cfn-lint .venv-sam/bin/cfn-lint "$$file"; \
	  check checkov .venv-checkov/bin/checkov --quiet --compact --skip-download \
	    --framework cloudformation --file "$$file"; \
	done; \
	echo "IAM policies of template.yaml, fleet/*.yaml and docs/*.md (tools/policy_check.py)"; \
	check "policies" $(RUN) python -m tools.policy_check; \
	check "sam build" env PATH="$(PY313_DIR):$$PATH" .venv-sam/bin/sam build; \
	check "handler" test -f .aws-sam/build/RotationFunction/rotation_handler/app.py; \
	check "no powertools" test ! -e .aws-sam/build/RotationFunction/aws_lambda_powertools; \
	check "bundled build" env PATH="$(PY313_DIR):$$PATH" .venv-sam/bin/sam build \
	  --manifest $(BUNDLED_MANIFEST) --build-dir .aws-sam/bundled; \
	check "bundled" test -f .aws-sam/bundled/RotationFunction/aws_lambda_powertools/__init__.py; \
	check "fleet build" env PATH="$(PY313_DIR):$$PATH" .venv-sam/bin/sam build \
	  --template-file fleet/template.yaml --build-dir .aws-sam/fleet; \
	check "fleet handler" test -f .aws-sam/fleet/FleetFunction/rotation_handler/app.py

.PHONY: package
package: $(UV) ## Build wheel + sdist into dist/; install the wheel alone in an empty venv; run --version, derive.
	$(RUN) python -m tools.wheel_check

.PHONY: test
test: setup lint typecheck security unit template package ## Everything CI runs (the README's test command).

.PHONY: format
format: $(UV) ## Apply ruff format and the safe ruff fixes.
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

.PHONY: requirements
requirements: $(UV) ## Regenerate src/requirements.txt and src/requirements-bundled.txt from uv.lock.
	$(RUN) python -m tools.requirements --write

.PHONY: lock
lock: $(UV) ## Re-resolve uv.lock after editing pyproject.toml, then regenerate the requirements files.
	$(UV) lock
	$(MAKE) setup requirements

.PHONY: clean
clean: ## Remove environments, caches and build output.
	rm -rf $(TOOLS) $(VENV) .venv-sam .venv-checkov .aws-sam dist .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
