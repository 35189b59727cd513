"""The whole bot, driven over HTTP exactly as Slack drives it, against the real Docker engine.

``serve`` starts chatdock's real HTTP server (:func:`bot.serve.build_server`, waitress, bolt) on 127.0.0.1 and a
random port, with the team policy and a pipeline on the real engine. A local fake (tests/support/fake_slack.py)
stands in for Slack's Web API and for response_urls. :class:`SlackDriver` sends signed, form-encoded slash
commands and ``payload=`` button clicks, and reads what chatdock posted back.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import docker
import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.config import Settings
from bot.engine import Engine
from bot.policy import Policy
from bot.serve import Server, build_server
from tests.conftest import make_pipeline
from tests.support.fake_slack import FakeSlack

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
REQUEST_ID = re.compile(r"request [0-9a-f]{8}")
TEAM = "T0TEAM"
CHANNEL = "CGENERAL"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(usergroups=[{"id": "SOPS", "handle": "ops", "users": ["UOPS"]}])
    yield fake
    fake.close()


def e2e_settings(fake: FakeSlack, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": fake.token,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "workers": 16,
        **extra,
    }
    return Settings(**values)


@pytest.fixture
def serve(fake_slack: FakeSlack, engine: Engine, team_policy: Policy) -> Iterator[Server]:
    pipeline = make_pipeline(engine, team_policy, run_timeout=20, exec_timeout=15)
    server = build_server(e2e_settings(fake_slack), pipeline=pipeline, host="127.0.0.1", port=0)
    server.start()
    server.groups.loaded.wait(5)
    yield server
    server.stop(drain=30)


@dataclass
class Sent:
    response: httpx.Response
    elapsed: float
    response_url: str
    channel: str = ""
    user: str = ""
    posts_before: int = 0  # chat.postMessage calls the fake had seen when this was sent

    @property
    def ack(self) -> dict[str, Any]:
        return self.response.json() if self.response.content else {}


class SlackDriver:
    """Plays Slack's part: what it POSTs to chatdock, and what it received back."""

    def __init__(self, base_url: str, fake: FakeSlack, secret: str = SIGNING_SECRET) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self.fake = fake
        self.secret = secret
        self._claimed: dict[int, int] = {}  # chat.postMessage call index → the Sent it answered

    def close(self) -> None:
        self.http.close()

    def signed_headers(self, body: str, *, timestamp: int | None = None, secret: str | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret or self.secret).generate_signature(timestamp=ts, body=body)
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }

    def post(self, body: str, headers: dict[str, str], response_url: str) -> Sent:
        started = time.monotonic()
        response = self.http.post("/slack/events", content=body.encode(), headers=headers)
        return Sent(response=response, elapsed=time.monotonic() - started, response_url=response_url)

    @staticmethod
    def command_form(
        text: str, *, user: str, command: str, channel: str, response_url: str, user_name: str | None = None
    ) -> dict[str, str]:
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "team_domain": "chatdock-test",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user_name or user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0CHATDOCK",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": f"{random.randint(10**9, 10**10)}.{uuid.uuid4().hex[:8]}",
        }

    def command(
        self,
        text: str,
        *,
        user: str = "UADMIN",
        command: str = "/docker",
        channel: str = CHANNEL,
        timestamp: int | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
        team: str = TEAM,
        extra: dict[str, str] | None = None,
    ) -> Sent:
        """``/docker TEXT`` typed by ``user`` (of workspace ``team``; ``extra`` form fields), as Slack sends it:
        form-encoded, signed."""
        response_url = self.fake.new_response_url()
        form = self.command_form(text, user=user, command=command, channel=channel, response_url=response_url)
        body = urlencode({**form, "team_id": team, **(extra or {})})
        if headers is None:
            headers = self.signed_headers(body, timestamp=timestamp, secret=secret)
        before = len(self.fake.calls_to("chat.postMessage"))
        sent = self.post(body, headers, response_url)
        sent.channel, sent.user, sent.posts_before = channel, user, before
        return sent

    def click(
        self,
        message: dict[str, Any],
        action: str,
        *,
        user: str = "UADMIN",
        channel: str = CHANNEL,
        container_id: str | None = None,
        value: str | None = None,
        user_team: str = TEAM,
        team: str = TEAM,
    ) -> Sent:
        """``user`` (of workspace ``user_team``, clicking in workspace ``team``) clicks the ``chatdock:<action>``
        button in ``message`` (optionally with a forged value)."""
        body, response_url = self.click_body(
            message,
            action,
            user=user,
            channel=channel,
            container_id=container_id,
            value=value,
            user_team=user_team,
            team=team,
        )
        return self.post(body, self.signed_headers(body), response_url)

    def click_body(
        self,
        message: dict[str, Any],
        action: str,
        *,
        user: str = "UADMIN",
        channel: str = CHANNEL,
        container_id: str | None = None,
        value: str | None = None,
        user_team: str = TEAM,
        team: str = TEAM,
    ) -> tuple[str, str]:
        """The form body Slack POSTs for that click, and its response_url (to send one click more than once)."""
        block_id, button = find_button(message, action, container_id)
        response_url = self.fake.new_response_url()
        ts = f"{int(time.time())}.000{random.randint(100, 999)}"
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": user_team},
            "api_app_id": "A0CHATDOCK",
            "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
            "trigger_id": f"{random.randint(10**9, 10**10)}.{uuid.uuid4().hex[:8]}",
            "team": {"id": team, "domain": "chatdock-test"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "general"},
            "message": {"type": "message", "ts": ts, "text": message.get("text", ""), "blocks": message["blocks"]},
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [
                {
                    "action_id": button["action_id"],
                    "block_id": block_id,
                    "text": button["text"],
                    "value": button["value"] if value is None else value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload)}), response_url

    def posted(self, containing: str, *, timeout: float = 40) -> dict[str, Any]:
        """The arguments of the chat.postMessage whose text or blocks mention ``containing`` (replies that
        carry a file go out through the Web API, which returns the ts the file's thread needs)."""

        def find() -> dict[str, Any] | None:
            for call in self.fake.calls_to("chat.postMessage"):
                if containing in all_text(call.args.get("text")) + all_text(call.args.get("blocks")):
                    return call.args
            return None

        return self.fake.wait_for(find, timeout=timeout, what=f"a chat.postMessage mentioning {containing!r}")

    def reply(self, sent: Sent, count: int = 1, *, timeout: float = 40) -> dict[str, Any]:
        """The ``count``-th reply to a request: a post to its response_url or, for a reply carrying a file
        (which goes out through chat.postMessage), the posted message that names the ack's request ID; a quick
        read acks with nothing, so its file reply is the first later post in its channel for the same person
        (``ps -a`` on an engine other work shares can be long enough to need a file)."""
        request_id = REQUEST_ID.search(all_text(sent.ack)) if sent.response.content else None
        requested = f"requested by <@{sent.user}>"

        def find() -> dict[str, Any] | None:
            posts = self.fake.posts_to(sent.response_url)
            if len(posts) >= count:
                return posts[count - 1]
            if count != 1:
                return None
            calls = self.fake.calls_to("chat.postMessage")
            for index, call in enumerate(calls):
                text = all_text(call.args.get("blocks"))
                if request_id:
                    found = request_id.group(0) in text
                    if found:
                        self._claimed[index] = id(sent)
                else:  # a quick read acks with nothing: its reply is the next one posted for this person there
                    found = (
                        index >= sent.posts_before
                        and call.args.get("channel") == sent.channel
                        and requested in text
                        and self._claimed.setdefault(index, id(sent)) == id(sent)
                    )
                if found:
                    return {**call.args, "response_type": "in_channel", "replace_original": False}
            return None

        return self.fake.wait_for(find, timeout=timeout, what=f"reply {count} to {all_text(sent.ack)[:80]!r}")


