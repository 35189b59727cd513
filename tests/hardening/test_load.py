"""Load: 500 slash commands from 50 simulated users within 60 s, signed, over HTTP, to chatdock's real server on
the real engine, while the engine is kept busy (three ``run --rm IMAGE sleep 5`` in flight all along).

Each user types ten commands, one after the other, waiting for the answer and a moment to read it, as people do:
45 admins (two thirds run a container through its life: ``run -d``, ``ps``, ``inspect``, ``port``, ``logs``,
``stop -t 0``, ``start``, ``stats``, ``rm -f``, ``history``; one third make and remove a network around
``network ls``, ``ps -a``, ``help``, ``stats`` / ``logs`` / ``inspect`` / ``port`` of a shared container) and five
viewers, whose reads work and whose writes are denied. Then:

- every request was acknowledged with HTTP 200 within 3 s (p50 / p99 / max are printed);
- every request has exactly one audit row (found by user and text; request IDs unique), with the expected
  outcome (``ok``, or ``denied`` for the viewers' writes) and its delivery recorded;
- every request got exactly one reply: a post to its response_url, a chat.postMessage naming its request ID
  (replies with a file), or, for a refusal, the ephemeral ack itself;
- no container was created twice: the engine's ``create`` events, by the label each ``run`` carries and by
  name, number one per successful ``run``; and nothing of the load is left afterwards.

Marked ``load`` (``make load`` runs only this); it also runs with the rest of the suite (about a minute).
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from bot.engine import Engine
from bot.policy import Policy, load_policy_text
from handlers import build_registry
from tests.conftest import PREFIX, SESSION, TEST_LABEL, TEST_POLICY
from tests.e2e.conftest import REQUEST_ID, Sent, all_text
from tests.hardening.chat import Chat, free_port, running_chat
from tests.hardening.tally import TALLY

pytestmark = [pytest.mark.docker, pytest.mark.load]

IMAGE = "local/busybox:test"
USERS = 50
VIEWERS = 5
PER_USER = 10
SEND_WINDOW = 60.0  # all 500 commands are sent within this
ACK_LIMIT = 3.0  # Slack's deadline for the HTTP answer
BUSY = 3  # `run --rm IMAGE sleep 5` kept in flight while the users type
LABEL = "cdt-load"  # every container the load runs carries it, with a value of its own

ADMINS = [f"ULOAD{n:02d}" for n in range(1, USERS - VIEWERS + 1)]
VIEWER_IDS = [f"ULOAD{n:02d}" for n in range(USERS - VIEWERS + 1, USERS + 1)]
ADMIN_GRANT = "- {role: admin, users: [UADMIN]}"
LOAD_POLICY = TEST_POLICY.replace(ADMIN_GRANT, "- {role: admin, users: [UADMIN, " + ", ".join(ADMINS) + "]}")


@dataclass
class Cmd:
    user: str
    channel: str
    text: str
    expect: str = "ok"  # the audit outcome
    run_label: str | None = None  # the label value of a `run`
    sent: Sent | None = None
    sent_at: float = 0.0
    row: dict[str, Any] | None = None


@dataclass
class Load:
    commands: list[Cmd] = field(default_factory=list)
    busy: list[Cmd] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)


def scripts(shared: str) -> list[list[Cmd]]:
    """Ten commands per user; every text is unique for its user (the audit row is found by user and text)."""
    everyone = []
    for index, user in enumerate([*ADMINS, *VIEWER_IDS]):
        channel = f"CLOAD{index % 5}"
        tag = f"{user.lower()}-{uuid.uuid4().hex[:4]}"

        def cmd(
            text: str, expect: str = "ok", run_label: str | None = None, user: str = user, channel: str = channel
        ) -> Cmd:
            return Cmd(user=user, channel=channel, text=text, expect=expect, run_label=run_label)

        if user in VIEWER_IDS:
            script = [
                cmd("ps"),
                cmd(f"stop -t 0 {shared}", "denied"),
                cmd(f"run -d --name {PREFIX}web-{tag} -l {LABEL}={tag} {IMAGE}", "denied", run_label=tag),
                cmd(f"logs {shared}"),
                cmd(f"network create {PREFIX}net-{tag}", "denied"),
                cmd("help"),
                cmd(f"rm -f {shared}", "denied"),
                cmd("history"),
                cmd(f"port {shared}"),
                cmd(f"start {shared}", "denied"),
            ]
        elif index % 3 != 2:
            name = f"{PREFIX}web-{tag}"
            script = [
                cmd(f"run -d --name {name} -l {LABEL}={tag} {IMAGE}", run_label=tag),
                cmd("ps"),
                cmd(f"inspect {name}"),
                cmd(f"port {name}"),
                cmd(f"logs {name}"),
                cmd(f"stop -t 0 {name}"),
                cmd(f"start {name}"),
                cmd(f"stats {name}"),
                cmd(f"rm -f {name}"),
                cmd("history"),
            ]
        else:
            network = f"{PREFIX}net-{tag}"
            script = [
                cmd(f"network create {network}"),
                cmd("network ls"),
                cmd("ps -a"),
                cmd("help"),
                cmd(f"stats {shared}"),
                cmd(f"logs {shared}"),
                cmd(f"inspect {shared}"),
                cmd(f"port {shared}"),
                cmd(f"network rm {network}"),
                cmd("history"),
            ]
        assert len(script) == PER_USER and len({c.text for c in script}) == PER_USER
        everyone.append(script)
    return everyone


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def load_policy() -> Policy:
    assert ADMIN_GRANT in TEST_POLICY
    return load_policy_text(LOAD_POLICY, source="load policy", known_commands=[*build_registry().names(), "history"])


@pytest.fixture(scope="module")
def shared(docker_client: docker.DockerClient) -> Iterator[str]:
    """A running, chatdock-managed container everyone reads (with a published port for ``port``)."""
    name = f"{PREFIX}web-shared-{uuid.uuid4().hex[:6]}"
    container = docker_client.containers.run(
        IMAGE,
        name=name,
        detach=True,
        ports={"80/tcp": ("127.0.0.1", free_port())},
        labels={TEST_LABEL: SESSION, "chatdock.managed": "true", "chatdock.owner": "UADMIN"},
    )
    yield name
    container.remove(force=True)


@pytest.fixture(scope="module")
def chat(
    docker_client: docker.DockerClient, load_policy: Policy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Chat]:
    engine = Engine(timeout=30, pool_size=48)
    try:
        with running_chat(engine, load_policy, tmp_path_factory.mktemp("load"), workers=32, run_timeout=30) as c:
            yield c
    finally:
        engine.close()
        _remove_load_leftovers(docker_client)


def _remove_load_leftovers(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    for network in client.networks.list():
        if network.name.startswith(f"{PREFIX}net-uload"):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()


# ------------------------------------------------------------------------------------------ the users


class Audit:
    """A read-only view of the audit log, one per thread (SQLite connections are not shared)."""

    def __init__(self, db: Path) -> None:
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row

    def rows(self, user: str, text: str) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT * FROM chatdock_audit WHERE user_id = ? AND text = ? ORDER BY id", (user, text)
        )
        return [dict(row) for row in cursor.fetchall()]

    def close(self) -> None:
        self.conn.close()


def send(chat: Chat, cmd: Cmd) -> Sent:
    response_url = chat.fake.new_response_url()
    form = chat.slack.command_form(
        cmd.text, user=cmd.user, command="/docker", channel=cmd.channel, response_url=response_url
    )
    body = urlencode(form)
    cmd.sent_at = time.monotonic()
    cmd.sent = chat.slack.post(body, chat.slack.signed_headers(body), response_url)
    return cmd.sent


def wait_done(audit: Audit, cmd: Cmd, *, timeout: float = 60) -> dict[str, Any] | None:
    """The command's audit row once its reply went out (delivery recorded); None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = audit.rows(cmd.user, cmd.text)
        if rows and rows[0]["delivery"] is not None:
            return rows[0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def user(chat: Chat, load: Load, script: list[Cmd]) -> None:
    audit = Audit(chat.db)
    try:
        time.sleep(random.uniform(0, 4))  # people do not all start typing in the same second
        for cmd in script:
            send(chat, cmd)
            with load.lock:
                load.commands.append(cmd)
            if wait_done(audit, cmd) is None:
                with load.lock:
                    load.errors.append(f"{cmd.user} {cmd.text!r}: no answer within 60 s")
            time.sleep(random.uniform(0.3, 1.6))  # reading the answer
    except Exception as exc:  # reported by the test, never lost in a thread
        with load.lock:
            load.errors.append(f"{script[0].user}: {type(exc).__name__}: {exc}")
    finally:
        audit.close()


def busy(chat: Chat, load: Load, stop: threading.Event) -> None:
    """Keep BUSY `run --rm IMAGE sleep 5` in flight until the users are done."""
    audit = Audit(chat.db)
    in_flight: list[Cmd] = []
    count = 0
    try:
        while not stop.is_set() or in_flight:
            in_flight = [c for c in in_flight if wait_done(audit, c, timeout=0) is None]
            while not stop.is_set() and len(in_flight) < BUSY:
                count += 1
                tag = f"busy-{SESSION}-{count}"
                cmd = Cmd(
                    user="UADMIN", channel="CLOAD9", text=f"run --rm -l {LABEL}={tag} {IMAGE} sleep 5", run_label=tag
                )
                send(chat, cmd)
                in_flight.append(cmd)
                with load.lock:
                    load.busy.append(cmd)
            time.sleep(0.2)
    except Exception as exc:
        with load.lock:
            load.errors.append(f"busy: {type(exc).__name__}: {exc}")
    finally:
        audit.close()


# ------------------------------------------------------------------------------------------ the test


def test_500_commands_from_50_users_in_a_minute(chat: Chat, docker_client: docker.DockerClient, shared: str) -> None:
    everyone = scripts(shared)
    load = Load()
    stop = threading.Event()
    # the engine replays only its last 256 events: watch them live (subscribed before the first request)
    creates: list[dict[str, Any]] = []
    stream = docker_client.events(filters={"type": "container", "event": "create", "label": LABEL}, decode=True)
    watcher = threading.Thread(target=lambda: creates.extend(stream), name="load-events", daemon=True)
    watcher.start()
    start = time.monotonic()
    busy_thread = threading.Thread(target=busy, args=(chat, load, stop), name="load-busy")
    busy_thread.start()
    time.sleep(0.5)  # the engine is busy before the first user types
    users = [threading.Thread(target=user, args=(chat, load, s), name=f"load-{s[0].user}") for s in everyone]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(timeout=150)
    stop.set()
    busy_thread.join(timeout=60)
    done_s = time.monotonic() - start
    time.sleep(0.5)
    stream.close()
    watcher.join(timeout=10)

    assert not load.errors, load.errors[:20]
    assert not any(t.is_alive() for t in users), "a user thread did not finish"
    commands = load.commands
    assert len(commands) == USERS * PER_USER
    window = max(c.sent_at for c in commands) - min(c.sent_at for c in commands)
    everything = [*commands, *load.busy]

    # every request acknowledged with 200 within 3 s
    acks = sorted(c.sent.elapsed for c in everything if c.sent)
    assert len(acks) == len(everything)
    assert all(c.sent is not None and c.sent.response.status_code == 200 for c in everything)
    slow = [(c.user, c.text, round(c.sent.elapsed, 2)) for c in everything if c.sent and c.sent.elapsed >= ACK_LIMIT]
    assert not slow, slow

    # exactly one audit row each, the expected outcome, the delivery recorded and not failed
    audit = Audit(chat.db)
    try:
        problems = []
        for cmd in everything:
            rows = audit.rows(cmd.user, cmd.text)
            if len(rows) != 1:
                problems.append(f"{cmd.user} {cmd.text!r}: {len(rows)} audit rows")
                continue
            cmd.row = rows[0]
            if cmd.row["outcome"] != cmd.expect:
                problems.append(f"{cmd.user} {cmd.text!r}: {cmd.row['outcome']} ({cmd.row['message']})")
            if not cmd.row["delivery"] or str(cmd.row["delivery"]).startswith("failed"):
                problems.append(f"{cmd.user} {cmd.text!r}: delivery {cmd.row['delivery']!r}")
        total_rows = audit.conn.execute("SELECT COUNT(*) FROM chatdock_audit").fetchone()[0]
    finally:
        audit.close()
    assert not problems, problems[:20]
    ids = [c.row["request_id"] for c in everything if c.row]
    assert len(set(ids)) == len(ids) == total_rows == len(everything)

    # exactly one reply each: its response_url, a chat.postMessage naming it, or the ephemeral ack
    posted: Counter[str] = Counter()
    for call in chat.fake.calls_to("chat.postMessage"):
        if call.answer.get("ok"):
            for found in set(REQUEST_ID.findall(all_text(call.args.get("blocks")))):
                posted[found.removeprefix("request ")] += 1
    replies_lost = 0
    for cmd in everything:
        assert cmd.sent is not None and cmd.row is not None
        ack = cmd.sent.ack
        refused_in_ack = ack.get("response_type") == "ephemeral"
        by_url = chat.fake.answers_to(cmd.sent.response_url).count(200)
        replies = by_url + posted[cmd.row["request_id"]] + (1 if refused_in_ack else 0)
        if replies == 0:
            replies_lost += 1
        if replies != 1:
            problems.append(f"{cmd.user} {cmd.text!r}: {replies} replies ({cmd.row['delivery']})")
        if refused_in_ack and cmd.row["delivery"] != "ack":
            problems.append(f"{cmd.user} {cmd.text!r}: refused in the ack, delivery {cmd.row['delivery']!r}")
    TALLY.replies_expected += len(everything)
    TALLY.replies_delivered += len(everything) - replies_lost
    TALLY.replies_lost += replies_lost
    assert not problems, problems[:20]

    # no container created twice; nothing left behind
    by_label = Counter((event.get("Actor") or {}).get("Attributes", {}).get(LABEL) for event in creates)
    by_name = Counter((event.get("Actor") or {}).get("Attributes", {}).get("name") for event in creates)
    runs = [c for c in everything if c.run_label]
    for cmd in runs:
        expected = 1 if cmd.expect == "ok" else 0
        assert by_label[cmd.run_label] == expected, f"{cmd.text!r}: created {by_label[cmd.run_label]} times"
    assert sum(by_label.values()) == sum(1 for c in runs if c.expect == "ok")
    assert all(count == 1 for count in by_name.values()), [n for n, k in by_name.items() if k > 1]
    left = docker_client.containers.list(all=True, filters={"label": LABEL})
    assert [c.name for c in left] == []
    assert [n.name for n in docker_client.networks.list() if n.name.startswith(f"{PREFIX}net-uload")] == []

    TALLY.load = {
        "commands": float(len(commands)),
        "busy": float(len(load.busy)),
        "users": float(USERS),
        "sent_s": window,
        "done_s": done_s,
        "ack_p50": statistics.median(acks),
        "ack_p99": acks[min(len(acks) - 1, int(len(acks) * 0.99))],
        "ack_max": acks[-1],
        "denied": float(sum(1 for c in everything if c.expect == "denied")),
        "errors": float(sum(1 for c in everything if c.row and c.row["outcome"] == "error")),
        "containers": float(sum(by_label.values())),
    }
    assert window <= SEND_WINDOW, f"the 500 commands took {window:.1f} s to send"
