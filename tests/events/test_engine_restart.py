"""A watched engine stopped and started while its containers die: host unreachable, back, and the deaths of
the gap still reported (the second real engine of tests/hosts, which can be stopped without harming others)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import docker
import pytest

from bot.engine import Engine
from bot.hosts import HostSet
from tests.events.conftest import CHANNEL, Harness, text_of
from tests.hosts.conftest import second_engine  # noqa: F401  (the session fixture, shared)
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import SecondEngine


@pytest.fixture
def second(second_engine: SecondEngine) -> Iterator[HostSet]:  # noqa: F811
    engine = Engine(base_url=second_engine.unix_url, timeout=10)
    yield HostSet.single(engine)
    engine.close()


def test_the_engine_restarted_while_containers_die(
    harness: Harness,
    second: HostSet,
    second_engine: SecondEngine,  # noqa: F811
    name: str,
) -> None:
    client = docker.DockerClient(base_url=second_engine.unix_url, timeout=30)
    victim = name("victim")  # type: ignore[operator]
    client.containers.run(
        TEST_IMAGE, ["sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"], name=victim, detach=True
    )
    client.close()
    harness.service(hosts=second)
    second_engine.stop()
    try:
        harness.slack.wait_for(
            lambda: any("unreachable" in text_of(m) for m in harness.messages().values()) or None,
            what="host unreachable",
        )
    finally:
        second_engine.start()
    harness.slack.wait_for(
        lambda: any("could not be read" in text_of(m) for m in harness.messages().values()) or None,
        what="the gap notice",
    )
    text = harness.wait_about(victim, timeout=30)
    assert "exit 3" in text and "crashed" in text
    harness.slack.wait_for(
        lambda: (
            any(re.search(r"host \*default\* back|host back", text_of(m)) for m in harness.messages().values()) or None
        ),
        what="host back",
    )
    posts = [c for c in harness.slack.calls_to("chat.postMessage") if c.args.get("channel") == CHANNEL]
    assert len([c for c in posts if victim in text_of(c.args)]) == 1
    client = docker.DockerClient(base_url=second_engine.unix_url, timeout=30)
    try:
        client.containers.get(victim).remove(force=True)
    finally:
        client.close()
    time.sleep(0.1)