def find_button(message: dict[str, Any], action: str, container_id: str | None = None) -> tuple[str, dict[str, Any]]:
    for block in message.get("blocks", []):
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            if element.get("action_id") != f"chatdock:{action}":
                continue
            if container_id is None or json.loads(element["value"])["c"] == container_id:
                return block.get("block_id", ""), element
    raise AssertionError(f"no {action} button (container {container_id}) in {json.dumps(message)[:2000]}")


def has_button(message: dict[str, Any], action: str, container_id: str | None = None) -> bool:
    try:
        find_button(message, action, container_id)
    except AssertionError:
        return False
    return True


def all_text(value: Any) -> str:
    """Every string in a message (text and blocks), joined: what a reader of the channel sees."""
    if isinstance(value, dict):
        return "\n".join(all_text(v) for k, v in value.items() if k not in ("value", "action_id", "block_id"))
    if isinstance(value, list):
        return "\n".join(all_text(v) for v in value)
    return value if isinstance(value, str) else ""


@pytest.fixture
def slack(serve: Server, fake_slack: FakeSlack) -> Iterator[SlackDriver]:
    driver = SlackDriver(serve.url, fake_slack)
    yield driver
    driver.close()


@pytest.fixture
def host_port() -> Any:
    """``host_port()`` → a free host port in 19500-19999 (the range tests may publish)."""

    def pick() -> int:
        for _ in range(200):
            port = random.randint(19500, 19999)
            with socket.socket() as probe:
                try:
                    probe.bind(("0.0.0.0", port))
                except OSError:
                    continue
                return port
        raise RuntimeError("no free port in 19500-19999")

    return pick


@pytest.fixture
def created(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Names of containers and networks a test makes through Slack; removed afterwards."""
    names: list[str] = []
    yield names
    for item in names:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.containers.get(item).remove(force=True)
    for item in names:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.networks.get(item).remove()
