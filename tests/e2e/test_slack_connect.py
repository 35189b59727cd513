"""Slack Connect: people from another organisation in a shared channel are not "anyone".

The server learns its own workspace from ``auth.test`` (the fake answers ``T0TEAM``). A person whose own
workspace is another (``team_id``/``user_team`` of a command, ``user.team_id`` of a click) matches only grants
that name them by user ID or admit their workspace in ``teams``; by command and by button alike. The audit log
records their own workspace.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.audit import AuditStore, open_audit
from bot.engine import Engine
from bot.policy import load_policy_text
from bot.serve import Server, build_server
from handlers import build_registry
from tests.conftest import make_pipeline
from tests.e2e.conftest import TEAM, SlackDriver, all_text, e2e_settings
from tests.support.fake_slack import FakeSlack
from tests.support.image import TEST_IMAGE

pytestmark = pytest.mark.docker

PARTNER = "T0PARTNER"
OUTSIDER = "U0PARTNER"

POLICY = f"""
roles:
  viewer:   {{commands: [ps, help, history]}}
  operator: {{include: [viewer], commands: [start, stop, restart]}}
  admin:    {{include: [operator], commands: [run, rm]}}
grants:
  - {{role: admin, users: [UADMIN]}}
  - {{role: operator, users: ["*"]}}
images: ["{TEST_IMAGE.split(":")[0]}"]
"""
ADMITTING = POLICY.replace('users: ["*"]}', f'users: ["*"], teams: [{PARTNER}]}}')
NAMING = POLICY.replace("  - {role: admin,", f"  - {{role: viewer, users: [{OUTSIDER}]}}\n  - {{role: admin,")


@pytest.fixture
def connect(fake_slack: FakeSlack, engine: Engine, tmp_path: Path) -> Iterator[Any]:
    """``connect(policy_text)`` → (SlackDriver, AuditStore) for a server with that policy and an audit log."""
    opened: list[tuple[Server, SlackDriver, AuditStore]] = []

    def start(text: str) -> tuple[SlackDriver, AuditStore]:
        policy = load_policy_text(text, known_commands=[*build_registry().names(), "history"])
        store = open_audit(str(tmp_path / f"audit-{len(opened)}.db"))
        pipeline = make_pipeline(engine, policy, auditor=store, history=store.recent, run_timeout=20)
        server = build_server(e2e_settings(fake_slack), pipeline=pipeline, host="127.0.0.1", port=0)
        server.start()
        driver = SlackDriver(server.url, fake_slack)
        opened.append((server, driver, store))
        return driver, store

    yield start
    for server, driver, store in opened:
        driver.close()
        server.stop(drain=20)
        store.close()


def rows_of(store: AuditStore, user: str) -> list[dict[str, Any]]:
    return [row for row in store.export() if row["user"] == user]


def running(slack: SlackDriver, docker_client: docker.DockerClient, name: str) -> tuple[dict[str, Any], Any]:
    """An admin of the home workspace starts ``name``; the reply (with its buttons) and the container."""
    ran = slack.reply(slack.command(f"run -d --name {name} {TEST_IMAGE}"))
    return ran, docker_client.containers.get(name)


@pytest.mark.parametrize(
    ("how", "team", "extra"),
    [
        ("team_id is their own workspace", PARTNER, {}),
        ("user_team names their own workspace", TEAM, {"user_team": PARTNER}),
    ],
)
def test_a_person_from_another_organisation_is_not_anyone_by_command(
    how: str, team: str, extra: dict[str, str], connect: Any
):
    slack, store = connect(POLICY)
    sent = slack.command("ps", user=OUTSIDER, team=team, extra=extra)

    assert sent.response.status_code == 200 and sent.elapsed < 3.0
    assert sent.ack["response_type"] == "ephemeral"
    assert "Denied" in all_text(sent.ack) and "default-deny" in all_text(sent.ack)
    [row] = rows_of(store, OUTSIDER)
    assert (row["outcome"], row["user_team"], row["source"]) == ("denied", PARTNER, "slack")

    home = slack.command("ps", user="UHOMER")  # the same grant admits the installing workspace's people
    assert "Denied" not in all_text(home.ack) and "Denied" not in all_text(slack.reply(home))
    assert rows_of(store, "UHOMER")[0]["user_team"] == TEAM


def test_a_person_from_another_organisation_is_not_anyone_by_button(
    connect: Any, docker_client: docker.DockerClient, name: Any, created: list[str]
):
    slack, store = connect(POLICY)
    web = name("web")
    created.append(web)
    ran, container = running(slack, docker_client, web)

    refused = slack.reply(slack.click(ran, "stop", user=OUTSIDER, user_team=PARTNER, container_id=container.id))

    assert refused["response_type"] == "ephemeral" and refused["replace_original"] is False
    assert "Denied" in all_text(refused)
    assert docker_client.containers.get(web).status == "running"
    [row] = rows_of(store, OUTSIDER)
    assert (row["outcome"], row["user_team"], row["source"]) == ("denied", PARTNER, "button")

    # clicking in their own workspace's copy of the channel (team.id theirs too) changes nothing
    again = slack.click(ran, "stop", user=OUTSIDER, user_team=PARTNER, team=PARTNER, container_id=container.id)
    assert "Denied" in all_text(slack.reply(again))
    assert docker_client.containers.get(web).status == "running"


def test_a_grant_that_admits_their_workspace_lets_them_in_by_command_and_button(
    connect: Any, docker_client: docker.DockerClient, name: Any, created: list[str]
):
    slack, store = connect(ADMITTING)
    web = name("web")
    created.append(web)
    ran, container = running(slack, docker_client, web)

    listed = slack.command("ps", user=OUTSIDER, team=PARTNER)
    assert web in all_text(slack.reply(listed))
    stopped = slack.reply(slack.click(ran, "stop", user=OUTSIDER, user_team=PARTNER, container_id=container.id))
    assert stopped["replace_original"] is True and f"stopped by <@{OUTSIDER}>" in all_text(stopped)
    container.reload()
    assert container.status == "exited"
    assert [(row["outcome"], row["user_team"]) for row in rows_of(store, OUTSIDER)] == [
        ("ok", PARTNER),
        ("ok", PARTNER),
    ]
    other = slack.command("ps", user="U0STRANGER", team="T0OTHER")  # another organisation still is not admitted
    assert "Denied" in all_text(other.ack)


def test_a_grant_naming_them_by_user_id_lets_them_in(connect: Any):
    slack, store = connect(NAMING)
    sent = slack.command("ps", user=OUTSIDER, team=PARTNER)
    assert "Denied" not in all_text(sent.ack) and "Denied" not in all_text(slack.reply(sent))
    assert rows_of(store, OUTSIDER)[0]["user_team"] == PARTNER
