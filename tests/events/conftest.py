"""Fixtures for the incident tests: the real engine, a fake Slack, a SQLite audit store and the event service."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
from slack_sdk import WebClient

from bot.audit import AuditStore, SqliteAudit
from bot.config import Settings
from bot.engine import Engine
from bot.event_service import EventService
from bot.hosts import HostSet
from bot.policy import Policy, load_policy_text
from bot.wiring import build_web_client
from tests.conftest import PREFIX
from tests.support.fake_slack import FakeSlack

CHANNEL = "C0OPS"


def policy_text(route: str = "") -> str:
    return f"""
roles: {{viewer: {{commands: [ps, logs]}}, operator: {{include: [viewer], commands: [start, stop, restart]}}}}
grants: [{{role: operator, users: [UOPS]}}, {{role: viewer, users: ["*"]}}]
containers: {{names: ["{PREFIX}*"]}}
notify:
  - channel: {CHANNEL}
    cooldown: 10m
{route}"""


@dataclass
class Holder:
    """The policy the service reads on every signal; a test swaps it to change the routes."""

    policy: Policy

    def __call__(self) -> Policy:
        return self.policy


@dataclass
class Harness:
    slack: FakeSlack
    client: WebClient
    store_path: Path
    engine: Engine
    holder: Holder
    services: list[EventService] = field(default_factory=list)
    stores: list[AuditStore] = field(default_factory=list)

    def service(
        self, *, hosts: HostSet | None = None, settle: float = 2.0, store: AuditStore | None = None, wait: bool = True
    ) -> EventService:
        if store is None:
            store = SqliteAudit(self.store_path)
        self.stores.append(store)
        service = EventService(
            hosts=hosts or HostSet.single(self.engine),
            store=store,
            client=self.client,
            policy=self.holder,
            settle=settle,
            lease_ttl=3.0,
            lease_renew=1.0,
        )
        self.services.append(service)
        service.start()
        if not wait:
            return service
        deadline = time.monotonic() + 20
        while not all(w.connected.is_set() for w in service.watchers.values()) or not service.watchers:
            if time.monotonic() > deadline:
                raise AssertionError("the event watcher did not connect")
            time.sleep(0.05)
        return service

    def close(self) -> None:
        for service in self.services:
            service.stop()
        for store in self.stores:
            store.close()

    # -- what Slack received ----------------------------------------------------------------------------
    def messages(self) -> dict[str, dict[str, Any]]:
        """The latest version of every message posted to the channel, by ts."""
        out: dict[str, dict[str, Any]] = {}
        for call in self.slack.calls:
            if call.method == "chat.postMessage" and call.args.get("channel") == CHANNEL:
                out[str(call.answer.get("ts"))] = call.args
            elif call.method == "chat.update" and call.args.get("channel") == CHANNEL:
                out[str(call.args.get("ts"))] = call.args
        return out

    def about(self, container: str) -> list[dict[str, Any]]:
        return [m for m in self.messages().values() if container in text_of(m)]

    def wait_about(self, container: str, probe: Callable[[str], bool] = lambda _: True, timeout: float = 30) -> str:
        def found() -> str | None:
            for message in self.about(container):
                if probe(text_of(message)):
                    return text_of(message)
            return None

        return self.slack.wait_for(found, timeout=timeout, what=f"a message about {container}")


def text_of(args: dict[str, Any]) -> str:
    """Everything a message shows: its fallback text and the text of its blocks."""
    import json

    blocks = args.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return str(args.get("text", "")) + "\n" + json.dumps(blocks or [])


@pytest.fixture
def harness(docker_client: docker.DockerClient, tmp_path: Path, engine: Engine) -> Iterator[Harness]:
    slack = FakeSlack()
    client = build_web_client(Settings(slack_bot_token=slack.token, slack_api_url=slack.api_url))
    holder = Holder(load_policy_text(policy_text(), source="test policy"))
    made = Harness(slack=slack, client=client, store_path=tmp_path / "audit.db", engine=engine, holder=holder)
    yield made
    made.close()
    slack.close()


@pytest.fixture
def containers(docker_client: docker.DockerClient, image: str) -> Iterator[Callable[..., Any]]:
    """``run(name, *command, **options)``: a detached container from the test image, removed afterwards."""
    made: list[Any] = []

    def run(name: str, *command: str, **options: Any) -> Any:
        container = docker_client.containers.run(image, list(command), name=name, detach=True, **options)
        made.append(container)
        return container

    yield run
    for container in made:
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
