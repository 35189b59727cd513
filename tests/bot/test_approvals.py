"""Approvals (issue #13) below the front door: the ``approve:`` rules, ``--reason``, and the store's once-only claim on
SQLite and PostgreSQL (the Slack flow is in tests/e2e/test_approvals.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.approval_store import ApprovalStore, Held
from bot.approvals import INTERRUPTED_RESULT, Approvals, is_approver, matching_rule
from bot.audit import AuditStore, open_audit
from bot.engine import Engine
from bot.errors import UsageError
from bot.models import Actor
from bot.pipeline import Pipeline
from bot.policy import HostRef, PolicyError, builtin_policy, load_policy_text
from handlers import build_registry
from handlers.containers import RmRequest
from handlers.run import RunRequest
from tests.support import audit_db

audit_target = audit_db.audit_target  # both back ends (fixture)
KNOWN = [*build_registry().names(), "history"]

POLICY = """
roles:
  viewer: {commands: [ps, approvals]}
  admin:  {include: [viewer], commands: [run, rm, network rm, image prune]}
grants:
  - {role: admin, users: [UA, UB]}
  - {role: viewer, users: ["*"]}
images: ["*"]
approve:
  - commands: [rm, "network rm", "image prune"]
    hosts: [prod]
    approvers: {roles: [admin], groups: [S0PROD], users: [U0LEAD]}
    ttl: 15m
    reason: required
  - commands: [run]
    host_labels: {env: prod}
    images: ["nginx", "redis:7*"]
    count: 2
    approvers: {users: []}
    self: true
"""


def test_the_issue_form_loads_with_its_defaults() -> None:
    policy = load_policy_text(POLICY, known_commands=KNOWN)
    first, second = policy.approve
    assert first.count == 1 and first.ttl == 900 and first.reason == "required" and not first.allow_self
    assert second.count == 2 and second.allow_self and second.ttl == 900 and second.reason == "optional"


def test_mistakes_are_reported_where_they_stand() -> None:
    text = """roles:
  admin: {commands: [rm]}
approve:
  - commands: [rmm]
    approvers: {roles: [boss]}
    count: 0
    ttl: soon
    reason: maybe
    colour: red
  - commands: [rm]
