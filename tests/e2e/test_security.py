"""Requests chatdock must refuse: bad signatures (401, nothing runs), policy denials (ephemeral, naming the
rule), and forged or altered buttons."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from bot.serve import Server
from tests.e2e.conftest import CHANNEL, SlackDriver, all_text

pytestmark = pytest.mark.docker


def assert_nothing_named(docker_client: docker.DockerClient, name: str) -> None:
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(name)


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "stale timestamp", "future timestamp", "no signature", "no timestamp", "tampered body"],
)
def test_a_request_slack_did_not_sign_is_refused_with_401_and_nothing_runs(
    how: str, slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
):
    web = name("web")
    created.append(web)
    text = f"run -d --name {web} {image}"
    response_url = slack.fake.new_response_url()
    form = slack.command_form(text, user="UADMIN", command="/docker", channel="CGENERAL", response_url=response_url)
    body = urlencode(form)
    headers = slack.signed_headers(body)
    if how == "wrong secret":
        headers = slack.signed_headers(body, secret="f" * 32)
    elif how == "stale timestamp":
        headers = slack.signed_headers(body, timestamp=int(time.time()) - 6 * 60)
    elif how == "future timestamp":
        headers = slack.signed_headers(body, timestamp=int(time.time()) + 6 * 60)
    elif how == "no signature":
        del headers["X-Slack-Signature"]
    elif how == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif how == "tampered body":
        body = body.replace("UADMIN", "UVIEW1")  # signed as one user, sent as another

    sent = slack.post(body, headers, response_url)

    assert sent.response.status_code == 401
    time.sleep(1.0)  # had anything been started, it would have reached the engine by now
    assert_nothing_named(docker_client, web)
    assert slack.fake.posts_to(response_url) == []


def test_a_forged_button_click_needs_a_signature_too(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
):
    web = name("web")
    created.append(web)
    ran = slack.reply(slack.command(f"run -d --name {web} {image}"))
    container = docker_client.containers.get(web)
    payload = {
        "type": "block_actions",
        "user": {"id": "UADMIN"},
        "team": {"id": "T0TEAM"},
        "channel": {"id": "CGENERAL"},
        "response_url": slack.fake.new_response_url(),
        "actions": [
            {
                "action_id": "chatdock:stop",
                "value": json.dumps({"a": "stop", "c": container.id, "s": "running"}),
                "type": "button",
            }
        ],
        "message": ran,
    }
    body = urlencode({"payload": json.dumps(payload)})
    sent = slack.post(body, slack.signed_headers(body, secret="0" * 32), payload["response_url"])
    assert sent.response.status_code == 401
    time.sleep(0.5)
    assert docker_client.containers.get(web).status == "running"


def test_a_viewer_may_not_run_and_is_told_which_rule_said_so(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any
):
    web = name("web")
    sent = slack.command(f"run -d --name {web} {image}", user="UVIEW")

    assert sent.response.status_code == 200 and sent.elapsed < 3.0
    assert sent.ack["response_type"] == "ephemeral"  # only the requester sees a refusal
    shown = all_text(sent.ack)
    assert "Denied" in shown and "rule:" in shown
    assert_nothing_named(docker_client, web)
    time.sleep(0.5)
    assert slack.fake.posts_to(sent.response_url) == []  # the ack was the whole answer


def test_hard_refusals_apply_to_admins_too(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any
):
    web = name("web")
    sent = slack.command(f"run -d --privileged --name {web} {image}")
    assert sent.ack["response_type"] == "ephemeral"
    assert "never:" in all_text(sent.ack)
    assert_nothing_named(docker_client, web)


def test_an_image_outside_the_policy_is_refused(slack: SlackDriver, docker_client: docker.DockerClient, name: Any):
    web = name("web")
    sent = slack.command(f"run -d --name {web} alpine:3.19")
    # The grant check passes at once (admins may run); the image rule is checked with the Engine request, so
    # the refusal follows the in-channel ack, and only the requester sees it.
    refused = sent.ack if sent.ack["response_type"] == "ephemeral" else slack.reply(sent)
    assert refused["response_type"] == "ephemeral"
    assert "Denied" in all_text(refused) and "images" in all_text(refused)
    assert_nothing_named(docker_client, web)


def test_a_usage_error_shows_the_usage_line_only_to_the_requester(slack: SlackDriver):
    sent = slack.command("run -d --frobnicate busybox")
    assert sent.ack["response_type"] == "ephemeral"
    assert "--frobnicate" in all_text(sent.ack)
    assert "Usage" in all_text(sent.ack)


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        json.dumps({"a": "stop", "c": "web", "s": "running"}),  # a name, not a full ID
        json.dumps({"a": "kill", "c": "a" * 64, "s": "running"}),  # an action chatdock never draws
        json.dumps({"a": "stop", "c": "a" * 64, "s": "running", "x": 1}),
    ],
)
def test_an_altered_button_value_is_refused_and_nothing_happens(
    value: str, slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
):
    web = name("web")
    created.append(web)
    ran = slack.reply(slack.command(f"run -d --name {web} {image}"))
    container = docker_client.containers.get(web)

    refused = slack.reply(slack.click(ran, "stop", container_id=container.id, value=value))

    assert refused["response_type"] == "ephemeral" and refused["replace_original"] is False
    assert "not valid" in all_text(refused)
    assert docker_client.containers.get(web).status == "running"


def test_a_button_whose_action_id_and_value_disagree_is_refused(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
):
    """A Logs button altered to carry a stop value: the value and the action_id must name the same action."""
    web = name("web")
    created.append(web)
    ran = slack.reply(slack.command(f"run -d --name {web} {image}"))
    container = docker_client.containers.get(web)
    stop_value = json.dumps({"a": "stop", "c": container.id, "s": "running"}, separators=(",", ":"))

    refused = slack.reply(slack.click(ran, "logs", container_id=container.id, value=stop_value))

    assert "not valid" in all_text(refused)
    assert docker_client.containers.get(web).status == "running"


def test_buttons_on_a_removed_container_say_so(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
):
    web = name("web")
    created.append(web)
    ran = slack.reply(slack.command(f"run -d --name {web} {image}"))
    container = docker_client.containers.get(web)
    container.remove(force=True)

    gone = slack.reply(slack.click(ran, "stop", container_id=container.id))

    assert gone["response_type"] == "ephemeral"
    assert "no longer exists" in all_text(gone)


def test_signed_requests_to_other_paths_are_not_served(serve: Server, slack: SlackDriver):
    assert slack.http.get("/slack/events").status_code == 405
    assert slack.http.post("/anything", content=b"x").status_code == 404


def test_a_signed_command_replayed_within_five_minutes_runs_once(
    slack: SlackDriver, image: str, name: Any, docker_client: Any
) -> None:
    """Slack never retries a slash command, so the same trigger_id twice is a captured request sent again."""
    label = f"cdt.replay={name('replay')}"
    response_url = slack.fake.new_response_url()
    form = slack.command_form(
        f"run -d -l {label} {image}", user="UADMIN", command="/docker", channel=CHANNEL, response_url=response_url
    )
    body = urlencode(form)

    first = slack.post(body, slack.signed_headers(body), response_url)
    replayed = slack.post(body, slack.signed_headers(body), response_url)  # fresh, valid signature

    assert first.response.status_code == 200 and replayed.response.status_code == 200
    assert "already received" in all_text(replayed.ack)
    slack.reply(first)
    made = docker_client.containers.list(all=True, filters={"label": label})
    try:
        assert len(made) == 1
    finally:
        for container in made:
            container.remove(force=True)
