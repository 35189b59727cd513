"""Two-person approval (issue #13), through chatdock's real HTTP server, the fake Slack and the real engine.

UALICE, UBOB and UCAROL are admins; UEVE may only look. ``rm`` needs approval by an admin other than the
requester. Each test starts chatdock on its own audit store (SQLite; PostgreSQL for two replicas).
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from bot.approval_store import ApprovalStore
from bot.approvals import Approvals
from bot.audit import AuditStore, open_audit
from bot.engine import Engine
from bot.models import Actor
from bot.policy import load_policy_text
from bot.serve import Server, build_server
from handlers import build_registry
from tests.conftest import PREFIX, make_pipeline
from tests.e2e.conftest import CHANNEL, TEAM, SlackDriver, all_text, e2e_settings
from tests.support.audit_db import postgres_base_url, with_schema
from tests.support.fake_slack import ApiCall, FakeSlack
from tests.support.image import TEST_IMAGE


def approval_policy(*, count: int = 1, ttl: str = "15m", reason: str = "required", where: str = "") -> str:
    """The test policy; ``where``: the rule's ``hosts`` / ``host_labels`` line (every host without)."""
    return f"""
roles:
  viewer: {{commands: [ps, inspect, logs, help, history, approvals]}}
  admin:  {{include: [viewer], commands: [run, rm, stop, start]}}
grants:
  - {{role: admin, users: [UALICE, UBOB, UCAROL]}}
  - {{role: viewer, users: ["*"]}}
images: ["{TEST_IMAGE.split(":")[0]}", "local/*"]
containers: {{names: ["{PREFIX}web-*"]}}
ports: ["19000-19999"]
approve:
  - commands: [rm]
    {where}
    count: {count}
    approvers: {{roles: [admin]}}
    self: false
    ttl: {ttl}
    reason: {reason}
"""


class Chatdock:
    """chatdock serving on a store of its own (or a shared one), with a driver that plays Slack."""

    def __init__(self, fake: FakeSlack, engine: Engine, target: str, policy_text: str) -> None:
        self.store: AuditStore = open_audit(target)
        policy = load_policy_text(policy_text, known_commands=[*build_registry().names(), "history"])
        self.pipeline = make_pipeline(
            engine,
            policy,
            auditor=self.store,
            approvals=Approvals(ApprovalStore(self.store)),
            history=self.store.recent,
            run_timeout=20,
        )
        self.server: Server = build_server(e2e_settings(fake), pipeline=self.pipeline, host="127.0.0.1", port=0)
        self.server.start()
        self.slack = SlackDriver(self.server.url, fake)

    def stop(self) -> None:
        self.slack.close()
        self.server.stop(drain=30)
        self.store.close()


@pytest.fixture
def chatdock(fake_slack: FakeSlack, engine: Engine, tmp_path: Path) -> Iterator[Callable[..., Chatdock]]:
    started: list[Chatdock] = []

    def start(policy_text: str | None = None, target: str | None = None) -> Chatdock:
        instance = Chatdock(fake_slack, engine, target or str(tmp_path / "audit.db"), policy_text or approval_policy())
        started.append(instance)
        return instance

    yield start
    for instance in started:
        with contextlib.suppress(Exception):
            instance.stop()


@pytest.fixture
def web(docker_client: docker.DockerClient, name: Any, created: list[str]) -> Callable[[], Any]:
    """``web()`` → a running container in the policy's scope (removed after the test)."""

    def make(container_name: str | None = None) -> Any:
        container_name = container_name or name("web")
        created.append(container_name)
        return docker_client.containers.run(TEST_IMAGE, ["sleep", "300"], name=container_name, detach=True)

    return make


# ------------------------------------------------------------------------------------------ Slack, as played


def card_calls(fake: FakeSlack, approval_id: str | None = None) -> list[ApiCall]:
    """chat.postMessage / chat.update calls that drew an approval message (of ``approval_id``)."""
    found = []
    for call in fake.calls:
        if call.method not in ("chat.postMessage", "chat.update"):
            continue
        blocks = call.args.get("blocks")
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        text = all_text(blocks)
        if "asks to run" in text and (approval_id is None or f"approval {approval_id}" in text):
            found.append(call)
    return found


def blocks_of(call: ApiCall) -> list[dict[str, Any]]:
    blocks = call.args.get("blocks")
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks or [])


