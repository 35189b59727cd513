"""The notes' walkthrough, from Slack: run a web server, look at it, stop/start/remove it with buttons, networks."""

from __future__ import annotations

from typing import Any

import docker
import httpx
import pytest

from tests.e2e.conftest import CHANNEL, SlackDriver, all_text, has_button

pytestmark = pytest.mark.docker


def acked_in_channel(sent: Any, text: str) -> None:
    """The immediate answer: HTTP 200 well within 3 s, in the channel, naming the command."""
    assert sent.response.status_code == 200, sent.response.text
    assert sent.elapsed < 3.0
    assert sent.ack["response_type"] == "in_channel"
    assert text in all_text(sent.ack)


def test_run_a_web_server_then_stop_start_and_remove_it_with_buttons(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, host_port: Any, created: list[str]
):
    web, port = name("web"), host_port()
    created.append(web)

    sent = slack.command(f"run -d -p {port}:80 --name {web} {image}")
    acked_in_channel(sent, f"docker run -d -p {port}:80 --name {web}")
    ran = slack.reply(sent)
    assert ran["response_type"] == "in_channel"
    assert web in all_text(ran)
    container = docker_client.containers.get(web)
    assert container.status == "running"
    assert "chatdock test" in httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text

    listed = slack.reply(slack.command("ps"))
    assert web in all_text(listed)

    # A viewer may look but not stop: only they hear why, and the container keeps running.
    refused = slack.reply(slack.click(ran, "stop", user="UVIEW", container_id=container.id))
    assert refused["response_type"] == "ephemeral"
    assert refused["replace_original"] is False
    assert "Denied" in all_text(refused)
    assert docker_client.containers.get(web).status == "running"

    # The admin's click replaces the message: "stopped by @admin", with the buttons an exited container gets.
    click = slack.click(ran, "stop", container_id=container.id)
    assert click.response.status_code == 200 and click.elapsed < 3.0
    stopped = slack.reply(click)
    assert stopped["replace_original"] is True
    assert "stopped by <@UADMIN>" in all_text(stopped)
    assert docker_client.containers.get(web).status == "exited"
    assert has_button(stopped, "start", container.id) and has_button(stopped, "rm", container.id)

    # The first message's Stop button is now stale: nothing happens, and the clicker is told why.
    stale = slack.reply(slack.click(ran, "stop", container_id=container.id))
    assert stale["response_type"] == "ephemeral" and stale["replace_original"] is False
    assert "changed since" in all_text(stale)

    started = slack.reply(slack.click(stopped, "start", container_id=container.id))
    assert started["replace_original"] is True
    assert "started by <@UADMIN>" in all_text(started)
    assert docker_client.containers.get(web).status == "running"

    logs = slack.click(started, "logs", container_id=container.id)
    shown = slack.reply(logs)
    assert shown["replace_original"] is False  # logs are a new reply; the card stays
    assert shown["response_type"] == "in_channel"

    stopped_again = slack.reply(slack.click(started, "stop", container_id=container.id))
    removed = slack.reply(slack.click(stopped_again, "rm", container_id=container.id))
    assert removed["replace_original"] is True
    assert "removed by <@UADMIN>" in all_text(removed)
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(web)


def test_group_grants_come_from_slack_user_groups(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
):
    """UOPS is in the SOPS user group (usergroups.list), which operates containers in #ops (COPS) only."""
    web = name("web")
    created.append(web)
    ran = slack.reply(slack.command(f"run -d --name {web} {image}"))
    container_id = docker_client.containers.get(web).id

    elsewhere = slack.reply(slack.click(ran, "stop", user="UOPS", container_id=container_id))
    assert elsewhere["response_type"] == "ephemeral"
    assert docker_client.containers.get(web).status == "running"

    in_ops = slack.reply(slack.click(ran, "stop", user="UOPS", channel="COPS", container_id=container_id))
    assert "stopped by <@UOPS>" in all_text(in_ops)
    assert docker_client.containers.get(web).status == "exited"


def test_a_network_joins_containers_by_name_and_alias(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
):
    net, es, client = name("net"), name("web"), name("client")
    created.extend([es, client, net])

    sent = slack.command(f"create {net}", command="/net")
    acked_in_channel(sent, f"network create {net}")
    assert net in all_text(slack.reply(sent))
    assert docker_client.networks.get(net).name == net

    slack.reply(slack.command(f"run -d --net {net} --net-alias search --name {es} {image}"))
    slack.reply(slack.command(f"run -d --net {net} --name {client} {image} sleep 3600"))

    looked_up = slack.reply(slack.command(f"exec {client} nslookup search"), timeout=60)
    assert "Address" in all_text(looked_up), all_text(looked_up)
    fetched = slack.reply(slack.command(f"exec {client} wget -qO- http://{es}/"), timeout=60)
    assert "chatdock test" in all_text(fetched)

    # inspect's reply carries the whole document as a file, so it goes out with chat.postMessage + an upload
    sent = slack.command(f"inspect {net}", command="/net")
    posted = slack.posted(f"network inspect {net}")
    assert posted["channel"] == CHANNEL
    upload = slack.fake.wait_for(lambda: slack.fake.calls_to("files.completeUploadExternal"), what="an upload")
    assert upload[0].args["thread_ts"] and upload[0].args["channel_id"] == CHANNEL
    assert any(es.encode() in body for body in slack.fake.uploads.values())
    assert slack.fake.posts_to(sent.response_url) == []


def test_a_command_in_another_channel_replies_there(slack: SlackDriver):
    sent = slack.command("ps -a", channel="CELSEWHERE")
    assert sent.response.status_code == 200 and sent.ack == {}
    assert slack.reply(sent)["response_type"] == "in_channel"
    assert CHANNEL != "CELSEWHERE"
