"""Shared fixtures: a real Docker engine, the test image, and pipelines built as a user would build them.

Every resource a test creates carries the label ``chatdock.test=<session id>`` and a name starting with
``cdt-``; the session removes whatever is left at the end. Without an engine, Docker tests skip locally and
*fail* under ``CI=true`` (a skipped engine test must never pass for a green CI).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from bot.engine import Engine
from bot.models import Actor
from bot.pipeline import Outcome, Pipeline
from bot.policy import Policy, builtin_policy, load_policy_text
from handlers import build_registry
from tests.support.image import TEST_IMAGE, ensure_test_image
from tests.support.registry import (
    Registry,
    build_test_image,
    push_and_forget,
    remove_session_images,
    start_registry,
)
from tests.support.registry import available as registry_available

SESSION = uuid.uuid4().hex[:6]
PREFIX = f"cdt-{SESSION}-"
TEST_LABEL = "chatdock.test"


def pytest_configure(config: pytest.Config) -> None:
    """Subprocesses (``chatdock shell``) write their audit log to a temp file, never into the checkout."""
    if "CHATDOCK_DB" not in os.environ:
        import tempfile

        os.environ["CHATDOCK_DB"] = os.path.join(tempfile.mkdtemp(prefix="chatdock-test-"), "audit.db")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "docker_client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:  # no engine here
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no Docker engine is reachable: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    ensure_test_image(client)
    yield client
    _cleanup(client)
    client.close()


def _cleanup(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, sparse=True):
        name = (container.attrs.get("Names") or ["/"])[0].lstrip("/")
        if name.startswith(PREFIX) or (container.attrs.get("Labels") or {}).get(TEST_LABEL) == SESSION:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
    for network in client.networks.list():
        if network.name.startswith(PREFIX):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


@pytest.fixture(scope="session")
def image(docker_client: docker.DockerClient) -> str:
    return TEST_IMAGE


@pytest.fixture
def name() -> Any:
    """``name("web")`` → a unique, prefixed resource name for this test session."""
    counter = iter(range(1, 10_000))

    def make(base: str = "c") -> str:
        return f"{PREFIX}{base}-{uuid.uuid4().hex[:4]}{next(counter)}"

    return make


@pytest.fixture
def engine(docker_client: docker.DockerClient) -> Iterator[Engine]:
    handle = Engine(timeout=30)
    yield handle
    handle.close()


TEST_POLICY = f"""
roles:
  viewer:   {{commands: [ps, inspect, top, stats, port, logs, network ls, network inspect, history, help]}}
  operator: {{include: [viewer], commands: [start, stop, restart]}}
  admin:    {{include: [operator], commands: [run, rm, exec, network create, network connect, network disconnect,
              network rm]}}
grants:
  - {{role: admin, users: [UADMIN]}}
  - {{role: operator, groups: [SOPS], channels: [COPS]}}
  - {{role: viewer, users: ["*"]}}
images: ["{TEST_IMAGE.split(":")[0]}", "local/*"]
containers:
  labels: {{team: web}}
  names: ["{PREFIX}web-*"]
  protect: ["{PREFIX}protected-*"]
networks: {{names: ["{PREFIX}*"]}}
ports: ["19000-19999"]
limits: {{memory: 512m, cpus: 1.0}}
"""


@pytest.fixture
def team_policy() -> Policy:
    return load_policy_text(TEST_POLICY, source="test policy", known_commands=[*build_registry().names(), "history"])


def make_pipeline(engine: Engine, policy: Policy, **kwargs: Any) -> Pipeline:
    return Pipeline(engine=engine, policy=policy, registry=build_registry(), **kwargs)


@pytest.fixture
def local(engine: Engine) -> Pipeline:
    """The shell's pipeline: built-in policy, local user."""
    return make_pipeline(engine, builtin_policy(), run_timeout=20, exec_timeout=10)


@pytest.fixture
def say(local: Pipeline) -> Any:
    """``say("ps -a")`` → Outcome, as the local shell user."""
    actor = Actor(user="local", channel="shell")

    def run(text: str, *, actor_: Actor = actor) -> Outcome:
        return local.handle(text, actor_)

    return run


# ------------------------------------------------------------------------------------------ images and a registry


@pytest.fixture(scope="session")
def registry(docker_client: docker.DockerClient) -> Iterator[Registry]:
    """A real registry (Debian's docker-registry) on 127.0.0.1 and a free port for the session; stopped after."""
    if not registry_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and docker-registry is not installed (apt-get install -y docker-registry)")
        pytest.skip("docker-registry is not installed")
    started = start_registry()
    yield started
    started.stop()


@pytest.fixture(scope="session")
def build_image(docker_client: docker.DockerClient) -> Iterator[Any]:
    """``build_image(tag, size=..., env=...)`` → the ID of a new image on top of the test image, with its own layer
    of ``size`` random bytes (so a pull has something to download) and the label ``chatdock.test=<session>``.
    Every image the session built (by that label) is removed from the engine at the end."""

    def build(tag: str, *, size: int = 64 * 1024, env: dict[str, str] | None = None) -> str:
        return build_test_image(docker_client, tag, session=SESSION, size=size, env=env or {})

    yield build
    remove_session_images(docker_client, SESSION)


@pytest.fixture(scope="session")
def pushed(docker_client: docker.DockerClient, registry: Registry, build_image: Any) -> Any:
    """``pushed("team/web:1.0")`` → ``127.0.0.1:PORT/cdt-<session>-team/web:1.0``: built, pushed to the session's
    registry and removed from the engine, so the next pull of it really downloads."""

    def push(path: str, *, size: int = 64 * 1024, env: dict[str, str] | None = None) -> str:
        ref = registry.ref(f"{PREFIX}{path}")
        build_image(ref, size=size, env=env)
        push_and_forget(docker_client, ref)
        return ref

    return push
