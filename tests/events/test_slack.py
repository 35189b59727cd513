"""The incident buttons and commands through chatdock's real HTTP front door (signed requests, fake Slack)."""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.audit import SqliteAudit
from bot.engine import Engine
from bot.notify_text import INCIDENT_ACTION
from bot.policy import load_policy_text
from bot.serve import Server, build_server
from handlers import build_registry
from tests.conftest import PREFIX, make_pipeline
from tests.e2e.conftest import TEAM, SlackDriver, all_text, e2e_settings
from tests.events.conftest import CHANNEL
from tests.support.fake_slack import FakeSlack

POLICY = f"""
roles:
  viewer: {{commands: [ps, logs, "incident logs", "notify ls", "mute ls", history]}}
  operator: {{include: [viewer], commands: [start, stop, restart, mute, unmute, "notify test"]}}
grants: [{{role: operator, users: [UOPS]}}, {{role: viewer, users: ["*"]}}]
images: ["local/*"]
containers: {{names: ["{PREFIX}*"]}}
notify:
  - channel: {CHANNEL}
"""


@pytest.fixture
def server(tmp_path: Path, engine: Engine) -> Iterator[tuple[Server, FakeSlack]]:
    fake = FakeSlack()
    policy = load_policy_text(POLICY, source="test policy", known_commands=build_registry().names())
    store = SqliteAudit(tmp_path / "audit.db")
    pipeline = make_pipeline(engine, policy, auditor=store, history=store.recent)
    served = build_server(e2e_settings(fake), pipeline=pipeline, host="127.0.0.1", port=0)
    served.start()
    assert served.events is not None
    deadline = time.monotonic() + 20
    while not served.events.watchers or not all(w.connected.is_set() for w in served.events.watchers.values()):
        assert time.monotonic() < deadline, "the event watcher did not start"
        time.sleep(0.05)
    yield served, fake
    served.stop(drain=10)
    store.close()
    fake.close()


def click(driver: SlackDriver, message: dict[str, Any], verb: str, *, user: str, choice: str = "") -> str:
    """``user`` clicks the incident message's ``verb`` button (for Mute: picks ``choice``); the response_url."""
    blocks = json.loads(message["blocks"]) if isinstance(message["blocks"], str) else message["blocks"]
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    (element,) = [e for e in actions["elements"] if e["action_id"] == INCIDENT_ACTION + verb]
    response_url = driver.fake.new_response_url()
    action: dict[str, Any] = {
        "action_id": element["action_id"],
        "block_id": actions["block_id"],
        "type": element["type"],
        "action_ts": f"{time.time():.6f}",
    }
    if verb == "mute":
        action["selected_option"] = next(o for o in element["options"] if o["value"].startswith(choice + ":"))
    else:
        action["value"] = element["value"]
    ts = f"{int(time.time())}.000{random.randint(100, 999)}"
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0CHATDOCK",
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": f"{random.randint(10**9, 10**10)}.{uuid.uuid4().hex[:8]}",
        "team": {"id": TEAM, "domain": "chatdock-test"},
        "channel": {"id": CHANNEL, "name": "ops"},
        "message": {"type": "message", "ts": ts, "text": message.get("text", ""), "blocks": blocks},
        "response_url": response_url,
        "actions": [action],
    }
    body = urlencode({"payload": json.dumps(payload)})
    sent = driver.post(body, driver.signed_headers(body), response_url)
    assert sent.response.status_code == 200
    return response_url


def reply(fake: FakeSlack, url: str) -> str:
    return all_text(fake.wait_posts(url)[0])


def test_incident_buttons_act_as_the_clicker(
    server: tuple[Server, FakeSlack], containers: Any, name: Any, docker_client: Any
) -> None:
    served, fake = server
    driver = SlackDriver(served.url, fake)
    flaky = name("flaky")
    box = containers(flaky, "sh", "-c", "echo dying-words; test -f /ok || { touch /ok; exit 1; }; sleep 300")
    message = driver.posted(flaky)
    assert "crashed" in all_text(message["blocks"]) and message["channel"] == CHANNEL

    assert "dying-words" in reply(fake, click(driver, message, "logs", user="UANYONE"))

    denied = fake.wait_posts(click(driver, message, "restart", user="UANYONE"))[0]
    assert denied.get("response_type") == "ephemeral" and "restart" in all_text(denied)
    box.reload()
    assert box.status == "exited"  # a viewer's click changed nothing

    reply(fake, click(driver, message, "restart", user="UOPS"))
    box.reload()
    assert box.status == "running"

    muted = reply(fake, click(driver, message, "mute", user="UOPS", choice="8h"))
    assert f"muted crashed incidents of {flaky}" in muted
    listed = driver.command("mute ls", user="UANYONE", channel=CHANNEL)
    assert flaky in all_text(driver.reply(listed))
    history = all_text(driver.reply(driver.command("history --incidents", user="UANYONE", channel=CHANNEL)))
    line = next(ln for ln in history.splitlines() if flaky in ln)
    short_id = line.split()[0]  # a grouped incident has no Logs button: its ID's first 12 characters do
    assert re.fullmatch(r"[0-9a-f]{12}", short_id), history
    logs = driver.command(f"incident logs {short_id}", user="UANYONE", channel=CHANNEL)
    assert "dying-words" in all_text(driver.reply(logs))
    routes = driver.command("notify ls", user="UANYONE", channel=CHANNEL)
    assert "events: all" in all_text(driver.reply(routes))
    driver.command("notify test 1", user="UOPS", channel=CHANNEL)
    sample = driver.posted("[test]")
    assert sample["channel"] == CHANNEL and "example-web-1" in all_text(sample["blocks"])
    unmute = driver.command(f"unmute {flaky}", user="UOPS", channel=CHANNEL)
    assert "ended 1 mute" in all_text(driver.reply(unmute))
    driver.close()


def test_a_forged_incident_button_does_nothing(server: tuple[Server, FakeSlack], containers: Any, name: Any) -> None:
    served, fake = server
    driver = SlackDriver(served.url, fake)
    crash = name("crash")
    containers(crash, "sh", "-c", "exit 1")
    message = driver.posted(crash)
    blocks = json.loads(message["blocks"]) if isinstance(message["blocks"], str) else message["blocks"]
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == INCIDENT_ACTION + "stop":
                element["value"] = "f" * 32  # an incident that does not exist
    forged = {**message, "blocks": blocks}
    answer = reply(fake, click(driver, forged, "stop", user="UOPS"))
    assert "not valid" in answer
    driver.close()
