"""Hardening fixtures: containers and a network that the team policy must NOT let chat touch, an engine
that records every request it sends, and the corpus tally printed at the end of the run."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest

from bot.engine import Engine
from tests.conftest import PREFIX, SESSION, TEST_LABEL
from tests.hardening.tally import TALLY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    slack_lines = TALLY.slack_lines()
    if TALLY.tried or TALLY.cli_tried or slack_lines:
        terminalreporter.write_sep("-", "chatdock hardening")
        if TALLY.tried or TALLY.cli_tried:
            terminalreporter.write_line(TALLY.line())
        for line in slack_lines:
            terminalreporter.write_line(line)
        if TALLY.kinds:
            terminalreporter.write_line("by kind: " + ", ".join(f"{k}={v}" for k, v in sorted(TALLY.kinds.items())))
        if TALLY.rules:
            terminalreporter.write_line("by rule: " + ", ".join(f"{k}={v}" for k, v in sorted(TALLY.rules.items())))
        for problem in TALLY.problems:
            terminalreporter.write_line(f"PROBLEM: {problem}")


def module_name(base: str) -> str:
    """Same shape as the session's ``name`` fixture (``{PREFIX}{base}-xxxx``), for module-scoped resources."""
    return f"{PREFIX}{base}-{uuid.uuid4().hex[:6]}"


class SpyEngine(Engine):
    """An Engine that records every HTTP request its client sends (method, path), so a test knows for
    certain whether chatdock tried to change anything: refused requests must send no POST/PUT/DELETE."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[tuple[str, str]] = []

    def _connect(self) -> docker.DockerClient:
        client = super()._connect()
        api = client.api
        original = api.send

        def send(request: Any, **kwargs: Any) -> Any:
            self.sent.append((str(request.method), str(request.path_url)))
            return original(request, **kwargs)

        api.send = send
        return client

    def mutations(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in self.sent if method != "GET"]


@pytest.fixture(scope="module")
def spy_engine(docker_client: docker.DockerClient) -> Iterator[SpyEngine]:
    engine = SpyEngine(timeout=30)
    yield engine
    engine.close()


@dataclass(frozen=True)
class Targets:
    """Existing resources, created straight through docker-py (never through chatdock)."""

    ext: Any  # unlabelled, name outside the policy's globs: out of scope
    protected: Any  # chatdock-managed but named {PREFIX}protected-*: protected
    other: Any  # another team's (team=db): out of scope, addressed by ID prefix
    web: Any  # chatdock-managed: in scope (for mixed requests)
    network: Any  # {PREFIX}net-*: in scope by name
    host_network_id: str
    image_id: str

    def containers(self) -> tuple[Any, ...]:
        return (self.ext, self.protected, self.other, self.web)

    def tokens(self) -> dict[str, str]:
        return {
            "%EXT%": self.ext.name,
            "%PROT%": self.protected.name,
            "%OTHERID%": self.other.id,
            "%OTHER12%": self.other.id[:12],
            "%OTHER10%": self.other.id[:10],
            "%OTHER6%": self.other.id[:6],
            "%WEB%": self.web.name,
            "%NET%": self.network.name,
            "%HOSTNET%": self.host_network_id[:12],
            "%IMGID12%": self.image_id.removeprefix("sha256:")[:12],
            "%IMGID%": self.image_id,
        }


@pytest.fixture(scope="module")
def targets(docker_client: docker.DockerClient, image: str) -> Iterator[Targets]:
    created: list[Any] = []

    def box(base: str, labels: dict[str, str]) -> Any:
        container = docker_client.containers.run(
            image,
            ["sleep", "3600"],
            name=module_name(base),
            labels={TEST_LABEL: SESSION, **labels},
            detach=True,
        )
        created.append(container)
        container.reload()
        return container

    network = docker_client.networks.create(module_name("net"), labels={TEST_LABEL: SESSION})
    try:
        found = Targets(
            ext=box("ext", {}),
            protected=box("protected", {"chatdock.managed": "true", "chatdock.owner": "UADMIN"}),
            other=box("db", {"team": "db"}),
            web=box("web", {"chatdock.managed": "true", "chatdock.owner": "UADMIN"}),
            network=network,
            host_network_id=docker_client.networks.get("host").id,
            image_id=docker_client.images.get(image).id,
        )
        yield found
    finally:
        for container in created:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            network.remove()
