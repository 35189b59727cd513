"""The audit trail (bot.audit) through a real Pipeline and a real engine, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from bot import audit
from bot.audit import AuditStore, SqliteAudit, open_audit, parse_since, scrub
from bot.audit import base as audit_base
from bot.cli import main as cli_main
from bot.config import Settings
from bot.models import Actor, RunOutcome
from bot.pipeline import Outcome
from bot.policy import Policy
from bot.wiring import build_pipeline
from tests.conftest import make_pipeline
from tests.support import audit_db
from tests.support.audit_db import all_stored_text

audit_target = audit_db.audit_target  # both back ends (fixture)
stores = audit_db.stores  # fixture

ADMIN = Actor(user="UADMIN", channel="COPS", team="T1")
VIEWER = Actor(user="UVIEW", channel="COPS", team="T1")
LIMITS = "-m 64m --cpus 0.5"


def _wait(predicate: Any, timeout: float = 20.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


# --------------------------------------------------------------------------------------------- walkthrough


def test_walkthrough_is_recorded(
    engine: Any, team_policy: Policy, name: Any, image: str, audit_target: str, stores: Any
) -> None:
    store = stores(audit_target, redact=team_policy.redact)
    pipeline = make_pipeline(engine, team_policy, auditor=store, history=store.recent, run_timeout=20)
    web = name("web")

    outcomes: list[Outcome] = []

    def say(text: str, actor: Actor = ADMIN, **kwargs: Any) -> Outcome:
        outcome = pipeline.handle(text, actor, **kwargs)
        outcomes.append(outcome)
        return outcome

    started = say(f"run -d --name {web} {LIMITS} -e DB_PASSWORD=hunter2 {image} sleep 300", source="slack")
    assert started.ok, started.error
    assert isinstance(started.result, RunOutcome)
    container_id = started.result.container.id
    assert say(f"stop -t 1 {web}", source="slack").ok
    denied = say(f"rm -f {web}", VIEWER, source="slack")
    assert denied.error is not None and denied.error.kind == "denied"
    usage = say(f"run --bogus {image}", source="slack")
    assert usage.error is not None and usage.error.kind == "usage"
    clicked = say(f"start {web}", source="button", expect_states={container_id: "exited"})
    assert clicked.ok, clicked.error
    assert say("ps -a", source="slack").ok
    assert say(f"rm -f {web}", source="slack").ok

    rows = list(store.export())
    assert [r["request_id"] for r in rows] == [o.request_id for o in outcomes]
    assert [r["command"] for r in rows] == ["run", "stop", "rm", None, "start", "ps", "rm"]
    assert [r["outcome"] for r in rows] == ["ok", "ok", "denied", "usage", "ok", "ok", "ok"]
    assert [r["source"] for r in rows] == ["slack", "slack", "slack", "slack", "button", "slack", "slack"]
    assert [r["user"] for r in rows] == ["UADMIN", "UADMIN", "UVIEW", "UADMIN", "UADMIN", "UADMIN", "UADMIN"]
    for row in rows:
        assert row["team"] == "T1" and row["channel"] == "COPS"
        assert row["ended"] is not None and row["time"] <= row["ended"]
        assert row["duration_ms"] is not None and row["duration_ms"] >= 0
        assert row["instance"] == store.instance

    run_row, stop_row, denied_row, usage_row, start_row, ps_row, rm_row = rows
    # what was typed (redacted), the parsed request (env masked), the decision
    assert run_row["text"] == f"run -d --name {web} {LIMITS} -e DB_PASSWORD=*** {image} sleep 300"
    assert run_row["request"]["env"] == ["DB_PASSWORD=***"]
    assert run_row["request"]["name"] == web and run_row["request"]["detach"] is True
    assert run_row["decision"]["allowed"] is True and run_row["decision"]["rule"]
    assert run_row["container_ids"] == [container_id]
    assert run_row["message"].startswith(f"started {web}")
    assert stop_row["container_ids"] == [container_id] and stop_row["message"] == f"stop {web}"
    assert denied_row["decision"]["allowed"] is False
    assert denied_row["decision"]["rule"] == denied.error.rule
    assert denied_row["message"] == denied.error.message
    assert denied_row["container_ids"] == []
    assert usage_row["message"] == usage.error.message and "--bogus" in usage_row["message"]
    assert usage_row["text"] == f"run --bogus {image}" and usage_row["request"] is None
    assert usage_row["decision"] is None
    assert start_row["source"] == "button" and start_row["container_ids"] == [container_id]
    assert "container" in ps_row["message"]
    assert rm_row["container_ids"] == [container_id]
    assert "hunter2" not in json.dumps(rows)
    assert b"hunter2" not in all_stored_text(store, audit_target)


# --------------------------------------------------------------------------------------------- begin before run


def test_entry_exists_while_the_request_runs(
    engine: Any, team_policy: Policy, image: str, audit_target: str, stores: Any
) -> None:
    store = stores(audit_target)
    pipeline = make_pipeline(engine, team_policy, auditor=store, history=store.recent, run_timeout=20)
    done: list[Outcome] = []
    worker = threading.Thread(target=lambda: done.append(pipeline.handle(f"run --rm {LIMITS} {image} sleep 3", ADMIN)))
    worker.start()
    try:
        seen = _wait(lambda: [r for r in store.recent(channel="COPS") if r["command"] == "run"], timeout=10)
        assert worker.is_alive(), "the request finished before its entry was seen"
        assert seen[0]["outcome"] == "running" and seen[0]["ended"] is None

        # a sibling opening the log meanwhile must not take the running entry for an interrupted one
        sibling = stores(audit_target)
        assert sibling.mark_interrupted() == 0
        assert [r["outcome"] for r in sibling.recent(channel="COPS")] == ["running"]
    finally:
        worker.join(30)
    assert done and done[0].ok, done and done[0].error
    (row,) = store.recent(channel="COPS")
    assert row["outcome"] == "ok" and row["message"].endswith("exited with code 0, removed")
    assert row["duration_ms"] >= 2500


# --------------------------------------------------------------------------------------------- kill -9


def test_kill_9_leaves_the_entry_marked_interrupted(
    docker_client: docker.DockerClient, image: str, name: Any, audit_target: str, stores: Any, tmp_path: Path
) -> None:
    sleeper = name("killed")
    env = {k: v for k, v in os.environ.items() if k != "CHATDOCK_POLICY"}
    env["CHATDOCK_DB"] = audit_target
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "shell", "-c", f"run --rm --name {sleeper} {image} sleep 30"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def begun() -> list[dict[str, Any]]:
            reader = open_audit(audit_target, readonly=True)
            try:
                return [r for r in reader.export() if r["command"] == "run" and r["outcome"] == "running"]
            finally:
                reader.close()

        (entry,) = _wait(begun, timeout=30, step=0.1)
        _wait(lambda: docker_client.containers.get(sleeper).status == "running", timeout=20)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

        store = stores(audit_target)  # opening marks what the dead process left
        (row,) = [r for r in store.export() if r["request_id"] == entry["request_id"]]
        assert row["outcome"] == "interrupted"
        assert row["message"] == audit.INTERRUPTED_MESSAGE
        assert row["ended"] is not None
        assert row["text"] == f"run --rm --name {sleeper} {image} sleep 30"
        assert store.mark_interrupted() == 0
        if isinstance(store, SqliteAudit):
            assert store.integrity_check() == "ok"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(sleeper).remove(force=True)


def _fake_instance(store: AuditStore, instance: str, *, machine: str, pid: int, heartbeat: float) -> int:
    """Register another instance and give it one unfinished row; return the row's ID."""

    def work(run: Any) -> int:
        run(
            "INSERT INTO chatdock_audit_instances (instance, machine, pid, pid_start, started_at, heartbeat_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (instance, machine, pid, "1", heartbeat, heartbeat),
        )
        rows = run(
            "INSERT INTO chatdock_audit (request_id, instance, started_at, channel, user_id, text, command) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (instance[:8], instance, heartbeat, "CX", "UX", "ps", "ps"),
        )
        return int(rows[0][0])

    result: int = store._call(work, transaction=True)
    return result


