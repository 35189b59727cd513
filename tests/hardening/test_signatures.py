"""Requests Slack did not sign, or signed more than five minutes ago, never run and leave no trace but a 401.

tests/e2e/test_security.py already checks that a wrong secret, a stale or future timestamp, a missing signature
or timestamp and a tampered body get a 401 and start no container. Here, on chatdock's real server with an audit
log and an engine that records every request it is sent, the same refusals and what that file does not cover:

- malformed timestamps and signatures (``abc``, ``1.5``, 400 digits, ``v1=``, upper case, ...): slack_sdk's
  verifier raised on some of them, so bolt answered 500 and logged a stack trace per request; now 401;
- button clicks without a valid signature (stale, unsigned, signed for another body);
- a request that was valid, replayed byte for byte (its original timestamp and signature) more than five
  minutes later: the server's clock is moved on, as if the attacker had waited;

and for each: HTTP 401, nothing sent to the engine, nothing posted to Slack, no audit row, no ERROR logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import docker
import pytest
import slack_sdk.signature

from bot.policy import Policy, load_policy_text
from handlers import build_registry
from tests.conftest import TEST_POLICY
from tests.e2e.conftest import CHANNEL, TEAM, SlackDriver
from tests.hardening.chat import Chat, running_chat
from tests.hardening.conftest import SpyEngine, Targets
from tests.hardening.tally import TALLY

pytestmark = pytest.mark.docker

FIVE_MINUTES = 5 * 60


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_text(TEST_POLICY, source="test policy", known_commands=[*build_registry().names(), "history"])


@pytest.fixture(scope="module")
def chat(spy_engine: SpyEngine, policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chat]:
    with running_chat(spy_engine, policy, tmp_path_factory.mktemp("signatures")) as running:
        yield running


def command_body(slack: SlackDriver, text: str, user: str = "UADMIN") -> tuple[str, str]:
    response_url = slack.fake.new_response_url()
    form = slack.command_form(text, user=user, command="/docker", channel=CHANNEL, response_url=response_url)
    return urlencode(form), response_url


def click_body(slack: SlackDriver, action: str, container_id: str, state: str, user: str = "UADMIN") -> tuple[str, str]:
    response_url = slack.fake.new_response_url()
    ts = f"{int(time.time())}.000{random.randint(100, 999)}"
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0CHATDOCK",
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": f"{random.randint(10**9, 10**10)}.{uuid.uuid4().hex[:8]}",
        "team": {"id": TEAM, "domain": "chatdock-test"},
        "channel": {"id": CHANNEL, "name": "general"},
        "message": {"type": "message", "ts": ts, "text": "", "blocks": []},
        "response_url": response_url,
        "actions": [
            {
                "action_id": f"chatdock:{action}",
                "block_id": "actions-x",
                "value": json.dumps({"a": action, "c": container_id, "s": state}, separators=(",", ":")),
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}), response_url


def headers_for(slack: SlackDriver, body: str, how: str) -> tuple[str, dict[str, str]]:
    """(the body actually sent, the headers) for one way of getting the signature wrong."""
    now = int(time.time())
    headers = slack.signed_headers(body)
    good = headers["X-Slack-Signature"]
    sent = body
    if how == "wrong secret":
        headers = slack.signed_headers(body, secret="f" * 32)
    elif how == "empty secret":  # what a server with no signing secret configured would accept
        base = f"v0:{headers['X-Slack-Request-Timestamp']}:{body}".encode()
        headers["X-Slack-Signature"] = "v0=" + hmac.new(b"", base, hashlib.sha256).hexdigest()
    elif how == "no signature":
        del headers["X-Slack-Signature"]
    elif how == "no timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif how == "stale (5 min 10 s)":
        headers = slack.signed_headers(body, timestamp=now - FIVE_MINUTES - 10)
    elif how == "stale (a day)":
        headers = slack.signed_headers(body, timestamp=now - 86_400)
    elif how == "future (6 min)":
        headers = slack.signed_headers(body, timestamp=now + 6 * 60)
    elif how == "epoch zero":
        headers = slack.signed_headers(body, timestamp=0)
    elif how.startswith("timestamp "):
        bad = how.removeprefix("timestamp ").strip("'")
        headers["X-Slack-Request-Timestamp"] = bad
        headers["X-Slack-Signature"] = (
            slack_sdk.signature.SignatureVerifier(slack.secret).generate_signature(timestamp=bad, body=body) or ""
        )
    elif how == "signature empty":
        headers["X-Slack-Signature"] = ""
    elif how == "signature v0= only":
        headers["X-Slack-Signature"] = "v0="
    elif how == "signature v1 scheme":
        headers["X-Slack-Signature"] = "v1=" + good.removeprefix("v0=")
    elif how == "signature upper case":
        headers["X-Slack-Signature"] = good.upper()
    elif how == "signature truncated":
        headers["X-Slack-Signature"] = good[:-1]
    elif how == "signature not hex":
        headers["X-Slack-Signature"] = "v0=" + "z" * 64
    elif how == "signature 64 kB":
        headers["X-Slack-Signature"] = "v0=" + "a" * 65_536
    elif how == "body tampered":
        sent = body.replace("UADMIN", "UVIEW1") if "UADMIN" in body else body + "&x=1"
    elif how == "body extended":
        sent = body + "&user_id=UADMIN"
    else:
        raise AssertionError(how)
    return sent, headers


WAYS = [
    "wrong secret",
    "empty secret",
    "no signature",
    "no timestamp",
    "stale (5 min 10 s)",
    "stale (a day)",
    "future (6 min)",
    "epoch zero",
    "timestamp 'abc'",
    "timestamp '1e9'",
    "timestamp ''",
    "timestamp '-1'",
    f"timestamp '{int(time.time())}.5'",
    "timestamp '" + "9" * 400 + "'",
    "signature empty",
    "signature v0= only",
    "signature v1 scheme",
    "signature upper case",
    "signature truncated",
    "signature not hex",
    "signature 64 kB",
    "body tampered",
    "body extended",
]


def assert_no_trace(
    chat: Chat,
    spy: SpyEngine,
    caplog: pytest.LogCaptureFixture,
    *,
    body: str,
    headers: dict[str, str],
    response_url: str,
    case: str,
    rows_before: int,
) -> None:
    TALLY.unsigned_tried += 1
    api_calls = len(chat.fake.calls)
    posts = len(chat.fake.posts_to(response_url))  # a replayed request's first, valid run did reply
    spy.sent.clear()
    caplog.clear()
    sent = chat.slack.post(body, headers, response_url)
    time.sleep(0.5)  # had anything been started, it would have reached the engine, Slack or the log by now
    problems = []
    if sent.response.status_code != 401:
        problems.append(f"HTTP {sent.response.status_code}")
    if spy.sent:
        problems.append(f"engine requests: {spy.sent}")
    if len(chat.fake.posts_to(response_url)) != posts:
        problems.append("posted to the response_url")
    if len(chat.fake.calls) != api_calls:
        problems.append(f"Web API calls: {[c.method for c in chat.fake.calls[api_calls:]]}")
    if len(chat.rows()) != rows_before:
        problems.append(f"audit rows: {chat.rows()[rows_before:]}")
    errors = [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR]
    if errors:
        problems.append(f"logged errors: {errors}")
    if problems:
        TALLY.problems.append(f"unsigned {case}: {problems}")
    else:
        TALLY.unsigned_refused += 1
    assert not problems, f"{case}: {problems}"


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize("kind", ["command", "click"])
def test_a_request_not_signed_by_slack_is_a_401_and_leaves_no_trace(
    kind: str,
    how: str,
    chat: Chat,
    spy_engine: SpyEngine,
    targets: Targets,
    name: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    if kind == "command":
        body, response_url = command_body(chat.slack, f"run -d --name {name('web')} local/busybox:test")
    else:
        body, response_url = click_body(chat.slack, "stop", targets.web.id, "running")
    sent, headers = headers_for(chat.slack, body, how)
    assert_no_trace(
        chat,
        spy_engine,
        caplog,
        body=sent,
        headers=headers,
        response_url=response_url,
        case=f"{kind} {how}",
        rows_before=len(chat.rows()),
    )
    targets.web.reload()
    assert targets.web.status == "running"


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``later(seconds)``: from now on the server's signature check sees a clock that far ahead."""

    def move(seconds: float) -> None:
        real = time.time
        monkeypatch.setattr(slack_sdk.signature.Clock, "now", lambda self: real() + seconds)

    return move


