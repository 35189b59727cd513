"""From Slack: a container's secret environment values stay out of the channel, by command and by Logs button."""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest

from tests.e2e.conftest import SlackDriver, all_text

pytestmark = pytest.mark.docker

SECRET = "hunter2-0xC0FFEE"


def test_logs_button_exec_and_logs_mask_the_containers_secrets(
    slack: SlackDriver, docker_client: docker.DockerClient, image: str, name: Any, created: list[str]
) -> None:
    web = name("web")
    created.append(web)
    ran = slack.reply(
        slack.command(
            f"run -d --name {web} -e DB_PASSWORD={SECRET} {image} sh -c 'echo db password {SECRET}; sleep 300; echo'"
        )
    )
    container = docker_client.containers.get(web)
    assert SECRET in container.logs().decode()  # the engine has it; the channel must not

    clicked = slack.reply(slack.click(ran, "logs", container_id=container.id))
    assert "db password ***" in all_text(clicked)
    assert SECRET not in json.dumps(clicked)

    typed = slack.reply(slack.command(f"logs {web}"))
    assert "db password ***" in all_text(typed) and SECRET not in json.dumps(typed)

    env = slack.reply(slack.command(f"exec {web} env"))
    assert "DB_PASSWORD=***" in all_text(env) and SECRET not in json.dumps(env)

    top = slack.reply(slack.command(f"top {web}"))
    assert "echo db password ***" in all_text(top) and SECRET not in json.dumps(top)


def test_the_ack_echo_masks_a_secret_env_value_typed_again_as_an_argument(slack: SlackDriver, image: str) -> None:
    """``run --rm -e DB_PASSWORD=fgsecret777 IMAGE echo fgsecret777``: the "⏳ ran …" echo masks both."""
    sent = slack.command(f"run --rm -e DB_PASSWORD=fgsecret777 {image} echo fgsecret777")
    echo = json.dumps(sent.ack, ensure_ascii=False)
    assert "fgsecret777" not in echo and "DB_PASSWORD=***" in echo and "echo ***" in echo
    reply = slack.reply(sent)
    assert "fgsecret777" not in json.dumps(reply)
