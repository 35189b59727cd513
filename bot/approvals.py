"""Two-person approval (issue #13): requests an ``approve:`` rule names wait for other people before they run.

The pipeline admits a request as usual (grant, targets and scope, Engine request check); only then, when an
``approve:`` rule of the policy matches it (command, host, image for ``run``), :meth:`Approvals.hold` stores it
instead of running it: the typed request as JSON (never the text, which is not parsed again), who asked, the
host, the reason, the rule and the *facts* it touches (container IDs and states, network IDs, image IDs). The
front door shows it to approvers (Slack: :mod:`bot.approval_slack`).

A vote counts only when the voter is eligible (the rule's ``approvers``), is not the requester (unless
``self: true``) and the policy lets them run that command on that host now; each person once (a primary key).
When the count is reached the request is *claimed* with a conditional ``UPDATE ... WHERE state = 'pending'``:
of two clicks at once, a click delivered twice or two replicas, exactly one wins and runs it, for the
requester, through the pipeline again (so the requester's grant is checked again), after checking the facts
are unchanged (:class:`ApprovedRun`). Denial, cancellation and expiry end a pending request the same
conditional way. Everything is also written to the audit log as its own entries (source ``approval``).

Pending requests live in two tables of the audit store (:mod:`bot.approval_store`) on SQLite or PostgreSQL, so
they survive a restart and are shared by replicas.

Only Slack can hold a request: elsewhere (the local shell) a request that needs approval is refused, saying to
ask in Slack, since nobody could approve it there.
"""

from __future__ import annotations

import fnmatch
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from bot import policy as policy_rules
from bot.approval_store import INTERRUPTED, PENDING, RUNNING, ApprovalStore, Held
from bot.errors import Conflict, Denied, NotFound, UsageError
from bot.models import Actor, Decision, Request, Result, TextOutput
from bot.policy import ANY, ApprovalRule, HostRef, Policy

if TYPE_CHECKING:
    from bot.commands import Context
    from bot.pipeline import Outcome, Parsed, Pipeline

INTERRUPTED_RESULT = (
    "interrupted: the chatdock process running it stopped before it finished; what it did is not known: look "
    "with `ps -a` (or `docker events`) before asking again"
)
log = logging.getLogger(__name__)

HOLD_SOURCES = frozenset({"slack", "button"})  # front doors where approvers can see and click it
REASON_USAGE = '--reason "WHY" COMMAND ...  (why it is needed; some commands need approval and a reason)'


# ------------------------------------------------------------------------------------------ rules


def matching_rule(policy: Policy, request: Request, host: HostRef) -> tuple[int, ApprovalRule] | None:
    """The first ``approve:`` rule that names this request on this host (``images`` only narrows ``run``)."""
    for index, rule in enumerate(policy.approve):
        if request.command not in rule.commands and ANY not in rule.commands:
            continue
        if not rule.covers_host(host.name, host.labels):
            continue
        if rule.images is not None and request.command == "run" and not _image_named(request, rule.images):
            continue
        return index, rule
    return None


def _image_named(request: Request, patterns: tuple[str, ...]) -> bool:
    image = str(getattr(request, "image", "") or "")
    if not image:
        return False
    try:
        ref = policy_rules.parse_image(image)
    except Exception:
        return True  # unreadable: the stricter answer (it waits)
    return any(
        pattern == ANY
        or fnmatch.fnmatchcase(ref.repository, pattern)
        or fnmatch.fnmatchcase(ref.with_tag, pattern)
        or fnmatch.fnmatchcase(image, pattern)
        for pattern in patterns
    )


def is_approver(policy: Policy, rule: ApprovalRule, actor: Actor) -> bool:
    """Whether ``actor`` is one of the rule's approvers: named, in a group, or holding a role through a grant.
    Empty lists name nobody; ``"*"`` in ``users`` is anyone."""
    approvers = rule.approvers
    if not actor.user:
        return False
    if actor.user in approvers.users or ANY in approvers.users:
        return not actor.external or actor.user in approvers.users
    if set(approvers.groups) & set(actor.groups):
        return True
    _commands, roles = policy_rules.commands_for(policy, actor)
    return bool(set(approvers.roles) & set(roles))


