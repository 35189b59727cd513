"""Session fixtures for the several-hosts tests: a second real engine (unix, TLS, SSH) and a hung one.

They start on demand, once per session, and stop and remove everything they started at the end. Locally a
missing tool skips these tests; under ``CI=true`` it fails them (``.ci/run`` installs the tools).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import docker
import pytest

from tests.support.second_engine import HungEngine, SecondEngine, SetupError, SshFront, missing_tools, session_tag


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the second engine cannot run: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def second_engine(docker_client: docker.DockerClient) -> Iterator[SecondEngine]:
    """A second dockerd in its own network namespace, with the test image loaded."""
    missing = missing_tools()
    if missing:
        _unavailable(f"missing {', '.join(missing)}")
    if os.geteuid() != 0:
        _unavailable("a second dockerd needs root")
    engine = SecondEngine(tag=session_tag())
    try:
        engine.start()
        engine.load_test_image(docker_client)
    except SetupError as exc:
        engine.remove()
        _unavailable(str(exc))
    yield engine
    engine.remove()


@pytest.fixture(scope="session")
def second_ssh(second_engine: SecondEngine) -> Iterator[SshFront]:
    """sshd on 127.0.0.1 whose sessions' ``docker`` reaches the second engine."""
    front = SshFront(docker_host=second_engine.unix_url)
    try:
        front.start()
    except SetupError as exc:
        front.remove()
        _unavailable(str(exc))
    yield front
    front.remove()


@pytest.fixture
def hung_engine() -> Iterator[HungEngine]:
    hung = HungEngine()
    yield hung
    hung.close()


def hosts_yaml(second_engine: SecondEngine, second_ssh: SshFront | None = None, *, extra: str = "") -> str:
    """A hosts file naming the first engine ``local`` (the default) and the second over unix, TLS and SSH."""
    tls = second_engine.client_tls
    assert tls is not None
    lines = [
        "hosts:",
        "  local: {url: 'unix:///var/run/docker.sock', default: true}",
        f"  second: {{url: '{second_engine.unix_url}', labels: {{env: staging}}}}",
        f"  secure: {{url: '{second_engine.tcp_url}', tls: {{ca: {tls.ca}, cert: {tls.cert}, key: {tls.key}}},"
        " labels: {env: prod}}",
    ]
    if second_ssh is not None:
        lines.append(
            f"  remote: {{url: '{second_ssh.url}', ssh: {{identity: {second_ssh.identity},"
            f" known_hosts: {second_ssh.known_hosts}}}}}"
        )
    return "\n".join(lines) + "\n" + extra
