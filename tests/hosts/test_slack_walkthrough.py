"""The several-hosts checks of issue 11 from Slack, end to end (chatdock's real HTTP server, signed requests, the
second real engine): the notes' walkthrough with ``--context``, policy per host, ``context ls`` following a
stopped engine and its return, and a button naming a host that is no longer configured."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from bot.hosts import HostSet, load_hosts_text
from bot.pipeline import Pipeline
from bot.policy import load_policy_text
from bot.serve import Server, build_server
from handlers import build_registry
from tests.e2e.conftest import SlackDriver, all_text, e2e_settings
from tests.hosts.conftest import hosts_yaml
from tests.support.fake_slack import FakeSlack
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import SecondEngine

pytestmark = pytest.mark.docker

POLICY = """
roles:
  viewer: {commands: [ps, inspect, logs, port, top, stats, network ls, network inspect, context ls, context inspect]}
  admin:  {include: [viewer], commands: [run, stop, start, restart, rm, exec, network create, network connect,
           network rm]}
grants:
  - {role: admin, users: [UADMIN]}
  - {role: admin, users: [UALICE], hosts: [second]}          # admin on staging only
  - {role: viewer, users: [UALICE], host_labels: {env: prod}} # a viewer on prod
images: ["@local"]
ports: ["9000-9999"]
"""


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def slack(fake_slack: FakeSlack, second_engine: SecondEngine) -> Iterator[SlackDriver]:
    hosts = HostSet(load_hosts_text(hosts_yaml(second_engine, extra="channels: {CSTAGING: second}\n")), timeout=20)
    policy = load_policy_text(POLICY, known_commands=[*build_registry().names(), "history"])
    pipeline = Pipeline(
        engine=hosts.engine("local"),
        hosts=hosts,
        policy=policy,
        registry=build_registry(),
        run_timeout=20,
        exec_timeout=15,
    )
    server: Server = build_server(e2e_settings(fake_slack), pipeline=pipeline, host="127.0.0.1", port=0)
    server.start()
    driver = SlackDriver(server.url, fake_slack)
    yield driver
    driver.close()
    server.stop(drain=30)
    hosts.close()


@pytest.fixture
def second_client(second_engine: SecondEngine) -> Iterator[docker.DockerClient]:
    client = second_engine.client()
    yield client
    client.close()


def _remove(client: docker.DockerClient, *names: str) -> None:
    for ref in names:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(ref).remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.networks.get(ref).remove()


def _said(
    slack: SlackDriver, text: str, *, user: str = "UADMIN", channel: str = "CGENERAL", refused: bool = False
) -> str:
    """The reply to ``text``; for a refusal, the ack (it is the whole answer: admission needs no engine)."""
    sent = slack.command(text, user=user, channel=channel)
    assert sent.response.status_code == 200 and sent.elapsed < 3.0, sent.response.text
    return all_text(sent.ack) if refused else all_text(slack.reply(sent))


def test_the_walkthrough_from_slack_with_context(
    slack: SlackDriver, second_client: docker.DockerClient, docker_client: docker.DockerClient, name: Any
) -> None:
    web, es, client, net = name("web"), name("es"), name("client"), name("app")

    def say(text: str) -> str:
        reply = _said(slack, f"--context second {text}")
        assert "host second" in reply, reply
        return reply

    try:
        say(f"run -d -p 9094:80 --name {web} {TEST_IMAGE}")
        assert second_client.containers.get(web).status == "running"
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(web)  # the first engine never saw it
        assert web in say("ps")
        assert "80/tcp -&gt; 0.0.0.0:9094" in say(f"port {web}")
        assert "index.html" in say(f"exec {web} ls /www")
        say(f"stop {web}")
        assert second_client.containers.get(web).status == "exited"
        say(f"start {web}")
        assert second_client.containers.get(web).status == "running"
        say(f"network create {net}")
        say(f"run -d --net {net} --net-alias search --name {es} {TEST_IMAGE}")
        say(f"run -d --name {client} {TEST_IMAGE} sleep 3600")
        say(f"network connect {net} {client}")
        assert "chatdock test" in say(f"exec {client} wget -qO- http://search/")
        assert net in say("network ls")
        say(f"rm -f {web}, {es}, {client}")
        say(f"network rm {net}")
        assert not second_client.containers.list(all=True, filters={"name": web})
        with pytest.raises(docker.errors.NotFound):
            second_client.networks.get(net)
    finally:
        _remove(second_client, web, es, client, net)


def test_policy_per_host_from_slack(slack: SlackDriver, second_client: docker.DockerClient, name: Any) -> None:
    web = name("web")
    try:
        ran = _said(slack, f"--context second run -d --name {web} {TEST_IMAGE}", user="UALICE")
        assert "host second" in ran and second_client.containers.get(web).status == "running"
        # the same engine as "secure", but that host is prod: alice only views there
        refused = _said(slack, f"--context secure stop {web}", user="UALICE", refused=True)
        assert "no grant lets UALICE in channel CGENERAL run `stop` on host secure" in refused, refused
        assert second_client.containers.get(web).status == "running"  # a denied request changes nothing
        assert web in _said(slack, "--context secure ps", user="UALICE")
        denied_here = _said(slack, "ps", user="UALICE", refused=True)  # the default host (local) grants alice nothing
        assert "run `ps` on host local" in denied_here, denied_here
        # the staging channel's default is second, where alice is an admin
        assert web in _said(slack, "ps", user="UALICE", channel="CSTAGING")
    finally:
        _remove(second_client, web)


def test_context_ls_from_slack_follows_a_stopped_engine(slack: SlackDriver, second_engine: SecondEngine) -> None:
    def rows() -> dict[str, str]:
        listed = _said(slack, "context ls")
        return {line.split()[0]: line for line in listed.splitlines() if line.split()[:1] in (["local"], ["second"])}

    before = rows()
    assert " reachable" in before["second"] and " reachable" in before["local"]
    second_engine.stop()
    try:
        down = rows()
        assert "unreachable" in down["second"], down
        assert "unreachable" not in down["local"], down
        failed = _said(slack, "--context second ps")
        assert "host second" in failed, failed
    finally:
        second_engine.start()
    back = rows()
    assert "unreachable" not in back["second"] and "reachable" in back["second"], back
    assert "host second" in _said(slack, "--context second ps")


def test_a_button_for_a_host_no_longer_configured_does_nothing(
    slack: SlackDriver, second_client: docker.DockerClient, name: Any
) -> None:
    web = name("web")
    try:
        sent = slack.command(f"--context second run -d --name {web} {TEST_IMAGE}")
        ran = slack.reply(sent)
        button = next(
            json.loads(element["value"])
            for block in ran["blocks"]
            if block.get("type") == "actions"
            for element in block["elements"]
            if element.get("action_id") == "chatdock:stop"
        )
        assert button["h"] == "second"
        forged = json.dumps({**button, "h": "gone"}, separators=(",", ":"))
        answer = all_text(slack.reply(slack.click(ran, "stop", value=forged)))
        assert 'context "gone" does not exist' in answer, answer
        assert second_client.containers.get(web).status == "running"  # neither "gone" nor the default host acted
    finally:
        _remove(second_client, web)