def describe_approvers(rule: ApprovalRule) -> str:
    parts = [f"role {r}" for r in rule.approvers.roles]
    parts += [f"<!subteam^{g}>" for g in rule.approvers.groups]
    parts += ["anyone" if u == ANY else f"<@{u}>" for u in rule.approvers.users]
    return ", ".join(parts) or "nobody"


# ------------------------------------------------------------------------------------------ values


class PendingApproval(Result):
    """What a held request produced: it waits for approval (the front door posts it for approvers)."""

    kind: ClassVar[str] = "approval_pending"
    approval_id: str
    needed: int
    expires_at: float
    reason: str = ""
    rule: str = ""
    approvers: str = ""

    def log_line(self) -> str:
        return f"awaiting approval {self.approval_id} ({self.needed} needed, rule {self.rule})"


class Verdict(BaseModel):
    """The answer to a click: what to tell the clicker, the request as it now stands (redraw it when
    ``changed``), and the outcome when it ran."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    ok: bool
    message: str
    held: Held | None = None
    changed: bool = False
    outcome: Any = None  # bot.pipeline.Outcome when it ran


# ------------------------------------------------------------------------------------------ facts


def facts_of(ctx: Context, request: Request) -> dict[str, Any]:
    """What an approved request must still find: each container's ID and state, each network's and image's ID,
    and for ``run`` the ID of the image it starts (empty when it is not on the host yet)."""
    facts: dict[str, Any] = {
        "containers": {ref: {"id": c.id, "status": c.status, "name": c.name} for ref, c in ctx.containers.items()},
        "networks": {ref: n.id for ref, n in ctx.networks.items()},
        "images": {ref: i.id for ref, i in ctx.images.items()},
        "missing": sorted({*ctx.missing, *ctx.missing_images}),  # `rm -f` of none: must still be none
    }
    if request.command == "run":
        facts["run_image"] = _image_id(ctx, str(getattr(request, "image", "")))
    return facts


def _image_id(ctx: Context, image: str) -> str:
    try:
        return ctx.engine.image_facts(image).id if image else ""
    except NotFound:
        return ""


class ApprovedRun(BaseModel):
    """An approved request on its way through the pipeline: it runs only if what it touches is unchanged."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    parsed: Any  # bot.pipeline.Parsed
    facts: dict[str, Any]
    approval_id: str
    engine_request: list[dict[str, Any]] = Field(default_factory=list)

    def check_plan(self, engine_request: list[dict[str, Any]] | None) -> None:
        """Refuse when the Engine requests it would send now are not the ones shown to the approvers (``image
        prune`` finding other images, a target resolved differently)."""
        now = list(engine_request or [])
        if now == self.engine_request:
            return
        added = [f"{c.get('method')} {c.get('path')}" for c in now if c not in self.engine_request]
        gone = [f"{c.get('method')} {c.get('path')}" for c in self.engine_request if c not in now]
        detail = "; ".join(
            part
            for part in (
                f"now also {', '.join(added[:3])}" if added else "",
                f"no longer {', '.join(gone[:3])}" if gone else "",
            )
            if part
        )
        raise Conflict(
            f"approval {self.approval_id}: the Engine requests it would send changed since it was approved"
            f" ({detail or 'other bodies'}); nothing was done"
        )

    def check(self, ctx: Context, request: Request) -> None:
        """Refuse (Conflict) saying what changed since the request was approved."""
        changes: list[str] = []
        for ref, was in (self.facts.get("containers") or {}).items():
            now = ctx.containers.get(ref)
            if now is None:
                changes.append(f"container {was.get('name') or ref} no longer exists")
            elif now.id != was.get("id"):
                changes.append(f"{ref} is now another container ({now.short_id}, was {str(was.get('id'))[:12]})")
            elif now.status != was.get("status"):
                changes.append(f"{now.name} was {was.get('status')} and is now {now.status}")
        for ref, was_id in (self.facts.get("networks") or {}).items():
            network = ctx.networks.get(ref)
            if network is None or network.id != was_id:
                changes.append(f"network {ref} is not the one approved (it was {str(was_id)[:12]})")
        for ref, was_id in (self.facts.get("images") or {}).items():
            image = ctx.images.get(ref)
            if image is None or image.id != was_id:
                changes.append(f"image {ref} is not the one approved (it was {str(was_id)[:19]})")
        for ref in self.facts.get("missing") or ():
            if ref in ctx.containers or ref in ctx.images:
                changes.append(f"{ref} did not exist when it was approved and exists now")
        if "run_image" in self.facts:
            run_image = str(getattr(request, "image", ""))
            now_id = _image_id(ctx, run_image)
            if now_id != self.facts["run_image"]:
                was = self.facts["run_image"][:19] or "not on the host"
                digest = now_id[:19] or "(none: not on the host)"
                changes.append(f"image {run_image} now has digest {digest} (was {was})")
        if changes:
            raise Conflict(
                f"approval {self.approval_id}: what it touches changed since it was requested ("
                + "; ".join(changes)
                + "); nothing was done"
            )


