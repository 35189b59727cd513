# chatdock's everyday commands. `make check` is exactly what CI runs after setting up (see .ci/run).
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: setup lint types test load check shell image run bench image-check

setup:  ## install chatdock and its dev tools, editable
	$(PYTHON) -m pip install -e '.[dev]'

lint:  ## ruff: lint everything, formatting of the package code
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check bot handlers

types:  ## mypy --strict over bot/ and handlers/ (configured in pyproject.toml)
	$(PYTHON) -m mypy

test:  ## unit and real-engine tests (PYTEST_ARGS="-k stats" to narrow); no tests collected (exit 5) fails
	@status=0; $(PYTHON) -m pytest -q $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; \
	exit $$status

load:  ## the load test alone: 500 signed commands from 50 users on the real server and engine (also in `make test`)
	$(PYTHON) -m pytest -q -m load tests/hardening/test_load.py $(PYTEST_ARGS)

check: lint types test

shell:  ## the local chatdock shell (built-in policy unless CHATDOCK_POLICY is set)
	chatdock shell

image:  ## (re)build the test image local/busybox:test
	$(PYTHON) -m tests.support.image

run:  ## try it out (README's quick start): install, make sure an engine answers (starting dockerd if needed), open the shell
	@command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 && command -v busybox >/dev/null 2>&1 || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io busybox-static; }
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	@docker info >/dev/null 2>&1 || { \
		echo "starting dockerd in the background (log: /tmp/chatdock-dockerd.log)"; \
		nohup dockerd >/tmp/chatdock-dockerd.log 2>&1 & \
		for _ in $$(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; \
		docker info >/dev/null 2>&1 || { echo "dockerd did not answer within 60 s; see /tmp/chatdock-dockerd.log" >&2; exit 1; }; }
	@$(PYTHON) -m tests.support.image >/dev/null && echo "image local/busybox:test is ready (httpd on :80, sh, wget, nslookup)"
	chatdock shell

bench:  ## the benchmark table (not part of the tests): chatdock over HTTP as Slack drives it, against the docker CLI
	$(PYTHON) -m bench

BASE_IMAGE ?= local/chatdock-base:bookworm
CHATDOCK_IMAGE ?= chatdock:ci

image-check:  ## build the Dockerfile with the classic builder (local Debian base, host-built wheels), then test the image
	bash .ci/base-image.sh $(BASE_IMAGE)
	$(PYTHON) -m pip wheel --quiet --wheel-dir wheelhouse '.[postgres]' 'setuptools>=68'
	rm -f wheelhouse/chatdock-*.whl
	DOCKER_BUILDKIT=0 docker build --quiet --build-arg BASE=$(BASE_IMAGE) --build-arg PIP_NO_INDEX=1 -t $(CHATDOCK_IMAGE) .
	CHATDOCK_IMAGE=$(CHATDOCK_IMAGE) $(PYTHON) -m pytest -q -p no:cacheprovider tests/image/check_image.py