@pytest.fixture
def labelled(docker_client: docker.DockerClient) -> Iterator[str]:
    """A label value for containers a test runs without a name; they are removed afterwards."""
    token = uuid.uuid4().hex[:12]
    yield token
    for container in docker_client.containers.list(all=True, filters={"label": f"cdt-replay={token}"}):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)


def test_a_valid_command_replayed_after_five_minutes_is_refused(
    chat: Chat,
    spy_engine: SpyEngine,
    docker_client: docker.DockerClient,
    labelled: str,
    later: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ``run`` without a name would start a second container if it ran twice: it must not."""
    caplog.set_level(logging.WARNING)
    body, response_url = command_body(chat.slack, f"run -d -l cdt-replay={labelled} local/busybox:test")
    headers = chat.slack.signed_headers(body)

    first = chat.slack.post(body, headers, response_url)
    assert first.response.status_code == 200
    chat.slack.reply(first, timeout=60)
    rows = len(chat.rows())
    assert len(docker_client.containers.list(all=True, filters={"label": f"cdt-replay={labelled}"})) == 1

    later(FIVE_MINUTES + 1)
    assert_no_trace(
        chat,
        spy_engine,
        caplog,
        body=body,
        headers=headers,
        response_url=response_url,
        case="command replayed after 5 min",
        rows_before=rows,
    )
    assert len(chat.fake.posts_to(response_url)) == 1  # the first run's reply only
    assert len(docker_client.containers.list(all=True, filters={"label": f"cdt-replay={labelled}"})) == 1


def test_a_valid_click_replayed_after_five_minutes_is_refused(
    chat: Chat, spy_engine: SpyEngine, targets: Targets, later: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    body, response_url = click_body(chat.slack, "logs", targets.web.id, "running")
    headers = chat.slack.signed_headers(body)

    first = chat.slack.post(body, headers, response_url)
    assert first.response.status_code == 200
    chat.slack.reply(first, timeout=60)
    rows = len(chat.rows())

    later(FIVE_MINUTES + 30)
    assert_no_trace(
        chat,
        spy_engine,
        caplog,
        body=body,
        headers=headers,
        response_url=response_url,
        case="click replayed after 5 min",
        rows_before=rows,
    )
    assert len(chat.fake.posts_to(response_url)) == 1


def test_a_request_signed_just_inside_the_window_still_runs(chat: Chat, later: Any) -> None:
    """The other side of the five minutes: Slack's clock may be a little off, and a retry is allowed."""
    body, response_url = command_body(chat.slack, "help")
    headers = chat.slack.signed_headers(body, timestamp=int(time.time()) - FIVE_MINUTES + 20)
    sent = chat.slack.post(body, headers, response_url)
    assert sent.response.status_code == 200
    assert chat.slack.reply(sent)["response_type"] == "in_channel"


def test_zz_signature_tally(chat: Chat) -> None:
    if TALLY.unsigned_tried == 0:
        pytest.skip("no signature case ran")
    assert TALLY.unsigned_refused == TALLY.unsigned_tried, TALLY.problems
