"""Several hosts from Slack, end to end: chatdock's real HTTP server, signed slash commands and button clicks,
two real engines and a hung one. The ack names the host; the button acts on the host its message came from,
whatever the channel's default says; acks stay fast while a configured host hangs."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from bot.hosts import HostSet, load_hosts_text
from bot.pipeline import Pipeline
from bot.policy import Policy
from bot.serve import Server, build_server
from handlers import build_registry
from tests.e2e.conftest import SlackDriver, all_text, e2e_settings
from tests.hosts.conftest import hosts_yaml
from tests.support.fake_slack import FakeSlack
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import HungEngine, SecondEngine

pytestmark = pytest.mark.docker


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(usergroups=[{"id": "SOPS", "handle": "ops", "users": ["UOPS"]}])
    yield fake
    fake.close()


@pytest.fixture
def hosted(
    fake_slack: FakeSlack, team_policy: Policy, second_engine: SecondEngine, hung_engine: HungEngine
) -> Iterator[SlackDriver]:
    extra = f"  hung: {{url: '{hung_engine.url}', timeout: 3, workers: 2}}\nchannels: {{CSTAGING: second}}\n"
    hosts = HostSet(load_hosts_text(hosts_yaml(second_engine, extra=extra)), timeout=20)
    pipeline = Pipeline(
        engine=hosts.engine("local"),
        hosts=hosts,
        policy=team_policy,
        registry=build_registry(),
        run_timeout=20,
        exec_timeout=15,
    )
    server: Server = build_server(e2e_settings(fake_slack), pipeline=pipeline, host="127.0.0.1", port=0)
    server.start()
    server.groups.loaded.wait(5)
    driver = SlackDriver(server.url, fake_slack)
    yield driver
    driver.close()
    server.stop(drain=30)
    hosts.close()


def _button_host(message: dict[str, Any], action: str) -> str | None:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == f"chatdock:{action}":
                return json.loads(element["value"]).get("h")
    return None


def test_from_slack_on_the_second_host(hosted: SlackDriver, second_engine: SecondEngine, name: Any) -> None:
    web = name("web")
    client = second_engine.client()
    try:
        sent = hosted.command(f"--context second run -d --name {web} {TEST_IMAGE}")
        assert sent.response.status_code == 200 and sent.elapsed < 3.0
        assert "docker --context second run -d" in all_text(sent.ack)
        assert "host second" in all_text(sent.ack)
        ran = hosted.reply(sent)
        assert "host second" in all_text(ran)
        assert client.containers.get(web).status == "running"
        assert _button_host(ran, "stop") == "second"

        # The click comes from a channel whose default is another host: it still acts on "second".
        stopped = hosted.reply(hosted.click(ran, "stop", channel="CGENERAL"))
        assert stopped["replace_original"] is True, all_text(stopped)
        assert "stopped by <@UADMIN>" in all_text(stopped) and "host second" in all_text(stopped)
        assert client.containers.get(web).status == "exited"

        # The staging channel's default is "second": no --context needed there.
        listed = hosted.reply(hosted.command("ps -a", channel="CSTAGING"))
        assert web in all_text(listed) and "host second" in all_text(listed)

        removed = hosted.reply(hosted.click(stopped, "rm"))
        assert "removed by <@UADMIN>" in all_text(removed)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(web)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(web).remove(force=True)
        client.close()


def test_acks_stay_fast_and_other_hosts_answer_while_one_hangs(hosted: SlackDriver) -> None:
    stuck = [hosted.command("--context hung ps") for _ in range(3)]
    assert all(s.response.status_code == 200 and s.elapsed < 3.0 for s in stuck)
    started = time.monotonic()
    for _ in range(5):
        sent = hosted.command("ps")
        assert sent.response.status_code == 200 and sent.elapsed < 3.0
        reply = hosted.reply(sent, timeout=10)
        assert "host local" in all_text(reply)
    assert time.monotonic() - started < 10
    failures = [all_text(hosted.reply(s, timeout=20)) for s in stuck]
    assert all("host hung" in text for text in failures), failures
