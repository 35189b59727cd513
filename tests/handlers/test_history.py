"""``history``: the channel's recent requests from the audit log, through a real Pipeline, on both back ends."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.models import Actor, HistoryView
from bot.pipeline import Outcome, Pipeline
from bot.policy import Policy, load_policy_text
from bot.render_text import render
from handlers import build_registry
from handlers.history import MAX_ENTRIES, HistoryRequest
from tests.conftest import make_pipeline
from tests.support import audit_db

audit_target = audit_db.audit_target  # both back ends (fixture)
stores = audit_db.stores  # fixture

ADMIN_C1 = Actor(user="UADMIN", channel="C1", team="T1")
OTHER_C1 = Actor(user="UOTHER", channel="C1", team="T1")
ADMIN_C2 = Actor(user="UADMIN", channel="C2", team="T1")


@pytest.fixture
def seeded(engine: Any, team_policy: Policy, audit_target: str, stores: Any) -> Pipeline:
    """C1: help (ok), ps --bogus (usage, UOTHER), rm -f x (denied, UOTHER), help ps (ok); C2: help run (ok)."""
    store = stores(audit_target, redact=team_policy.redact)
    pipeline = make_pipeline(engine, team_policy, auditor=store, history=store.recent)
    for text, actor in [
        ("help", ADMIN_C1),
        ("ps --bogus", OTHER_C1),
        ("rm -f somecontainer", OTHER_C1),
        ("help ps", ADMIN_C1),
        ("help run", ADMIN_C2),
    ]:
        pipeline.handle(text, actor)
    return pipeline


def entries(pipeline: Pipeline, text: str, actor: Actor = ADMIN_C1) -> list[dict[str, Any]]:
    outcome = pipeline.handle(text, actor)
    assert outcome.ok, outcome.error
    assert isinstance(outcome.result, HistoryView)
    return list(outcome.result.entries)


def test_newest_first_for_this_channel_only(seeded: Pipeline) -> None:
    shown = entries(seeded, "history")
    assert [e["command"] for e in shown] == ["help ps", "rm -f somecontainer", "ps --bogus", "help"]
    assert [e["who"] for e in shown] == ["UADMIN", "UOTHER", "UOTHER", "UADMIN"]
    assert [e["outcome"] for e in shown] == ["ok", "denied", "usage", "ok"]
    assert all(set(e) == {"when", "who", "command", "outcome", "summary"} for e in shown)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", e["when"]) for e in shown)
    assert shown[0]["summary"] == "help ps"
    assert "--bogus" in shown[2]["summary"]

    # the other channel sees its own entry only; the history request itself is left out, earlier ones are not
    assert [e["command"] for e in entries(seeded, "history", ADMIN_C2)] == ["help run"]
    assert [e["command"] for e in entries(seeded, "history", ADMIN_C2)] == ["history", "help run"]


def test_count_user_and_failed_filters(seeded: Pipeline) -> None:
    assert [e["command"] for e in entries(seeded, "history 2")] == ["help ps", "rm -f somecontainer"]
    by_user = ["rm -f somecontainer", "ps --bogus"]
    assert [e["command"] for e in entries(seeded, "history --user @UOTHER")] == by_user
    assert [e["command"] for e in entries(seeded, "history --user UOTHER")] == by_user
    assert [e["command"] for e in entries(seeded, "history --user <@UOTHER|someone>")] == by_user
    assert [e["outcome"] for e in entries(seeded, "history --failed")] == ["denied", "usage"]
    assert [e["command"] for e in entries(seeded, "history 1 --failed --user UOTHER")] == ["rm -f somecontainer"]
    assert entries(seeded, "history --user UNOBODY") == []


def test_default_and_maximum_counts(seeded: Pipeline, team_policy: Policy) -> None:
    pipeline = seeded
    for _ in range(25):
        pipeline.handle("help", ADMIN_C2)
    assert len(entries(pipeline, "history", ADMIN_C2)) == 20
    assert len(entries(pipeline, f"history {MAX_ENTRIES}", ADMIN_C2)) == 27
    assert pipeline.understand("history").request == HistoryRequest(limit=20)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("history 201", "at most 200"),
        ("history 0", "invalid number"),
        ("history lots", "invalid number"),
        ("history 5 6", "at most 1 argument"),
        ("history --user", "needs an argument"),
        ("history --user 'a b'", "invalid user"),
        ("history --everything", "unknown flag"),
    ],
)
def test_usage_errors(seeded: Pipeline, text: str, message: str) -> None:
    outcome = seeded.handle(text, ADMIN_C1)
    assert outcome.error is not None and outcome.error.kind == "usage", outcome
    assert message in outcome.error.message
    assert outcome.error.usage == "history [N] [--user @USER] [--failed] [--context HOST] [--incidents]"


def test_rendered_as_a_table(seeded: Pipeline) -> None:
    text = render(seeded.handle("history 2", ADMIN_C1))
    lines = text.splitlines()
    assert lines[0].split() == ["WHEN", "WHO", "COMMAND", "OUTCOME", "RESULT"]
    assert "rm -f somecontainer" in lines[2] and "denied" in lines[2]


def test_long_commands_are_truncated(engine: Any, team_policy: Policy, audit_target: str, stores: Any) -> None:
    store = stores(audit_target)
    pipeline = make_pipeline(engine, team_policy, auditor=store, history=store.recent)
    pipeline.handle("help " + "x" * 300, ADMIN_C1)
    (entry,) = entries(pipeline, "history")
    assert len(entry["command"]) <= 60 and entry["command"].endswith("…")
    assert len(entry["summary"]) <= 80


def test_governed_by_the_policy(engine: Any, audit_target: str, stores: Any) -> None:
    policy = load_policy_text(
        "roles: {viewer: {commands: [ps, help]}}\ngrants: [{role: viewer, users: ['*']}]\n",
        known_commands=build_registry().names(),
    )
    store = stores(audit_target)
    pipeline = make_pipeline(engine, policy, auditor=store, history=store.recent)
    outcome: Outcome = pipeline.handle("history", ADMIN_C1)
    assert outcome.error is not None and outcome.error.kind == "denied"
    assert [r["outcome"] for r in store.recent(channel="C1")] == ["denied"]


def test_without_an_audit_log(engine: Any, team_policy: Policy) -> None:
    outcome = make_pipeline(engine, team_policy).handle("history", ADMIN_C1)
    assert outcome.error is not None and "no audit log" in outcome.error.message


def test_listed_in_help(seeded: Pipeline) -> None:
    outcome = seeded.handle("help", ADMIN_C1)
    assert any(line.startswith("history [N]") for line in outcome.result.lines)  # type: ignore[union-attr]