def test_other_machines_are_judged_by_their_heartbeat(audit_target: str, stores: Any) -> None:
    store = stores(audit_target, stale_after=60)
    now = time.time()
    fresh = _fake_instance(store, "fresh-elsewhere", machine="other-boot/1", pid=os.getpid(), heartbeat=now - 5)
    stale = _fake_instance(store, "stale-elsewhere", machine="other-boot/1", pid=os.getpid(), heartbeat=now - 600)
    gone_here = _fake_instance(store, "dead-here", machine=audit.machine_key(), pid=2**22 + 17, heartbeat=now)
    assert store.mark_interrupted() == 2
    outcome = {r["id"]: r["outcome"] for r in store.export()}
    assert outcome == {fresh: "running", stale: "interrupted", gone_here: "interrupted"}
    instances = store._call(lambda run: run("SELECT instance FROM chatdock_audit_instances ORDER BY instance", ()))
    assert sorted(r[0] for r in instances) == sorted(["fresh-elsewhere", store.instance])


def test_closing_marks_own_unfinished_entries(audit_target: str, stores: Any) -> None:
    store = stores(audit_target)
    store.begin(
        request_id="abc12345",
        actor=ADMIN,
        text="ps",
        source="shell",
        command="ps",
        request={"command": "ps"},
        decision=None,
    )
    store.close()
    reader = stores(audit_target)
    (row,) = reader.export()
    assert row["outcome"] == "interrupted"


