# chatdock's everyday commands. `make check` is exactly what CI runs after setting up (see .ci/run).
#
# Everything runs with one interpreter, PYTHON. By default that is the project's own virtualenv .venv (created,
# and chatdock installed into it, on first use), or the virtualenv already active in the shell (VIRTUAL_ENV):
# nothing is ever installed into the machine's Python unless asked for with PYTHON=python3 (as .ci/run does).
BASE_PYTHON ?= python3
VENV ?= .venv
PYTHON ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV)/bin/python,$(VENV)/bin/python)
PYTEST_ARGS ?=
# the install stamp: only when PYTHON is .venv's own, so `make check PYTHON=python3` installs nothing
INSTALLED := $(if $(filter $(VENV)/bin/python,$(PYTHON)),$(VENV)/.installed)

.PHONY: setup lint types test load check shell image run bench image-check

setup: $(INSTALLED)  ## install chatdock and its dev tools, editable, into PYTHON (by default a new virtualenv .venv)
	$(if $(INSTALLED),@echo "chatdock is installed in $(VENV) ($(VENV)/bin/chatdock)",$(PYTHON) -m pip install -e '.[dev]')

$(VENV)/.installed: pyproject.toml
	@$(BASE_PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "$(BASE_PYTHON) cannot create a virtualenv; installing python3-venv"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }
	test -x $(VENV)/bin/python || $(BASE_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@touch $@

lint: $(INSTALLED)  ## ruff: lint everything, formatting of the package code
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check bot handlers

types: $(INSTALLED)  ## mypy --strict over bot/ and handlers/ (configured in pyproject.toml)
	$(PYTHON) -m mypy

test: $(INSTALLED)  ## unit and real-engine tests (PYTEST_ARGS="-k stats" to narrow); no tests collected (exit 5) fails
	@status=0; $(PYTHON) -m pytest -q $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; \
	exit $$status

load: $(INSTALLED)  ## the load test alone: 500 signed commands from 50 users on the real server and engine (also in `make test`)
	$(PYTHON) -m pytest -q -m load tests/hardening/test_load.py $(PYTEST_ARGS)

check: lint types test

shell: $(INSTALLED)  ## the local chatdock shell (built-in policy unless CHATDOCK_POLICY is set)
	$(PYTHON) -m bot shell

image: $(INSTALLED)  ## (re)build the test image local/busybox:test
	$(PYTHON) -m tests.support.image

run: $(INSTALLED)  ## try it out (README's quick start): install into .venv, make sure an engine answers (starting dockerd if needed), open the shell
	@command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1 || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io busybox-static; }
	$(if $(INSTALLED),,$(PYTHON) -m pip install --quiet -e '.[dev]')
	@docker info >/dev/null 2>&1 || { \
		echo "starting dockerd in the background (log: /tmp/chatdock-dockerd.log)"; \
		nohup dockerd >/tmp/chatdock-dockerd.log 2>&1 & \
		for _ in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
		docker info >/dev/null 2>&1 || { echo "dockerd did not answer within 60 s; see /tmp/chatdock-dockerd.log" >&2; exit 1; }; }
	@$(PYTHON) -m tests.support.image >/dev/null && echo "image local/busybox:test is ready (httpd on :80, sh, wget, nslookup)"
	$(PYTHON) -m bot shell

bench: $(INSTALLED)  ## the benchmark table (not part of the tests): chatdock over HTTP as Slack drives it, against the docker CLI
	$(PYTHON) -m bench

BASE_IMAGE ?= local/chatdock-base:bookworm
CHATDOCK_IMAGE ?= chatdock:ci

image-check:  ## build the Dockerfile with the classic builder (local Debian base, host-built wheels), then test the image
	bash .ci/base-image.sh $(BASE_IMAGE)
	$(PYTHON) -m pip wheel --quiet --wheel-dir wheelhouse '.[postgres]' 'setuptools>=68'
	rm -f wheelhouse/chatdock-*.whl
	DOCKER_BUILDKIT=0 docker build --quiet --build-arg BASE=$(BASE_IMAGE) --build-arg PIP_NO_INDEX=1 -t $(CHATDOCK_IMAGE) .
	CHATDOCK_IMAGE=$(CHATDOCK_IMAGE) $(PYTHON) -m pytest -q -p no:cacheprovider tests/image/check_image.py
