"""Forged and replayed button clicks, sent signed over HTTP to chatdock's real server on the real engine.

A click is a request anyone in the workspace can send with any value (Slack signs what it is given), so every
part of it is checked again. Each case here is a ``block_actions`` payload with a crafted value: another
container's ID (out of scope: started straight through docker-py, without chatdock's labels), a protected
container, an action chatdock never offers in that state, an unknown action, malformed / oversized / non-hex
values, a container that no longer exists, a user without the role, and clicks replayed after the message they
belong to changed. A case passes when

- the click is acknowledged (HTTP 200 within 3 s) and answered once, ephemerally, through its response_url,
  without replacing the message (no ``replace_original``, no ``chat.update``);
- exactly one audit row records it, with outcome ``denied``, ``error`` or ``usage``, source ``button`` and how
  the refusal was delivered;
- chatdock sent no request that changes anything to the engine (POST/PUT/DELETE, recorded at the HTTP level),
  and the session's containers are in the same state as before.

Counts go into the run's summary (``tests/hardening/conftest.py``).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from bot.policy import Policy, load_policy_text
from bot.slack_app import BUTTON_INVALID
from handlers import build_registry
from tests.conftest import PREFIX, SESSION, TEST_LABEL, TEST_POLICY
from tests.e2e.conftest import CHANNEL, TEAM, Sent, all_text
from tests.hardening.chat import Chat, request_id_in, running_chat
from tests.hardening.conftest import SpyEngine, Targets, module_name
from tests.hardening.tally import TALLY

pytestmark = pytest.mark.docker

REFUSED = frozenset({"denied", "error", "usage"})
QUICK_STOP = "sh -c \"trap 'exit 0' TERM; while true; do sleep 1; done\""  # stops at once (docker waits 10 s)
MISSING = object()


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_text(TEST_POLICY, source="test policy", known_commands=[*build_registry().names(), "history"])


@pytest.fixture(scope="module")
def chat(spy_engine: SpyEngine, policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chat]:
    with running_chat(spy_engine, policy, tmp_path_factory.mktemp("clicks")) as running:
        yield running


@dataclass(frozen=True)
class Extra:
    stopped: Any  # chatdock-managed, in scope, exited
    gone_id: str  # a container that existed and was removed


@pytest.fixture(scope="module")
def extra(docker_client: docker.DockerClient, image: str) -> Iterator[Extra]:
    labels = {TEST_LABEL: SESSION, "chatdock.managed": "true", "chatdock.owner": "UADMIN"}
    stopped = docker_client.containers.run(
        image, ["sleep", "3600"], name=module_name("web"), labels=labels, detach=True
    )
    stopped.stop(timeout=0)
    stopped.reload()
    gone = docker_client.containers.create(image, ["true"], name=module_name("web"), labels=labels)
    gone_id = gone.id
    gone.remove(force=True)
    try:
        yield Extra(stopped=stopped, gone_id=gone_id)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            stopped.remove(force=True)


def value(action: str, container_id: str, state: str) -> str:
    return json.dumps({"a": action, "c": container_id, "s": state}, separators=(",", ":"))


def forged_click(
    chat: Chat,
    *,
    action_id: str,
    value: Any = MISSING,
    user: str = "UADMIN",
    channel: str = CHANNEL,
) -> Sent:
    """A signed ``block_actions`` payload for a button chatdock may never have drawn."""
    response_url = chat.fake.new_response_url()
    ts = f"{int(time.time())}.000{random.randint(100, 999)}"
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": f"actions-{uuid.uuid4().hex[:12]}",
        "text": {"type": "plain_text", "text": "Stop", "emoji": True},
        "type": "button",
        "action_ts": f"{time.time():.6f}",
    }
    if value is not MISSING:
        action["value"] = value
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0CHATDOCK",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{random.randint(10**9, 10**10)}.{uuid.uuid4().hex[:8]}",
        "team": {"id": TEAM, "domain": "chatdock-test"},
        "channel": {"id": channel, "name": "general"},
        "message": {"type": "message", "ts": ts, "text": "forged", "blocks": []},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    body = urlencode({"payload": json.dumps(payload)})
    return chat.slack.post(body, chat.slack.signed_headers(body), response_url)


def session_states(client: docker.DockerClient) -> dict[str, str]:
    """State of every container this test session made (other processes may share the engine)."""
    states = {}
    for entry in client.api.containers(all=True):
        names = [str(n).lstrip("/") for n in entry.get("Names") or []]
        if any(n.startswith(PREFIX) for n in names) or (entry.get("Labels") or {}).get(TEST_LABEL) == SESSION:
            states[entry["Id"]] = str(entry.get("State"))
    return states


def assert_refused(
    chat: Chat,
    spy: SpyEngine,
    client: docker.DockerClient,
    send: Callable[[], Sent],
    *,
    case: str,
    outcome: str | set[str] | frozenset[str] = REFUSED,
    rule: str | None = None,
    says: str | None = None,
) -> dict[str, Any]:
    """Send a click that must be refused; check the reply, the audit row and the engine. Returns the row."""
    before = session_states(client)
    updates = len(chat.fake.calls_to("chat.update")) + len(chat.fake.calls_to("chat.postMessage"))
    spy.sent.clear()
    TALLY.clicks_tried += 1
    sent = send()
    assert sent.response.status_code == 200, f"{case}: HTTP {sent.response.status_code}"
    assert sent.elapsed < 3.0, f"{case}: acked after {sent.elapsed:.2f} s"
    reply = chat.slack.reply(sent, timeout=30)
    request_id = request_id_in(reply)
    assert request_id, f"{case}: the reply names no request: {all_text(reply)[:500]}"
    row = chat.finished_row(request_id)
    time.sleep(0.2)  # anything still on its way (a second reply, a late engine call) has arrived by now
    mutations = spy.mutations()
    after = session_states(client)
    changed = {
        cid: (before.get(cid), after.get(cid)) for cid in set(before) | set(after) if before.get(cid) != after.get(cid)
    }
    effects = [f"{m} {p}" for m, p in mutations] + [f"container {c[:12]}: {b} -> {a}" for c, (b, a) in changed.items()]
    TALLY.click_side_effects += len(effects)

    wanted = {outcome} if isinstance(outcome, str) else set(outcome)
    problems = []
    if reply.get("response_type") != "ephemeral" or reply.get("replace_original"):
        problems.append(f"reply not an ephemeral answer: {reply.get('response_type')} {reply.get('replace_original')}")
    if len(chat.fake.posts_to(sent.response_url)) != 1:
        problems.append(f"{len(chat.fake.posts_to(sent.response_url))} replies")
    if len(chat.fake.calls_to("chat.update")) + len(chat.fake.calls_to("chat.postMessage")) != updates:
        problems.append("a message was posted or replaced")
    rows = chat.rows_for(request_id)
    if len(rows) != 1:
        problems.append(f"{len(rows)} audit rows")
    if row["outcome"] not in wanted:
        problems.append(f"audit outcome {row['outcome']} ({row['rule']}: {row['message']})")
    if rule is not None and row["rule"] != rule:
        problems.append(f"audit rule {row['rule']}, expected {rule}")
    if row["source"] != "button" or row["delivery"] != "response_url":
        problems.append(f"audit source {row['source']}, delivery {row['delivery']}")
    if says is not None and says not in all_text(reply):
        problems.append(f"reply does not say {says!r}: {all_text(reply)[:300]}")
    if effects:
        problems.append(f"side effects: {effects}")
    if problems:
        TALLY.problems.append(f"click {case}: {problems}")
    else:
        TALLY.clicks_refused += 1
    assert not problems, f"{case}: {problems}"
    return row


# ------------------------------------------------------------------------------------------ forged values


@dataclass(frozen=True)
class ClickCase:
    id: str
    action_id: str
    value: Callable[[Targets, Extra], Any]
    outcome: str
    rule: str | None = None
    user: str = "UADMIN"
    channel: str = CHANNEL
    says: str | None = None


def invalid(id: str, action_id: str, make: Callable[[Targets, Extra], Any], **kw: Any) -> ClickCase:
    """A value chatdock never draws: refused before anything is looked up, audited as ``button-value``."""
    return ClickCase(id, action_id, make, "denied", "button-value", says=BUTTON_INVALID, **kw)


STOP, RM, LOGS, START, RESTART = (f"chatdock:{a}" for a in ("stop", "rm", "logs", "start", "restart"))

CASES = [
    # another container's ID: running, started without chatdock, outside the policy's scope
    ClickCase("foreign-stop", STOP, lambda t, e: value("stop", t.ext.id, "running"), "denied", "containers.scope"),
    ClickCase(
        "foreign-restart", RESTART, lambda t, e: value("restart", t.ext.id, "running"), "denied", "containers.scope"
    ),
    ClickCase("foreign-logs", LOGS, lambda t, e: value("logs", t.ext.id, "running"), "denied", "containers.scope"),
    ClickCase("other-team-stop", STOP, lambda t, e: value("stop", t.other.id, "running"), "denied", "containers.scope"),
    ClickCase(
        "protected-stop", STOP, lambda t, e: value("stop", t.protected.id, "running"), "denied", "containers.protect"
    ),
    ClickCase(
        "protected-logs", LOGS, lambda t, e: value("logs", t.protected.id, "running"), "denied", "containers.protect"
    ),
    # actions not offered for the state the value claims, or for the container's real state
    invalid("rm-on-running", RM, lambda t, e: value("rm", t.web.id, "running")),
    invalid("rm-on-foreign-running", RM, lambda t, e: value("rm", t.ext.id, "running")),
    invalid("start-on-running", START, lambda t, e: value("start", t.web.id, "running")),
    invalid("restart-on-exited", RESTART, lambda t, e: value("restart", e.stopped.id, "exited")),
    invalid("stop-on-exited", STOP, lambda t, e: value("stop", e.stopped.id, "exited")),
    invalid("stop-on-paused", STOP, lambda t, e: value("stop", t.web.id, "paused")),
    ClickCase(
        "rm-claims-exited-but-running",
        RM,
        lambda t, e: value("rm", t.web.id, "exited"),
        "error",
        says="changed since",
    ),
    ClickCase(
        "start-claims-exited-but-running",
        START,
        lambda t, e: value("start", t.web.id, "exited"),
        "error",
        says="changed since",
    ),
    # unknown actions, and action_ids that do not match the value
    invalid(
        "unknown-action-kill", "chatdock:kill", lambda t, e: json.dumps({"a": "kill", "c": t.web.id, "s": "running"})
    ),
    invalid(
        "unknown-action-exec", "chatdock:exec", lambda t, e: json.dumps({"a": "exec", "c": t.web.id, "s": "running"})
    ),
    invalid("action-id-unknown-value-stop", "chatdock:kill", lambda t, e: value("stop", t.web.id, "running")),
    invalid("action-id-logs-value-stop", LOGS, lambda t, e: value("stop", t.web.id, "running")),
    invalid("action-id-empty-suffix", "chatdock:", lambda t, e: value("stop", t.web.id, "running")),
    # malformed and oversized values
    invalid("value-not-json", STOP, lambda t, e: "stop " + t.web.id),
    invalid("value-empty", STOP, lambda t, e: ""),
    invalid("value-missing", STOP, lambda t, e: MISSING),
    invalid("value-null", STOP, lambda t, e: None),
    invalid("value-object", STOP, lambda t, e: {"a": "stop", "c": t.web.id, "s": "running"}),
    invalid("value-number", STOP, lambda t, e: 12345),
    invalid(
        "value-oversized", STOP, lambda t, e: json.dumps({"a": "stop", "c": t.web.id, "s": "running", "p": "x" * 5000})
    ),
    invalid("value-100kb", STOP, lambda t, e: "x" * 100_000),
    invalid("value-nested", STOP, lambda t, e: "[" * 3000 + "]" * 3000),
    invalid(
        "value-extra-key", STOP, lambda t, e: json.dumps({"a": "stop", "c": t.web.id, "s": "running", "u": "UADMIN"})
    ),
    invalid("value-duplicate-key", STOP, lambda t, e: f'{{"a":"logs","a":"stop","c":"{t.web.id}","s":"running"}}'),
    invalid("value-list", STOP, lambda t, e: json.dumps(["stop", t.web.id, "running"])),
    invalid("value-unknown-state", STOP, lambda t, e: value("stop", t.web.id, "gone")),
    invalid("value-state-wrong-case", STOP, lambda t, e: value("stop", t.web.id, "Running")),
    invalid("value-control-chars", STOP, lambda t, e: value("stop", t.web.id, "running") + "\x00\x1b[2J"),
    # container IDs that are not a full lowercase hex ID
    invalid("id-non-hex", STOP, lambda t, e: value("stop", "z" * 64, "running")),
    invalid("id-uppercase", STOP, lambda t, e: value("stop", t.web.id.upper(), "running")),
    invalid("id-short-prefix", STOP, lambda t, e: value("stop", t.web.id[:12], "running")),
    invalid("id-foreign-prefix", STOP, lambda t, e: value("stop", t.ext.id[:12], "running")),
    invalid("id-name", STOP, lambda t, e: value("stop", t.web.name, "running")),
    invalid("id-65-chars", STOP, lambda t, e: value("stop", t.web.id + "0", "running")),
    invalid("id-path-traversal", STOP, lambda t, e: value("stop", "../../containers/" + t.web.id[:40], "running")),
    invalid("id-with-space", STOP, lambda t, e: value("stop", t.web.id[:63] + " ", "running")),
    invalid("id-two-ids", STOP, lambda t, e: value("stop", f"{t.web.id} {t.ext.id}", "running")),
    # a well-formed value for a container that no longer exists
    ClickCase(
        "container-gone-stop", STOP, lambda t, e: value("stop", e.gone_id, "running"), "error", says="no longer exists"
    ),
    ClickCase("container-gone-rm", RM, lambda t, e: value("rm", e.gone_id, "exited"), "error", says="no longer exists"),
    ClickCase(
        "container-gone-logs", LOGS, lambda t, e: value("logs", e.gone_id, "running"), "error", says="no longer exists"
    ),
    ClickCase(
        "container-never-was", STOP, lambda t, e: value("stop", "ab" * 32, "running"), "error", says="no longer exists"
    ),
    # users without the role
    ClickCase(
        "viewer-stop", STOP, lambda t, e: value("stop", t.web.id, "running"), "denied", "default-deny", user="UVIEW"
    ),
    ClickCase(
        "viewer-restart",
        RESTART,
        lambda t, e: value("restart", t.web.id, "running"),
        "denied",
        "default-deny",
        user="UVIEW",
    ),
    ClickCase(
        "viewer-remove", RM, lambda t, e: value("rm", e.stopped.id, "exited"), "denied", "default-deny", user="UVIEW"
    ),
    ClickCase(
        "viewer-start",
        START,
        lambda t, e: value("start", e.stopped.id, "exited"),
        "denied",
        "default-deny",
        user="UVIEW",
    ),
    ClickCase(
        "unknown-user-stop",
        STOP,
        lambda t, e: value("stop", t.web.id, "running"),
        "denied",
        "default-deny",
        user="UNOBODY1",
    ),
    ClickCase("no-user-stop", STOP, lambda t, e: value("stop", t.web.id, "running"), "denied", user=""),
    ClickCase(
        "operator-outside-their-channel-remove",
        RM,
        lambda t, e: value("rm", e.stopped.id, "exited"),
        "denied",
        "default-deny",
        user="UOPS",
    ),
    ClickCase(
        "operator-in-their-channel-remove",  # operators may stop/start/restart in #ops, never remove
        RM,
        lambda t, e: value("rm", e.stopped.id, "exited"),
        "denied",
        "default-deny",
        user="UOPS",
        channel="COPS",
    ),
    ClickCase("viewer-foreign-stop", STOP, lambda t, e: value("stop", t.ext.id, "running"), "denied", user="UVIEW"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_forged_click_is_refused_audited_and_changes_nothing(
    case: ClickCase,
    chat: Chat,
    spy_engine: SpyEngine,
    docker_client: docker.DockerClient,
    targets: Targets,
    extra: Extra,
) -> None:
    crafted = case.value(targets, extra)
    row = assert_refused(
        chat,
        spy_engine,
        docker_client,
        lambda: forged_click(chat, action_id=case.action_id, value=crafted, user=case.user, channel=case.channel),
        case=case.id,
        outcome=case.outcome,
        rule=case.rule,
        says=case.says,
    )
    assert row["user_id"] == case.user and row["channel"] == case.channel
    for container in (*targets.containers(), extra.stopped):
        container.reload()
    assert [c.status for c in targets.containers()] == ["running"] * 4
    assert extra.stopped.status == "exited"


def test_the_forged_value_is_kept_in_the_audit_log_scrubbed_and_clipped(
    chat: Chat, spy_engine: SpyEngine, docker_client: docker.DockerClient, targets: Targets
) -> None:
    """What an investigator needs after a forged click: who, where, which action_id and (the start of) the value;
    never a token-shaped string, never 100 kB."""
    token = "xoxb-" + "1234567890-" * 3 + "abcdefABCDEF"
    crafted = json.dumps({"a": "stop", "c": targets.web.id, "s": "running", "t": token + "y" * 50_000})
    row = assert_refused(
        chat,
        spy_engine,
        docker_client,
        lambda: forged_click(chat, action_id=STOP, value=crafted, user="UMALLORY"),
        case="audit-keeps-forged-value",
        outcome="denied",
        rule="button-value",
    )
    assert row["user_id"] == "UMALLORY" and row["source"] == "button" and row["allowed"] == 0
    assert row["text"].startswith("button chatdock:stop {")
    assert token not in row["text"] and len(row["text"]) <= 400
    assert "not valid" in row["message"]


# ------------------------------------------------------------------------------------------ replays


def test_stop_clicked_twice_the_second_click_sees_the_change_and_does_nothing(
    chat: Chat, spy_engine: SpyEngine, docker_client: docker.DockerClient, image: str, name: Any
) -> None:
    web = name("web")
    try:
        ran = chat.slack.reply(chat.slack.command(f"run -d --name {web} {image} {QUICK_STOP}"), timeout=60)
        container = docker_client.containers.get(web)
        assert container.status == "running"

        spy_engine.sent.clear()
        first = chat.slack.click(ran, "stop", container_id=container.id)
        stopped = chat.slack.reply(first, timeout=60)
        assert any(path.endswith("/stop") for _, path in spy_engine.mutations())  # the spy sees the server's calls
        assert stopped["replace_original"] is True and "stopped by <@UADMIN>" in all_text(stopped)
        first_id = request_id_in(stopped)
        assert first_id and chat.finished_row(first_id)["outcome"] == "ok"
        assert docker_client.containers.get(web).status == "exited"

        # the same click again (a double click, a replayed payload, or a second person on the old message)
        row = assert_refused(
            chat,
            spy_engine,
            docker_client,
            lambda: chat.slack.click(ran, "stop", container_id=container.id),
            case="replay-stop-after-stop",
            outcome="error",
            says="changed since",
        )
        assert "it was running, it is now exited" in row["message"]
        assert docker_client.containers.get(web).status == "exited"

        # the old message's Restart button: also stale
        assert_refused(
            chat,
            spy_engine,
            docker_client,
            lambda: chat.slack.click(ran, "restart", container_id=container.id),
            case="replay-restart-after-stop",
            outcome="error",
            says="changed since",
        )

        # Start from the new message works once; its replay, and Remove from that (now stale) message, do nothing
        started = chat.slack.reply(chat.slack.click(stopped, "start", container_id=container.id), timeout=60)
        assert "started by <@UADMIN>" in all_text(started)
        for action in ("start", "rm"):
            assert_refused(
                chat,
                spy_engine,
                docker_client,
                lambda action=action: chat.slack.click(stopped, action, container_id=container.id),
                case=f"replay-{action}-after-start",
                outcome="error",
                says="changed since",
            )
        assert docker_client.containers.get(web).status == "running"

        # Remove from a current message works once; its replay finds nothing to remove
        stopped_again = chat.slack.reply(chat.slack.click(started, "stop", container_id=container.id), timeout=60)
        removed = chat.slack.reply(chat.slack.click(stopped_again, "rm", container_id=container.id), timeout=60)
        assert "removed by <@UADMIN>" in all_text(removed)
        assert_refused(
            chat,
            spy_engine,
            docker_client,
            lambda: chat.slack.click(stopped_again, "rm", container_id=container.id),
            case="replay-rm-after-rm",
            outcome="error",
            says="no longer exists",
        )
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(web)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.containers.get(web).remove(force=True)


def test_concurrent_double_clicks_stop_the_container_once(
    chat: Chat, docker_client: docker.DockerClient, image: str, name: Any
) -> None:
    """Five clicks on the same Stop button at once: one stops it, the others are refused (or find it stopping);
    every click gets exactly one answer and one audit row."""
    from concurrent.futures import ThreadPoolExecutor

    web = name("web")
    try:
        ran = chat.slack.reply(chat.slack.command(f"run -d --name {web} {image} {QUICK_STOP}"), timeout=60)
        container = docker_client.containers.get(web)
        with ThreadPoolExecutor(max_workers=5) as pool:
            sent = list(pool.map(lambda _: chat.slack.click(ran, "stop", container_id=container.id), range(5)))
        assert all(s.response.status_code == 200 and s.elapsed < 3.0 for s in sent)
        replies = [chat.slack.reply(s, timeout=60) for s in sent]
        rows = [chat.finished_row(str(request_id_in(r))) for r in replies]
        assert all(len(chat.fake.posts_to(s.response_url)) == 1 for s in sent)
        assert {r["request_id"] for r in rows} == {request_id_in(r) for r in replies}
        done = [r for r in rows if r["outcome"] == "ok"]
        assert len(done) >= 1
        TALLY.clicks_tried += len(rows) - len(done)
        TALLY.clicks_refused += sum(1 for r in rows if r["outcome"] in REFUSED)
        for reply, row in zip(replies, rows, strict=True):
            if row["outcome"] == "ok":
                assert reply["replace_original"] is True
            else:
                assert reply["response_type"] == "ephemeral" and not reply.get("replace_original")
        assert docker_client.containers.get(web).status == "exited"
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.containers.get(web).remove(force=True)


def test_zz_click_tally(chat: Chat) -> None:
    """Runs last in this module: every forged or replayed click was refused and none changed anything."""
    if TALLY.clicks_tried == 0:
        pytest.skip("no click case ran")
    assert TALLY.click_side_effects == 0, TALLY.problems
    assert TALLY.clicks_refused == TALLY.clicks_tried, TALLY.problems
