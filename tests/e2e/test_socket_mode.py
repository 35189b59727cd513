"""Socket Mode: the same listeners answer what SocketModeHandler hands bolt (``BoltRequest(mode="socket_mode")``,
no signature), and the port then serves only /healthz."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import docker
import httpx
import pytest
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_bolt.request import BoltRequest
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.audit import open_audit
from bot.engine import Engine
from bot.policy import Policy
from bot.serve import Server, build_server
from tests.conftest import make_pipeline
from tests.e2e.conftest import SlackDriver, all_text, e2e_settings, find_button
from tests.support.fake_slack import FakeSlack

pytestmark = pytest.mark.docker


@pytest.fixture
def socket_server(fake_slack: FakeSlack, engine: Engine, team_policy: Policy) -> Iterator[Server]:
    settings = e2e_settings(fake_slack, slack_app_token="xapp-1-A0CHATDOCK-1-abcdef", slack_signing_secret=None)
    server = build_server(
        settings, pipeline=make_pipeline(engine, team_policy), host="127.0.0.1", port=0, socket_mode=True
    )
    server.start()  # health only: the socket itself is never opened in tests
    yield server
    server.stop(drain=30)


def envelope(kind: str, payload: dict[str, Any]) -> SocketModeRequest:
    return SocketModeRequest(type=kind, envelope_id="e-1", payload=payload, accepts_response_payload=True)


def test_a_slash_command_over_the_socket_runs_the_same_listener(
    socket_server: Server,
    fake_slack: FakeSlack,
    docker_client: docker.DockerClient,
    image: str,
    name: Any,
    created: list[str],
):
    web = name("web")
    created.append(web)
    response_url = fake_slack.new_response_url()
    form = SlackDriver.command_form(
        f"run -d --name {web} {image}", user="UADMIN", command="/docker", channel="CGENERAL", response_url=response_url
    )

    response = run_bolt_app(socket_server.app, envelope("slash_commands", form))  # as SocketModeHandler does

    assert response.status == 200
    ack = json.loads(response.body)
    assert ack["response_type"] == "in_channel" and f"--name {web}" in all_text(ack)
    ran = fake_slack.wait_posts(response_url)[0]
    assert web in all_text(ran)
    container = docker_client.containers.get(web)
    assert container.status == "running"

    # a click over the socket: the same button listener, as the clicker
    block_id, button = find_button(ran, "stop", container.id)
    click_url = fake_slack.new_response_url()
    payload = {
        "type": "block_actions",
        "user": {"id": "UVIEW", "username": "uview", "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM"},
        "channel": {"id": "CGENERAL"},
        "container": {"type": "message", "message_ts": "1.000100", "channel_id": "CGENERAL"},
        "message": {"ts": "1.000100", "blocks": ran["blocks"]},
        "response_url": click_url,
        "actions": [{**button, "block_id": block_id, "type": "button", "action_ts": "1.2"}],
    }
    request = BoltRequest(mode="socket_mode", body=payload)
    assert socket_server.app.dispatch(request).status == 200
    refused = fake_slack.wait_posts(click_url)[0]
    assert refused["response_type"] == "ephemeral" and "Denied" in all_text(refused)
    assert docker_client.containers.get(web).status == "running"


def test_without_a_signing_secret_http_requests_can_never_verify(socket_server: Server, fake_slack: FakeSlack):
    """Socket Mode has no signing secret; even so an HTTP request signed with an empty key must not pass."""
    form = SlackDriver.command_form(
        "ps", user="UADMIN", command="/docker", channel="C1", response_url=fake_slack.new_response_url()
    )
    body = urlencode(form)
    timestamp = str(int(time.time()))
    empty_key = hmac.new(b"", f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": f"v0={empty_key}"}
    assert socket_server.app.dispatch(BoltRequest(body=body, headers=headers)).status == 401


def test_in_socket_mode_the_port_serves_only_health(socket_server: Server):
    health = httpx.get(f"{socket_server.url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"engine": True, "slack_client": False}  # the socket is not connected
    assert httpx.post(f"{socket_server.url}/slack/events", content=b"x", timeout=10).status_code == 404


def test_two_socket_mode_replicas_handed_the_same_request_run_it_once(
    fake_slack: FakeSlack, engine: Engine, team_policy: Policy, docker_client: docker.DockerClient, image: str, tmp_path
):
    """Each replica holds its own connection; if Slack (or a reconnect) hands the same payload to both, the
    claim in the shared store lets exactly one of them run it. Two stores on one SQLite file stand in for
    PostgreSQL here (tests/replicas runs real replicas on PostgreSQL)."""
    settings = e2e_settings(fake_slack, slack_app_token="xapp-1-A0CHATDOCK-1-abcdef", slack_signing_secret=None)
    servers = []
    for _ in range(2):
        store = open_audit(str(tmp_path / "audit.db"))
        pipeline = make_pipeline(engine, team_policy, auditor=store)
        server = build_server(settings, pipeline=pipeline, host="127.0.0.1", port=0, socket_mode=True)
        server.start()
        servers.append((server, store))
    label = f"cdt.socket={uuid.uuid4().hex[:8]}"
    try:
        response_url = fake_slack.new_response_url()
        form = SlackDriver.command_form(
            f"run -d -l {label} {image} sleep 60",
            user="UADMIN",
            command="/docker",
            channel="CGENERAL",
            response_url=response_url,
        )
        acks = [json.loads(run_bolt_app(s.app, envelope("slash_commands", form)).body or b"{}") for s, _ in servers]
        assert "already received" not in all_text(acks[0]) and "already received" in all_text(acks[1])
        ran = fake_slack.wait_posts(response_url)[0]
        time.sleep(1.0)
        assert len(fake_slack.posts_to(response_url)) == 1
        [container] = docker_client.containers.list(all=True, filters={"label": label})

        block_id, button = find_button(ran, "stop", container.id)
        click_url = fake_slack.new_response_url()
        payload = {
            "type": "block_actions",
            "user": {"id": "UADMIN", "username": "uadmin", "team_id": "T0TEAM"},
            "team": {"id": "T0TEAM"},
            "channel": {"id": "CGENERAL"},
            "container": {"type": "message", "message_ts": "1.000200", "channel_id": "CGENERAL"},
            "message": {"ts": "1.000200", "blocks": ran["blocks"]},
            "response_url": click_url,
            "actions": [{**button, "block_id": block_id, "type": "button", "action_ts": "1.3"}],
        }
        for server, _ in servers:
            assert server.app.dispatch(BoltRequest(mode="socket_mode", body=payload)).status == 200
        stopped = fake_slack.wait_posts(click_url)[0]
        time.sleep(1.0)
        assert len(fake_slack.posts_to(click_url)) == 1 and "stopped by <@UADMIN>" in all_text(stopped)
        rows = [r for r in servers[0][1].export() if r["source"] == "button"]
        assert [r["outcome"] for r in rows] == ["ok"]
    finally:
        for server, store in servers:
            server.stop(drain=30)
            store.close()
        for container in docker_client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