def request_model(command: str, model: str) -> type[Request]:
    """The typed request class for ``command`` (never a class named by the database alone)."""
    found: list[type[Request]] = []
    todo: list[type[Request]] = [Request]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.command == command and cls.__name__ == model:
            found.append(cls)
    if len(found) != 1:
        raise NotFound(f"`{command}` cannot be rebuilt ({model}); nothing was done")
    return found[0]


# ------------------------------------------------------------------------------------------ the flow


class Approvals:
    """Hold, vote, run once. One per process, around the shared :class:`ApprovalStore`."""

    def __init__(self, store: ApprovalStore, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # -- holding (the pipeline's hook) -----------------------------------------------------------------
    def hold(
        self,
        *,
        policy: Policy,
        actor: Actor,
        parsed: Parsed,
        host: str,
        host_ref: HostRef,
        ctx: Context,
        state: Mapping[str, Any],
        request_id: str,
        source: str,
    ) -> PendingApproval | None:
        """Store the admitted request when a rule names it, and say it waits; None when it may run now."""
        found = matching_rule(policy, parsed.request, host_ref)
        if found is None:
            return None
        index, rule = found
        on = f" on host {host}" if host_ref.shown else ""
        if source not in HOLD_SOURCES:
            raise Denied(
                f"`{parsed.command.name}`{on} needs approval by {rule.count} other person(s) (approve[{index}]): "
                "request it in Slack, where approvers can approve it",
                rule=f"approve[{index}]",
            )
        if rule.reason == "required" and not parsed.reason:
            raise UsageError(
                f'`{parsed.command.name}`{on} needs approval and a reason: add --reason "WHY" before the command',
                usage=REASON_USAGE,
            )
        now = self.clock()
        held = Held(
            id=uuid.uuid4().hex[:10],
            created_at=now,
            expires_at=now + rule.ttl,
            state=PENDING,
            actor=actor,
            command=parsed.command.name,
            model=type(parsed.request).__name__,
            request=parsed.request.model_dump(mode="json"),
            shown_text=str(state.get("shown_text", "")),
            host=host,
            host_shown=state.get("host"),
            reason=parsed.reason or "",
            rule_index=index,
            rule=rule.model_dump(mode="json", by_alias=True),
            needed=rule.count,
            facts=facts_of(ctx, parsed.request),
            engine_request=list(state.get("engine_request") or []),
            request_id=request_id,
        )
        self.store.create(held)
        return PendingApproval(
            approval_id=held.id,
            needed=rule.count,
            expires_at=held.expires_at,
            reason=held.reason,
            rule=f"approve[{index}]",
            approvers=describe_approvers(rule),
        )

    # -- clicks ----------------------------------------------------------------------------------------
    def closed(self, held: Held | None, approval_id: str) -> Verdict | None:
        """A click on a request that cannot take one any more: only say so."""
        if held is None:
            return Verdict(ok=False, message=f"There is no approval request {approval_id}; nothing was done.")
        if held.state == PENDING and held.expires_at <= self.clock():
            if self.store.transition(held.id, to="expired", unexpired=False):
                return Verdict(
                    ok=False, message=ended_text(held, "expired"), held=self.store.get(held.id), changed=True
                )
            held = self.store.get(held.id) or held
        if held.state != PENDING:
            return Verdict(ok=False, message=ended_text(held, held.state), held=held)
        return None

    def may_vote(self, pipeline: Pipeline, held: Held, voter: Actor) -> str:
        """Why ``voter``'s approval or denial does not count ("" when it does)."""
        rule = held.approval_rule
        policy = pipeline.policy
        if voter.user == held.actor.user and not rule.allow_self:
            return "you asked for it: another person must approve or deny it (you may cancel it)"
        if not is_approver(policy, rule, voter):
            return f"you are not one of its approvers ({describe_approvers(rule)})"
        host = held.host or pipeline.hosts.default
        decision = policy_rules.may_run(policy, voter, held.command, pipeline.host_ref(host))
        if not decision.allowed:
            return f"the policy does not let you run `{held.command}` yourself now ({decision.reason})"
        return ""

    def approve(
        self,
        pipeline: Pipeline,
        approval_id: str,
        voter: Actor,
        *,
        groups_of: Callable[[str], tuple[str, ...]] | None = None,
    ) -> Verdict:
        """Count ``voter``'s approval; the last one needed runs the request (``groups_of``: the requester's user
        groups now, so their grant is checked as it stands, not as it stood)."""
        held = self.store.get(approval_id)
        ended = self.closed(held, approval_id)
        if ended is not None or held is None:
            return ended or Verdict(ok=False, message="gone")
        why = self.may_vote(pipeline, held, voter)
        if why:
            self.audit(pipeline, voter, held, "approve", ok=False, message=f"approval refused: {why}")
            return Verdict(ok=False, message=f"Your approval does not count: {why}.", held=held)
        if not self.store.vote(held.id, voter.user, "approve"):
            return Verdict(ok=False, message="You already approved it: each person counts once.", held=held)
        self.audit(pipeline, voter, held, "approve", ok=True, message=f"approved {held.id} by {voter.user}")
        if self.store.count_approvals(held.id) < held.needed:
            return Verdict(ok=True, message="Your approval is counted.", held=self.store.get(held.id), changed=True)
        if not self.store.transition(held.id, to=RUNNING, by=voter.user):
            current = self.store.get(held.id)
            if current is not None and current.state == PENDING:  # it expired meanwhile
                return self.closed(current, held.id) or Verdict(ok=False, message="try again", held=current)
            state = current.state if current is not None else "gone"
            note = "it is already running or done" if state in (RUNNING, "done", "failed", "refused") else state
            return Verdict(ok=True, message=f"Your approval is counted; {note}.", held=current)
        requester = held.actor
        if groups_of is not None:
            requester = requester.model_copy(update={"groups": groups_of(requester.user)})
        try:
            outcome = self.run(pipeline, held.model_copy(update={"actor": requester}))
        except Exception:  # never left "running": the request ends, and says so
            log.exception("approval %s: running it failed", held.id)
            self.store.finish(held.id, state="failed", result="chatdock hit an internal error; see its log")
            return Verdict(
                ok=False,
                message="Approved, but chatdock could not run it (see its log).",
                held=self.store.get(held.id),
                changed=True,
            )
        state = (
            "done" if outcome.ok else ("refused" if outcome.error and outcome.error.kind == "conflict" else "failed")
        )
        summary = (
            outcome.error.message
            if outcome.error is not None
            else (outcome.result.log_line() if outcome.result else "")
        )
        self.store.finish(held.id, state=state, result=summary)
        voters = ", ".join(v.user for v in (self.store.get(held.id) or held).approved_by)
        ran = f"ran {held.id} for {held.actor.user}, approved by {voters}: {state} ({summary})"
        self.audit(pipeline, voter, held, "run", ok=outcome.ok, message=ran)
        told = {"done": "Approved: it ran.", "refused": f"Approved, but not run: {summary}"}
        message = told.get(state, f"Approved; it ran and failed: {summary}")
        return Verdict(ok=True, message=message, held=self.store.get(held.id), changed=True, outcome=outcome)

    def run(self, pipeline: Pipeline, held: Held) -> Outcome:
        """Run the stored request once, for the requester (their grant checked again), if nothing changed."""
        from bot.pipeline import Parsed

        command = pipeline.registry.commands.get(held.command)
        if command is None:
            return pipeline.refuse(
                held.shown_text, held.actor, source="approval", rule="approval", message="that command is gone"
            )
        model = request_model(held.command, held.model)
        request = model.model_validate(held.request)
        parsed = Parsed(command=command, request=request, words=tuple(held.shown_text.split()), host=held.host)
        approved = ApprovedRun(parsed=parsed, facts=held.facts, approval_id=held.id, engine_request=held.engine_request)
        return pipeline.handle(held.shown_text, held.actor, source="approval", approved=approved)

    def deny(self, pipeline: Pipeline, approval_id: str, voter: Actor, reason: str) -> Verdict:
        held = self.store.get(approval_id)
        ended = self.closed(held, approval_id)
        if ended is not None or held is None:
            return ended or Verdict(ok=False, message="gone")
        why = self.may_vote(pipeline, held, voter)
        if why:
            self.audit(pipeline, voter, held, "deny", ok=False, message=f"denial refused: {why}")
            return Verdict(ok=False, message=f"Your denial does not count: {why}.", held=held)
        if not self.store.transition(held.id, to="denied", by=voter.user, reason=reason, unexpired=False):
            current = self.store.get(held.id)
            return Verdict(ok=False, message=ended_text(current or held, (current or held).state), held=current)
        self.store.vote(held.id, voter.user, "deny", reason=reason, replace=True)
        self.audit(pipeline, voter, held, "deny", ok=True, message=f"denied {held.id} by {voter.user}: {reason}")
        return Verdict(ok=True, message="Denied: it will not run.", held=self.store.get(held.id), changed=True)

    def cancel(self, pipeline: Pipeline, approval_id: str, actor: Actor) -> Verdict:
        held = self.store.get(approval_id)
        ended = self.closed(held, approval_id)
        if ended is not None or held is None:
            return ended or Verdict(ok=False, message="gone")
        if actor.user != held.actor.user:
            return Verdict(ok=False, message="Only the person who asked can cancel it.", held=held)
        if not self.store.transition(held.id, to="cancelled", by=actor.user, unexpired=False):
            current = self.store.get(held.id)
            return Verdict(ok=False, message=ended_text(current or held, (current or held).state), held=current)
        self.audit(pipeline, actor, held, "cancel", ok=True, message=f"cancelled {held.id} by the requester")
        return Verdict(ok=True, message="Cancelled.", held=self.store.get(held.id), changed=True)

    def expire_due(self, pipeline: Pipeline) -> list[Held]:
        """End what is due (run by one replica, under the maintenance lease): pending requests past their
        expiry, and approved ones whose running process died (``interrupted``); the ones ended, to redraw."""
        expired = self.store.expire_due()
        for held in expired:
            self.audit(pipeline, held.actor, held, "expire", ok=True, message=f"approval {held.id} expired")
        interrupted = self.store.interrupt_orphans(INTERRUPTED_RESULT)
        for held in interrupted:
            self.audit(pipeline, held.actor, held, "interrupt", ok=False, message=f"approval {held.id} interrupted")
        return [*expired, *interrupted]

    def visible_to(self, policy: Policy, actor: Actor) -> list[Held]:
        """Pending requests ``actor`` made or may approve (``approvals``)."""
        return [
            held
            for held in self.store.pending()
            if held.actor.user == actor.user or is_approver(policy, held.approval_rule, actor)
        ]

    def audit(self, pipeline: Pipeline, actor: Actor, held: Held, action: str, *, ok: bool, message: str) -> None:
        from bot.pipeline import ErrorInfo, Outcome, new_request_id

        text = f"approval {action} {held.id}: {held.shown_text}"
        decision = Decision(allowed=ok, rule=f"approve[{held.rule_index}]", reason=message)
        outcome = Outcome(
            request_id=new_request_id(),
            ok=ok,
            text=text,
            shown_text=text,
            actor=actor,
            command=f"approval {action}",
            decision=decision,
            result=TextOutput(title=message, text="") if ok else None,
            error=None if ok else ErrorInfo(kind="error" if action == "run" else "denied", message=message),
            host=held.host_shown,
            source="approval",
        )
        try:
            pipeline.auditor.begin(
                request_id=outcome.request_id,
                actor=actor,
                text=text,
                source="approval",
                command=outcome.command,
                request={"approval": held.id, "reason": held.reason, "rule": held.rule},
                decision=decision,
            )
            pipeline.auditor.end(outcome)
        except Exception:
            log.exception("approval %s: could not audit %s", held.id, action)


def ended_text(held: Held, state: str) -> str:
    words = {
        "expired": "it expired",
        "cancelled": "it was cancelled by the person who asked",
        "denied": "it was denied",
        "done": "it was approved and has run",
        "failed": "it was approved and has run (and failed)",
        "refused": "it was approved but refused, as what it touches had changed",
        RUNNING: "it was approved and is running",
        INTERRUPTED: "it was approved, and the chatdock process running it stopped before it finished",
    }
    return f"Approval request {held.id} is closed: {words.get(state, state)}; nothing more was done."
