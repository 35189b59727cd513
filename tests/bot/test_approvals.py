"""Approvals (issue #13) below the front door: the ``approve:`` rules, ``--reason``, and the store's once-only claim on
SQLite and PostgreSQL (the Slack flow is in tests/e2e/test_approvals.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.approval_store import ApprovalStore, Held
from bot.approvals import Approvals, is_approver, matching_rule
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