# --------------------------------------------------------------------------------------------- redaction


def test_nothing_secret_is_stored(
    engine: Any, team_policy: Policy, image: str, audit_target: str, stores: Any, monkeypatch: Any, capsys: Any
) -> None:
    bot_token = "xoxb-1111111111-2222222222-abcdefghijklmnop"
    signing = "s3cr3t-signing-value-42"
    store = stores(audit_target, redact=("SESAME",), secrets=(signing,))
    pipeline = make_pipeline(engine, team_policy, auditor=store, history=store.recent)
    texts = [
        f"run --dry-run {LIMITS} -e DB_PASSWORD=hunter2 --env=API_TOKEN=hunter2 -e OPEN_SESAME=hunter2 "
        f"-e SLACK={bot_token} -e PLAIN={signing} -l db_password=hunter2 {image} sh -c 'echo DB_PASSWORD=hunter2'",
        f"run -e DB_PASSWORD=hunter2 --bogus {image}",  # usage error
        "run -e DB_PASSWORD=hunter2 \x01",  # unparseable: the pipeline only masks token shapes here
        "exec --dry-run -e DB_PASSWORD=hunter2 nosuchcontainer env",
    ]
    for text in texts:
        pipeline.handle(text, ADMIN)
    rows = list(store.export())
    assert len(rows) == len(texts)
    assert rows[0]["outcome"] == "ok"
    env = rows[0]["request"]["env"]
    assert env == ["DB_PASSWORD=***", "API_TOKEN=***", "OPEN_SESAME=***", "SLACK=***", "PLAIN=***"]
    assert ["db_password", "***"] in rows[0]["request"]["labels"]
    assert "-e DB_PASSWORD=*** --env=API_TOKEN=***" in rows[0]["text"]

    stored = all_stored_text(store, audit_target)
    for secret in (b"hunter2", bot_token.encode(), signing.encode()):
        assert secret not in stored

    history = pipeline.handle("history 10", ADMIN)
    assert history.ok
    shown = json.dumps(history.result.model_dump(mode="json"))  # type: ignore[union-attr]
    assert "hunter2" not in shown and "DB_PASSWORD=***" in shown

    monkeypatch.setenv("CHATDOCK_DB", audit_target)
    assert cli_main(["audit", "export"]) == 0
    exported = capsys.readouterr().out
    assert exported.count("\n") == len(texts) + 1
    assert "hunter2" not in exported and signing not in exported and bot_token not in exported
    assert "DB_PASSWORD=***" in exported


def test_secret_values_typed_as_plain_arguments_are_not_stored(
    engine: Any, team_policy: Policy, image: str, audit_target: str, stores: Any, name: Any, docker_client: Any
) -> None:
    """A request's own -e value, or its target container's secret env value, typed again as an argument."""
    store = stores(audit_target)
    pipeline = make_pipeline(engine, team_policy, auditor=store, history=store.recent)
    web = name("web")
    try:
        ran = pipeline.handle(f"run --rm {LIMITS} -e DB_PASSWORD=fgsecret777 {image} echo fgsecret777", ADMIN)
        assert ran.ok and "fgsecret777" not in ran.shown_text
        started = pipeline.handle(f"run -d {LIMITS} --name {web} -e DB_PASSWORD=hunter2secret {image} sleep 60", ADMIN)
        assert started.ok
        execd = pipeline.handle(f"exec {web} echo hunter2secret", ADMIN)
        assert execd.ok and execd.shown_text == f"exec {web} echo ***"
        rows = list(store.export())
        assert rows[0]["request"]["args"] == ["echo", "***"]
        assert rows[-1]["text"] == f"exec {web} echo ***" and rows[-1]["request"]["argv"] == ["echo", "***"]
        stored = all_stored_text(store, audit_target)
        assert b"fgsecret777" not in stored and b"hunter2secret" not in stored
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(web, force=True)