def request(slack: SlackDriver, text: str, *, user: str = "UALICE") -> tuple[str, ApiCall]:
    """``user`` types ``/docker TEXT``; returns the approval ID and the posted message."""
    before = len(card_calls(slack.fake))
    sent = slack.command(text, user=user)
    assert sent.response.status_code == 200
    call = slack.fake.wait_for(
        lambda: next(iter(card_calls(slack.fake)[before:]), None), timeout=30, what="an approval message"
    )
    button = next(
        e
        for b in blocks_of(call)
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == "approval:approve"
    )
    note = slack.reply(sent)
    assert "waits for approval" in all_text(note), note
    assert note.get("response_type") == "ephemeral"
    return str(button["value"]), call


def click_body(fake: FakeSlack, approval_id: str, verb: str, *, user: str, ts: str = "") -> tuple[str, str, str]:
    """The form body of a click on the approval message's ``verb`` button, its response_url and trigger_id."""
    fake_url = fake.new_response_url()
    trigger = f"{random.randint(10**9, 10**10)}.{uuid.uuid4().hex[:8]}"
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": "A0CHATDOCK",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": CHANNEL, "is_ephemeral": False},
        "trigger_id": trigger,
        "team": {"id": TEAM, "domain": "chatdock-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": CHANNEL, "name": "general"},
        "message": {"type": "message", "ts": ts, "text": "", "blocks": []},
        "state": {"values": {}},
        "response_url": fake_url,
        "actions": [
            {
                "action_id": f"approval:{verb}",
                "block_id": f"approval-{approval_id}",
                "text": {"type": "plain_text", "text": verb},
                "value": approval_id,
                "type": "button",
                "action_ts": f"{time.time():.6f}{random.randint(0, 999)}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}), fake_url, trigger


def click(slack: SlackDriver, approval_id: str, verb: str, *, user: str) -> str:
    """``user`` clicks ``verb``; returns what chatdock told them (only them)."""
    body, url, _trigger = click_body(slack.fake, approval_id, verb, user=user)
    sent = slack.post(body, slack.signed_headers(body), url)
    assert sent.response.status_code == 200
    posts = slack.fake.wait_posts(url, 1, timeout=40)
    assert posts[0].get("response_type") == "ephemeral"
    return str(posts[0].get("text", ""))


def drawn(fake: FakeSlack, approval_id: str, containing: str, *, timeout: float = 30) -> ApiCall:
    """The latest drawing of the approval message that says ``containing``."""

    def find() -> ApiCall | None:
        calls = [c for c in card_calls(fake, approval_id) if containing in all_text(blocks_of(c))]
        return calls[-1] if calls else None

    return fake.wait_for(find, timeout=timeout, what=f"approval {approval_id} drawn with {containing!r}")


def exists(docker_client: docker.DockerClient, ref: str) -> bool:
    try:
        docker_client.containers.get(ref)
    except docker.errors.NotFound:
        return False
    return True


def approved_runs(store: AuditStore, approval_text: str) -> list[dict[str, Any]]:
    """Audit entries of requests run on approval (source ``approval``) for that text."""
    return [
        r
        for r in store.recent(channel=CHANNEL, limit=200)
        if r["source"] == "approval" and r["command"] == "rm" and approval_text in r["text"]
    ]


# ------------------------------------------------------------------------------------------ tests


def test_request_waits_the_requester_and_outsiders_do_not_count_another_admin_runs_it_once(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock()
    container = web()
    approval_id, card = request(bot.slack, f'--reason "disk full" rm -f {container.name}')
    text = all_text(blocks_of(card))
    assert "<@UALICE> asks to run" in text and f"rm -f {container.name}" in text
    assert "disk full" in text and "Engine requests" in text and f"/containers/{container.id}" in text
    assert "expires" in text
    assert exists(docker_client, container.id), "a request that needs approval must not run"

    assert "another person must approve" in click(bot.slack, approval_id, "approve", user="UALICE")
    assert "not one of its approvers" in click(bot.slack, approval_id, "approve", user="UEVE")
    assert exists(docker_client, container.id)

    told = click(bot.slack, approval_id, "approve", user="UBOB")
    assert told.startswith("Approved: it ran"), told
    assert not exists(docker_client, container.id)
    final = drawn(bot.slack.fake, approval_id, "Approved and run")
    assert "approved by <@UBOB>" in all_text(blocks_of(final))
    assert not any(b.get("type") == "actions" for b in blocks_of(final)), "a finished request keeps no buttons"
    result = bot.slack.posted(f"{container.name}")
    assert "removed" in all_text(result.get("blocks")).lower() or "rm" in all_text(result.get("blocks"))

    again = click(bot.slack, approval_id, "approve", user="UCAROL")
    assert "is closed" in again and "nothing more was done" in again
    runs = approved_runs(bot.store, container.name)
    assert len(runs) == 1 and runs[0]["outcome"] == "ok" and runs[0]["user"] == "UALICE"
    events = [r for r in bot.store.recent(channel=CHANNEL, limit=200) if (r["command"] or "").startswith("approval ")]
    assert {(r["command"], r["user"], r["outcome"]) for r in events} >= {
        ("approval approve", "UALICE", "denied"),
        ("approval approve", "UEVE", "denied"),
        ("approval approve", "UBOB", "ok"),
    }
    ran = [r for r in events if r["command"] == "approval run"]
    assert len(ran) == 1 and "for UALICE, approved by UBOB: done" in ran[0]["message"]
    assert ran[0]["request"]["reason"] == "disk full"


def test_a_reason_is_required_when_the_rule_says_so(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock()
    container = web()
    sent = bot.slack.command(f"rm {container.name}", user="UALICE")
    reply = all_text(bot.slack.reply(sent))
    assert "--reason" in reply and "needs approval" in reply
    assert exists(docker_client, container.id) and not card_calls(bot.slack.fake)


def test_two_approvals_needed_each_person_once(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock(approval_policy(count=2))
    container = web()
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {container.name}")
    assert "counted" in click(bot.slack, approval_id, "approve", user="UBOB")
    drawn(bot.slack.fake, approval_id, "approved by <@UBOB>")
    assert "already approved" in click(bot.slack, approval_id, "approve", user="UBOB")
    assert exists(docker_client, container.id)
    click(bot.slack, approval_id, "approve", user="UCAROL")
    assert not exists(docker_client, container.id)
    assert len(approved_runs(bot.store, container.name)) == 1


def test_a_double_click_and_two_approvers_at_once_run_it_once(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock()
    container = web()
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {container.name}")
    body, path, _ = click_body(bot.slack.fake, approval_id, "approve", user="UBOB")
    other, other_path, _ = click_body(bot.slack.fake, approval_id, "approve", user="UCAROL")
    url = path
    sends = [(body, url), (body, url), (other, other_path)]
    barrier = threading.Barrier(len(sends))

    def send(item: tuple[str, str]) -> None:
        barrier.wait()
        bot.slack.post(item[0], bot.slack.signed_headers(item[0]), item[1])

    threads = [threading.Thread(target=send, args=(item,)) for item in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drawn(bot.slack.fake, approval_id, "Approved and run")
    time.sleep(1.0)
    assert not exists(docker_client, container.id)
    assert len(approved_runs(bot.store, container.name)) == 1
    held = bot.pipeline.approvals.store.get(approval_id)  # type: ignore[union-attr]
    assert held is not None and held.state == "done"


def test_expiry_marks_the_message_and_later_clicks_only_say_so(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock(approval_policy(ttl="2s"))
    container = web()
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {container.name}")
    expired = drawn(bot.slack.fake, approval_id, "Expired", timeout=30)
    assert not any(b.get("type") == "actions" for b in blocks_of(expired))
    assert "it expired" in click(bot.slack, approval_id, "approve", user="UBOB")
    assert exists(docker_client, container.id)
    assert not approved_runs(bot.store, container.name)


def test_deny_asks_why_in_a_modal_and_ends_it(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock()
    container = web()
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {container.name}")
    assert "cannot deny" in click(bot.slack, approval_id, "deny", user="UEVE")
    body, _path, trigger = click_body(bot.slack.fake, approval_id, "deny", user="UBOB")
    bot.slack.post(body, bot.slack.signed_headers(body), _path)
    opened = bot.slack.fake.wait_for(
        lambda: next((c for c in bot.slack.fake.calls_to("views.open") if c.args.get("trigger_id") == trigger), None),
        what="views.open with the click's trigger_id",
    )
    view = opened.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["callback_id"] == "approval:deny"
    submission = {
        "type": "view_submission",
        "team": {"id": TEAM, "domain": "chatdock-test"},
        "user": {"id": "UBOB", "username": "ubob", "name": "ubob", "team_id": TEAM},
        "api_app_id": "A0CHATDOCK",
        "token": "legacy-verification-token",
        "trigger_id": trigger,
        "view": {
            **view,
            "id": "V0DENY",
            "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": "not during the sale"}}}},
        },
    }
    form = urlencode({"payload": json.dumps(submission)})
    answer = bot.slack.post(form, bot.slack.signed_headers(form), "")
    assert answer.response.status_code == 200
    denied = drawn(bot.slack.fake, approval_id, "Denied")
    assert "not during the sale" in all_text(blocks_of(denied)) and "denied by <@UBOB>" in all_text(blocks_of(denied))
    assert "it was denied" in click(bot.slack, approval_id, "approve", user="UCAROL")
    assert exists(docker_client, container.id)
    denials = [r for r in bot.store.recent(channel=CHANNEL, limit=200) if r["command"] == "approval deny"]
    assert any(r["user"] == "UBOB" and "not during the sale" in r["message"] for r in denials), denials


def test_only_the_requester_cancels(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock()
    container = web()
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {container.name}")
    assert "Only the person who asked" in click(bot.slack, approval_id, "cancel", user="UBOB")
    assert "Cancelled" in click(bot.slack, approval_id, "cancel", user="UALICE")
    drawn(bot.slack.fake, approval_id, "Cancelled")
    assert "cancelled" in click(bot.slack, approval_id, "approve", user="UBOB")
    assert exists(docker_client, container.id)


def test_a_restart_between_request_and_approval_keeps_it(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    first = chatdock()
    container = web()
    approval_id, _card = request(first.slack, f"--reason cleanup rm -f {container.name}")
    first.stop()
    second = chatdock()
    click(second.slack, approval_id, "approve", user="UBOB")
    assert not exists(docker_client, container.id)
    drawn(second.slack.fake, approval_id, "Approved and run")
    assert len(approved_runs(second.store, container.name)) == 1


def test_a_container_replaced_under_the_same_name_is_refused(
    chatdock: Callable[..., Chatdock], web: Callable[..., Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock()
    container = web()
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {container.name}")
    container.remove(force=True)
    replacement = web(container.name)
    click(bot.slack, approval_id, "approve", user="UBOB")
    refused = drawn(bot.slack.fake, approval_id, "not run")
    assert "is now another container" in all_text(blocks_of(refused))
    assert exists(docker_client, replacement.id), "the new container must be left alone"
    result = bot.slack.posted("is now another container")
    assert "nothing was done" in all_text(result.get("blocks"))


def test_two_replicas_on_one_postgres_run_it_once(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    import psycopg

    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        url = with_schema(base, schema)
        one, two = chatdock(target=url), chatdock(target=url)
        container = web()
        approval_id, _card = request(one.slack, f"--reason cleanup rm -f {container.name}")
        bodies = [
            (one, *click_body(one.slack.fake, approval_id, "approve", user="UBOB")[:2]),
            (two, *click_body(two.slack.fake, approval_id, "approve", user="UCAROL")[:2]),
        ]
        barrier = threading.Barrier(len(bodies))

        def send(replica: Chatdock, body: str, path: str) -> None:
            barrier.wait()
            replica.slack.post(body, replica.slack.signed_headers(body), path)

        threads = [threading.Thread(target=send, args=item) for item in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for _replica, _body, path in bodies:
            one.slack.fake.wait_posts(path, 1, timeout=40)
        assert not exists(docker_client, container.id)
        runs = approved_runs(one.store, container.name)
        assert len(runs) == 1, runs
        held = one.pipeline.approvals.store.get(approval_id)  # type: ignore[union-attr]
        assert held is not None and held.state == "done"
    finally:
        for replica in (one, two):
            with contextlib.suppress(Exception):
                replica.stop()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_approvals_lists_what_the_caller_made_or_may_approve_and_the_shell_cannot_hold(
    chatdock: Callable[..., Chatdock], web: Callable[[], Any], docker_client: docker.DockerClient
) -> None:
    bot = chatdock()
    container = web()
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {container.name}")
    for user, listed in (("UALICE", True), ("UBOB", True), ("UEVE", False)):
        outcome = bot.pipeline.handle("approvals", Actor(user=user, channel=CHANNEL), source="shell")
        assert outcome.ok, outcome.error
        assert (approval_id in outcome.result.text) is listed, (user, outcome.result)  # type: ignore[union-attr]
    shell = bot.pipeline.handle(
        f"--reason x rm -f {container.name}", Actor(user="UALICE", channel=CHANNEL), source="shell"
    )
    assert not shell.ok and shell.error is not None and "request it in Slack" in shell.error.message
    assert exists(docker_client, container.id)


def test_a_container_that_appeared_since_the_request_is_not_removed(
    chatdock: Callable[..., Chatdock], web: Callable[..., Any], docker_client: docker.DockerClient, name: Any
) -> None:
    """``rm -f`` of a name nobody used was approved as "nothing to remove"; a container created under that name
    since is not what was approved."""
    bot = chatdock()
    later = name("web")
    approval_id, _card = request(bot.slack, f"--reason cleanup rm -f {later}")
    appeared = web(later)
    assert "Approved, but not run" in click(bot.slack, approval_id, "approve", user="UBOB")
    refused = drawn(bot.slack.fake, approval_id, "not run")
    assert "did not exist when it was approved and exists now" in all_text(blocks_of(refused))
    assert exists(docker_client, appeared.id)


def test_run_waits_for_its_images_and_a_retagged_image_is_refused(
    chatdock: Callable[..., Chatdock], docker_client: docker.DockerClient, name: Any, created: list[str]
) -> None:
    """``images`` narrows a ``run`` rule; the image's digest is what was approved."""
    repository = f"local/{name('img')}"
    policy = approval_policy().replace("  - commands: [rm]", f'  - commands: [run]\n    images: ["{repository}"]')
    bot = chatdock(policy)
    base = docker_client.images.get(TEST_IMAGE)
    base.tag(repository, "1")
    scratch = docker_client.containers.create(TEST_IMAGE, ["true"], name=name("web"))
    created.append(scratch.name)
    other = scratch.commit(repository=repository, tag="other", changes=["LABEL approval=test"])
    try:
        plain = name("web")
        created.append(plain)
        ran = bot.slack.reply(bot.slack.command(f"run -d --name {plain} {TEST_IMAGE} sleep 30", user="UALICE"))
        assert exists(docker_client, plain), all_text(ran)  # an image the rule does not name runs at once

        held = name("web")
        created.append(held)
        approval_id, _card = request(bot.slack, f"--reason canary run -d --name {held} {repository}:1 sleep 30")
        assert not exists(docker_client, held)
        docker_client.api.tag(other.id, repository, "1")  # the same name, another image
        assert "Approved, but not run" in click(bot.slack, approval_id, "approve", user="UBOB")
        refused = drawn(bot.slack.fake, approval_id, "not run")
        assert f"image {repository}:1 now has digest" in all_text(blocks_of(refused))
        assert not exists(docker_client, held)

        again, _card = request(bot.slack, f"--reason canary run -d --name {held} {repository}:1 sleep 30")
        assert click(bot.slack, again, "approve", user="UCAROL").startswith("Approved: it ran")
        started = docker_client.containers.get(held)
        assert started.image.id == other.id and started.labels["chatdock.owner"] == "UALICE"  # for the requester
    finally:
        for tag in (f"{repository}:1", f"{repository}:other"):
            with contextlib.suppress(docker.errors.APIError):
                docker_client.images.remove(tag, force=True)


def test_a_button_that_needs_approval_waits_too(
    chatdock: Callable[..., Chatdock], web: Callable[..., Any], docker_client: docker.DockerClient
) -> None:
    """The Remove button on a container's message is a request like the typed one: it waits for approval."""
    bot = chatdock(approval_policy(reason="optional"))
    container = web()
    stopped = bot.slack.reply(bot.slack.command(f"stop -t 0 {container.name}", user="UALICE"))
    before = len(card_calls(bot.slack.fake))
    clicked = bot.slack.click(stopped, "rm", user="UALICE")
    note = bot.slack.reply(clicked)
    assert "waits for approval" in all_text(note) and note.get("response_type") == "ephemeral"
    assert not note.get("replace_original"), "the container's message stays as it was"
    card = bot.slack.fake.wait_for(lambda: next(iter(card_calls(bot.slack.fake)[before:]), None))
    approval_id = next(
        e["value"]
        for b in blocks_of(card)
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == "approval:approve"
    )
    assert exists(docker_client, container.id)
    click(bot.slack, approval_id, "approve", user="UBOB")
    assert not exists(docker_client, container.id)