"""
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, known_commands=KNOWN)
    problems = "\n".join(caught.value.problems)
    assert "line 4: approve[0].commands: unknown command 'rmm'" in problems
    assert "line 5: approve[0].approvers.roles: unknown role 'boss'" in problems
    assert "line 6: approve[0].count" in problems
    assert "line 7: approve[0].ttl: invalid ttl 'soon'" in problems
    assert "line 8: approve[0].reason" in problems
    assert "line 9: approve[0].colour: unknown key" in problems
    assert "approve[1].approvers: Field required" in problems


def test_rules_match_by_command_host_labels_and_image() -> None:
    policy = load_policy_text(POLICY, known_commands=KNOWN)
    prod, staging = HostRef(name="prod", labels={"env": "prod"}), HostRef(name="staging", labels={"env": "dev"})
    assert matching_rule(policy, RmRequest(targets=("web",)), prod) is not None
    assert matching_rule(policy, RmRequest(targets=("web",)), staging) is None
    run = RunRequest.model_construct(image="nginx:1.25")
    assert matching_rule(policy, run, prod) is not None  # by its host's label
    assert matching_rule(policy, run, staging) is None
    assert matching_rule(policy, RunRequest.model_construct(image="redis:7.2"), prod) is not None
    assert matching_rule(policy, RunRequest.model_construct(image="busybox"), prod) is None


def test_empty_lists_match_nothing() -> None:
    policy = load_policy_text(
        POLICY.replace("hosts: [prod]", "hosts: []").replace('images: ["nginx", "redis:7*"]', "images: []"),
        known_commands=KNOWN,
    )
    prod = HostRef(name="prod", labels={"env": "prod"})
    assert matching_rule(policy, RmRequest(targets=("web",)), prod) is None
    assert matching_rule(policy, RunRequest.model_construct(image="nginx"), prod) is None
    rule = policy.approve[1]  # approvers: {users: []}: nobody may approve
    assert not is_approver(policy, rule, Actor(user="UA", groups=("S0PROD",)))


def test_approvers_by_role_group_and_user() -> None:
    policy = load_policy_text(POLICY, known_commands=KNOWN)
    rule = policy.approve[0]
    assert is_approver(policy, rule, Actor(user="UB"))  # role admin through a grant
    assert is_approver(policy, rule, Actor(user="UX", groups=("S0PROD",)))
    assert is_approver(policy, rule, Actor(user="U0LEAD"))
    assert not is_approver(policy, rule, Actor(user="UV"))  # a viewer


@pytest.fixture
def pipeline() -> Pipeline:
    return Pipeline(engine=Engine(), policy=builtin_policy(), registry=build_registry())


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('--reason "disk is full" rm web', "disk is full"),
        ("--reason=cleanup rm web", "cleanup"),
        ("--dry-run --reason why rm web", "why"),
        ("rm web", None),
    ],
)
def test_reason_is_a_global_option(pipeline: Pipeline, text: str, reason: str | None) -> None:
    parsed = pipeline.understand(text)
    assert parsed.reason == reason
    assert parsed.request == RmRequest(targets=("web",), dry_run=text.startswith("--dry-run"))
    if reason:
        assert "--reason" in parsed.words


@pytest.mark.parametrize("text", ["--reason", "--reason --dry-run rm web", "--reason a --reason b rm web"])
def test_a_bad_reason_is_a_usage_error(pipeline: Pipeline, text: str) -> None:
    with pytest.raises(UsageError) as caught:
        pipeline.understand(text)
    assert caught.value.usage and "--reason" in caught.value.usage


def _held(approval_id: str, *, ttl: float = 60.0) -> Held:
    now = time.time()
    return Held(
        id=approval_id,
        created_at=now,
        expires_at=now + ttl,
        state="pending",
        actor=Actor(user="UA", channel="C1"),
        command="rm",
        model="RmRequest",
        request={"targets": ["web"]},
        shown_text="rm web",
        host="default",
        host_shown=None,
        rule={"commands": ["rm"], "approvers": {"roles": ["admin"]}},
    )


@pytest.fixture
def stores(audit_target: str) -> Iterator[list[AuditStore]]:
    opened = [open_audit(audit_target) for _ in range(2)]
    yield opened
    for store in opened:
        store.close()


def test_two_stores_claim_a_request_once(stores: list[AuditStore]) -> None:
    """Two replicas on one database, many claims at the same moment: exactly one wins."""
    one, two = (ApprovalStore(store) for store in stores)
    one.create(_held("a1"))
    assert two.get("a1") is not None and two.get("a1").state == "pending"  # type: ignore[union-attr]
    assert one.vote("a1", "UB", "approve") and not two.vote("a1", "UB", "approve")  # each person once
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(store: ApprovalStore) -> None:
        barrier.wait()
        wins.append(store.transition("a1", to="running", by="UB"))

    threads = [threading.Thread(target=claim, args=(s,)) for s in (one, two) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1
    assert one.get("a1").state == "running"  # type: ignore[union-attr]


def test_expiry_ends_a_request_once_and_an_expired_one_cannot_be_claimed(stores: list[AuditStore]) -> None:
    one, two = (ApprovalStore(store) for store in stores)
    one.create(_held("e1", ttl=-1.0))
    assert not one.transition("e1", to="running", by="UB")  # past its expiry
    expired = one.expire_due()
    assert [h.id for h in expired] == ["e1"] and not two.expire_due()
    assert two.get("e1").state == "expired"  # type: ignore[union-attr]


def test_the_shell_lists_but_never_holds(stores: list[AuditStore], engine: Engine) -> None:
    policy = load_policy_text(POLICY.replace("hosts: [prod]", ""), known_commands=KNOWN)
    pipeline = Pipeline(
        engine=engine, policy=policy, registry=build_registry(), approvals=Approvals(ApprovalStore(stores[0]))
    )
    outcome = pipeline.handle("--reason x rm -f cdt-nothing-here", Actor(user="UA"), source="shell")
    assert not outcome.ok and outcome.error is not None
    assert "request it in Slack" in outcome.error.message and outcome.error.rule == "approve[0]"
    assert not ApprovalStore(stores[0]).pending()
    listing = pipeline.handle("approvals", Actor(user="UA"), source="shell")
    assert listing.ok and "no request is waiting" in listing.result.text  # type: ignore[union-attr]


def test_other_engine_requests_than_the_approved_ones_are_refused() -> None:
    from bot.approvals import ApprovedRun
    from bot.errors import Conflict

    approved = [{"method": "DELETE", "path": "/images/sha256:aaa", "params": {"force": False}}]
    run = ApprovedRun(parsed=None, facts={}, approval_id="p1", engine_request=approved)
    run.check_plan(list(approved))  # the same: goes ahead
    with pytest.raises(Conflict) as caught:
        run.check_plan([*approved, {"method": "DELETE", "path": "/images/sha256:bbb", "params": {"force": False}}])
    assert "now also DELETE /images/sha256:bbb" in caught.value.message and "nothing was done" in caught.value.message
    with pytest.raises(Conflict, match="no longer DELETE /images/sha256:aaa"):
        run.check_plan([])


def test_a_request_whose_runner_was_killed_is_interrupted_once(stores: list[AuditStore], audit_target: str) -> None:
    """Approved and running in a process that is then SIGKILLed: the next sweep ends it as ``interrupted`` (once,
    whichever replica sweeps); a request a live process runs is left alone."""
    one, two = (ApprovalStore(store) for store in stores)
    one.create(_held("r1"))
    runner = (
        "import os, signal, sys\n"
        "from bot.audit import open_audit\n"
        "from bot.approval_store import ApprovalStore\n"
        "assert ApprovalStore(open_audit(sys.argv[1])).transition('r1', to='running', by='UB')\n"
        "print('running', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    killed = subprocess.run(
        [sys.executable, "-c", runner, audit_target],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env=env,
    )
    assert killed.returncode == -signal.SIGKILL and "running" in killed.stdout, killed.stderr[-2000:]
    one.create(_held("r2"))
    assert one.transition("r2", to="running", by="UB")  # run by a live process (this one)
    assert one.get("r1").state == "running"  # type: ignore[union-attr]
    stores[1].mark_interrupted()  # the heartbeat's sweep: the killed process is dropped from the live ones
    ended = two.interrupt_orphans(INTERRUPTED_RESULT)
    assert [h.id for h in ended] == ["r1"] and not one.interrupt_orphans(INTERRUPTED_RESULT)
    assert one.get("r1").state == "interrupted" and "ps -a" in one.get("r1").result  # type: ignore[union-attr]
    assert two.get("r2").state == "running"  # type: ignore[union-attr]


def test_a_database_from_before_runners_gains_the_column(tmp_path: Path) -> None:
    """An audit database whose approvals table predates ``runner`` is upgraded in place when opened."""
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE chatdock_approvals (id TEXT PRIMARY KEY, created_at REAL NOT NULL, expires_at REAL NOT NULL,"
            " state TEXT NOT NULL, actor TEXT NOT NULL, requester TEXT NOT NULL, command TEXT NOT NULL,"
            " model TEXT NOT NULL, request TEXT NOT NULL, shown_text TEXT NOT NULL DEFAULT '', host TEXT,"
            " host_shown TEXT, reason TEXT NOT NULL DEFAULT '', rule_index INTEGER NOT NULL DEFAULT 0,"
            " rule TEXT NOT NULL DEFAULT '{}', needed INTEGER NOT NULL DEFAULT 1, facts TEXT NOT NULL DEFAULT '{}',"
            " engine_request TEXT NOT NULL DEFAULT '[]', message_channel TEXT NOT NULL DEFAULT '',"
            " message_ts TEXT NOT NULL DEFAULT '', ended_at REAL, ended_by TEXT NOT NULL DEFAULT '',"
            " end_reason TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '', request_id TEXT NOT NULL DEFAULT '')"
        )
    store = open_audit(str(path))
    try:
        approvals = ApprovalStore(store)
        approvals.create(_held("old1"))
        assert approvals.transition("old1", to="running", by="UB")
        assert not approvals.interrupt_orphans(INTERRUPTED_RESULT)  # its runner (this process) is alive
    finally:
        store.close()