def test_scrub_masks_assignments_anywhere() -> None:
    assert scrub("x DB_PASSWORD=hunter2 y") == "x DB_PASSWORD=*** y"
    assert scrub('a "DB_PASSWORD=hunter 2" b') == 'a "DB_PASSWORD=***" b'
    assert scrub("--env=MY_SECRET=abc,def --name=web") == "--env=MY_SECRET=*** --name=web"
    assert scrub("COLOR=blue") == "COLOR=blue"
    assert scrub("OPEN_SESAME=x", ["sesame"]) == "OPEN_SESAME=***"
    assert scrub("token xoxb-1234567890-abcdefghijkl here") == "token *** here"
    assert scrub("literal s3cr3t!", secrets=["s3cr3t!"]) == "literal ***"


# --------------------------------------------------------------------------------------------- export


def test_export_json_lines_since_and_channel(
    engine: Any, team_policy: Policy, audit_target: str, stores: Any, monkeypatch: Any, capsys: Any
) -> None:
    store = stores(audit_target)
    pipeline = make_pipeline(engine, team_policy, auditor=store, history=store.recent)
    three_days_ago = time.time() - 3 * 86400
    with monkeypatch.context() as patch:
        patch.setattr(audit_base, "now", lambda: three_days_ago)  # the clock every audit module reads
        old = pipeline.handle("help", Actor(user="U1", channel="C1"))
    recent_c1 = pipeline.handle("help ps", Actor(user="U2", channel="C1"))
    recent_c2 = pipeline.handle("nosuchcommand", Actor(user="U3", channel="C2"))

    monkeypatch.setenv("CHATDOCK_DB", audit_target)

    def export(*args: str) -> list[dict[str, Any]]:
        assert cli_main(["audit", "export", *args]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    everything = export()
    assert [r["request_id"] for r in everything] == [old.request_id, recent_c1.request_id, recent_c2.request_id]
    assert everything[2]["outcome"] == "usage" and everything[2]["command"] is None
    assert set(everything[0]) >= {
        "time", "team", "channel", "user", "source", "text", "command", "request", "decision",
        "outcome", "message", "container_ids", "network_ids", "duration_ms",
    }  # fmt: skip
    assert [r["request_id"] for r in export("--since", "24h")] == [recent_c1.request_id, recent_c2.request_id]
    assert [r["request_id"] for r in export("--since", "24h", "--channel", "C1")] == [recent_c1.request_id]
    assert [r["request_id"] for r in export("--channel", "C1")] == [old.request_id, recent_c1.request_id]
    assert len(export("--since", "2000-01-01")) == 3
    assert export("--since", "2999-01-01T00:00:00+00:00") == []
    assert cli_main(["audit", "export", "--since", "yesterday-ish"]) == 2
    assert "--since" in capsys.readouterr().err


def test_export_of_a_missing_sqlite_log_says_so(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("CHATDOCK_DB", str(tmp_path / "none.db"))
    assert cli_main(["audit", "export"]) == 1
    assert "no audit log" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_parse_since() -> None:
    now = 1_800_000_000.0
    assert parse_since("24h", now=now) == now - 86400
    assert parse_since("1h30m", now=now) == now - 5400
    assert parse_since("7d", now=now) == now - 7 * 86400
    assert parse_since("2026-11-28") == parse_since("2026-11-28T00:00:00Z")
    with pytest.raises(ValueError, match="duration"):
        parse_since("soon")


# --------------------------------------------------------------------------------------------- wiring


def test_wiring_opens_the_log_from_settings(tmp_path: Path, team_policy: Policy) -> None:
    settings = Settings(db=str(tmp_path / "wired.db"), slack_bot_token="xoxb-99999999-abcdefghijklmnopq")
    pipeline = build_pipeline(settings, team_policy)
    store = pipeline.auditor
    try:
        assert isinstance(store, SqliteAudit) and store.path == str(tmp_path / "wired.db")
        assert pipeline.history == store.recent
        outcome = pipeline.handle("help", Actor(user="U1", channel="C9"))
        assert outcome.ok
        assert [r["command"] for r in store.recent(channel="C9")] == ["help"]
        journal = store._call(lambda run: run("PRAGMA journal_mode", ()))[0][0]
        synchronous = store._call(lambda run: run("PRAGMA synchronous", ()))[0][0]
        assert (journal, synchronous) == ("wal", 1)  # 1 = NORMAL
    finally:
        store.close()  # type: ignore[attr-defined]
        pipeline.engine.close()


def test_many_threads_write_at_once(audit_target: str, stores: Any) -> None:
    store = stores(audit_target)

    def work(n: int) -> None:
        for i in range(10):
            actor = Actor(user=f"U{n}", channel="CT")
            store.begin(
                request_id=f"r{n}-{i}",
                actor=actor,
                text="ps",
                source="shell",
                command="ps",
                request=None,
                decision=None,
            )
            store.end(Outcome(request_id=f"r{n}-{i}", ok=True, text="ps", shown_text="ps", actor=actor, command="ps"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    rows = list(store.export())
    assert len(rows) == 80 and {r["outcome"] for r in rows} == {"ok"}
    assert len({r["request_id"] for r in rows}) == 80


# --------------------------------------------------------------------------------------------- user_team

# The audit table as chatdock created it before the ``user_team`` column (it had ``delivery`` already).
BEFORE_USER_TEAM = """CREATE TABLE chatdock_audit (
    id {key}, request_id TEXT NOT NULL, instance TEXT NOT NULL,
    started_at {real} NOT NULL, ended_at {real}, team TEXT NOT NULL DEFAULT '', channel TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '', text TEXT NOT NULL DEFAULT '', command TEXT,
    request TEXT, allowed {boolean}, rule TEXT, reason TEXT, outcome TEXT, message TEXT NOT NULL DEFAULT '',
    container_ids TEXT NOT NULL DEFAULT '[]', network_ids TEXT NOT NULL DEFAULT '[]', duration_ms {real},
    delivery TEXT)"""
OLD_ROW = (
    "INSERT INTO chatdock_audit (request_id, instance, started_at, ended_at, team, user_id, text, outcome) "
    "VALUES ('0ld0ld00', 'gone', 1.0, 2.0, 'T0HOME', 'UADMIN', 'ps', 'ok')"
)


def _log_before_user_team(target: str) -> None:
    if target.startswith("postgres"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(
                BEFORE_USER_TEAM.format(
                    key="BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                    real="DOUBLE PRECISION",
                    boolean="BOOLEAN",
                )
            )
            conn.execute(OLD_ROW)
        return
    import sqlite3

    with sqlite3.connect(target) as conn:
        conn.execute(BEFORE_USER_TEAM.format(key="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL", boolean="INTEGER"))
        conn.execute(OLD_ROW)


def test_the_users_own_workspace_is_recorded_and_older_logs_gain_the_column(audit_target: str, stores: Any) -> None:
    _log_before_user_team(audit_target)
    if not audit_target.startswith("postgres"):
        with open_audit(audit_target, readonly=True) as reader:  # read-only: read as empty, nothing changed
            assert [row["user_team"] for row in reader.export()] == [""]
    store = stores(audit_target)
    partner = Actor(user="U0EXT", channel="CSHARED", team="T0HOME", user_team="T0PARTNER", external=True)
    store.begin(
        request_id="abcd1234", actor=partner, text="ps", source="slack", command="ps", request=None, decision=None
    )
    rows = {row["request_id"]: (row["team"], row["user_team"]) for row in store.export()}
    assert rows == {"0ld0ld00": ("T0HOME", ""), "abcd1234": ("T0HOME", "T0PARTNER")}
    again = stores(audit_target)  # opening a migrated log again changes nothing
    assert len(list(again.export())) == 2
    assert [row["user_team"] for row in again.recent(channel="CSHARED")] == ["T0PARTNER"]  # history reads it too
