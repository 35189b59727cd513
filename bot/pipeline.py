"""The one path every request takes, whoever sends it (Slack command, button click, local shell), in stages:

    parse    text → Parsed: unescape, split, the host named (--context), match the command, its typed request
    admit    Parsed + actor → AdmittedRequest | Outcome: the host, the policy's grant, the Engine request
             check of a request that names no existing object; engine-free (a Slack ack can wait for it)
    execute  AdmittedRequest → Outcome: the host's slot, targets + scope on that engine, plan + engine check,
             audit(begin), handler (or dry run), audit(end)

An ``approve:`` rule (issue #13, :mod:`bot.approvals`) holds an admitted request at execution, before its
handler: it is stored and the Outcome says it waits; approved later, it is admitted again for its requester and
executed with ``approved=`` (not parsed again, its targets and Engine requests checked against what was approved).

The values between the stages are in :mod:`bot.stages`; the result is :class:`bot.outcome.Outcome`. A front
door parses once (or builds the Parsed itself: a button, an engine event), admits, and executes the admitted
request, possibly later and elsewhere (a worker thread; an approval). :meth:`Pipeline.handle` does all three.
Nothing here raises: every failure becomes an Outcome with a specific message, and any unexpected exception
is logged in full and shown as a short apology with the request ID (never a stack trace).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bot import dns
from bot import policy as policy_rules
from bot.approvals import REASON_USAGE, Approvals, ApprovedRun, PendingApproval, matching_rule
from bot.commands import Command, Context, EngineCall, Registry
from bot.engine import AmbiguousReference, Engine, facts_from_inspect
from bot.errors import ChatdockError, Conflict, Denied, NotFound, UsageError
from bot.fanout import ALL_HOSTS, across_hosts, check_across
from bot.flags import Flag, Grammar, Kind, plain_dash, plain_dashes
from bot.hosts import HostSet
from bot.models import Actor, ContainerFacts, Decision, DryRun, ImageFacts, NetworkFacts, Progress, Request, Result
from bot.outcome import ErrorInfo, Outcome
from bot.policy import Policy
from bot.redact import SecretMask, SecretSink, redact_document, redact_text, redact_words
from bot.slacktext import normalize
from bot.stages import AdmittedRequest, Parsed
from bot.tokenize import split_words

__all__ = [  # Outcome and ErrorInfo live in bot.outcome; named here too for callers written before the split
    "CONTEXT_USAGE",
    "HOST_FREE",
    "PREFIXES",
    "AdmittedRequest",
    "Auditor",
    "ErrorInfo",
    "NoAudit",
    "Outcome",
    "Parsed",
    "Pipeline",
    "new_request_id",
]

log = logging.getLogger(__name__)

CONTEXT_USAGE = "[--context NAME | -c NAME] COMMAND ...  (NAME: a configured host; `context ls` lists them)"
PREFIXES = {"/docker": (), "docker": (), "/net": ("network",), "/network": ("network",)}


class Auditor(Protocol):
    """Where requests are recorded: ``begin`` before the handler runs, ``end`` after. An auditor may also have
    ``record_delivery(request_id, status)`` (see :meth:`Pipeline.record_delivery`); it is optional."""

    def begin(
        self,
        *,
        request_id: str,
        actor: Actor,
        text: str,
        source: str,
        command: str | None,
        request: dict[str, Any] | None,
        decision: Decision | None,
    ) -> None: ...

    def end(self, outcome: Outcome) -> None: ...


class NoAudit:
    def begin(self, **_: Any) -> None:
        return None

    def end(self, outcome: Outcome) -> None:
        return None


def new_request_id() -> str:
    return uuid.uuid4().hex[:8]


class Pipeline:
    def __init__(
        self,
        *,
        engine: Engine,
        policy: Policy,
        registry: Registry,
        auditor: Auditor | None = None,
        run_timeout: float = 60.0,
        exec_timeout: float = 30.0,
        history: Callable[..., list[dict[str, Any]]] | None = None,
        hosts: HostSet | None = None,
        approvals: Approvals | None = None,
    ) -> None:
        self.approvals = approvals  # pending requests (issue #13); None: a request that needs approval is refused
        self.engine = engine
        self.hosts = hosts if hosts is not None else HostSet.single(engine)
        self.policy = policy
        self.registry = registry
        self.auditor: Auditor = auditor or NoAudit()
        self.run_timeout = run_timeout
        self.exec_timeout = exec_timeout
        self.history = history

    # -- parsing ---------------------------------------------------------------------------------------
    def understand(self, text: str) -> Parsed:
        """Text → typed request, or UsageError / Denied (hard refusals are grammar-level)."""
        words, dry_run, host, command, rest, reason = self._match(text)
        request = command.parse(rest)
        if dry_run:
            if command.plan is None:
                raise UsageError(f"`--dry-run` is for commands that change something; `{command.name}` only reads")
            request = request.model_copy(update={"dry_run": True})
        # the words as shown (ack, audit, replies) keep the host that was named, in docker's long spelling
        shown = ("--context", host) if host is not None else ()
        if reason is not None:
            shown = (*shown, "--reason", reason)
        return Parsed(command=command, request=request, words=(*shown, *words), host=host, reason=reason)

    def command_name(self, text: str) -> str | None:
        """The command ``text`` names, even when its options are wrong (the shell's exit status depends on it)."""
        try:
            return self._match(text)[3].name
        except ChatdockError:
            return None

    def _match(self, text: str) -> tuple[list[str], bool, str | None, Command, list[str], str | None]:
        """Text → (words, --dry-run given, the host named with ``--context``, the command, its own words, the
        ``--reason``)."""
        words = split_words(normalize(text))
        if words and words[0].lower() in PREFIXES:
            words = [*PREFIXES[words[0].lower()], *words[1:]]
        words, host = _leading_host(_leading_dashes(words), self.hosts)
        words, reason = _leading_reason(words)  # approvals (issue #13): a global option, in any order
        words, dry_run = _leading_dry_run(_leading_dashes(words))
        if host is None:  # `--dry-run --context prod rm web`: either order, as docker's global options
            words, host = _leading_host(words, self.hosts)
        if reason is None:
            words, reason = _leading_reason(words)
        if words[:1] == ["--help"] or words[:1] == ["-h"]:
            words = ["help"]
        if len(words) == 2 and words[1] in ("help", "--help", "-h") and words[0] in self.registry.families():
            words = ["help", words[0]]  # `/net help`, `network --help`
        command, rest = self.registry.match(words)
        if rest:  # typographic dashes read as the command's options: what policy, audit and the echo all see
            rest = plain_dashes(command.grammar, rest)
            words = [*words[: len(words) - len(rest)], *rest]
        if rest == ["--help"]:
            command, rest = self.registry.commands["help"], command.name.split()
        return words, dry_run, host, command, rest, reason

    # -- the stages ------------------------------------------------------------------------------------
    def parse(self, text: str) -> Parsed:
        """Stage 1, text → typed request (the host named, if any). Raises UsageError / Denied: a hard refusal
        is grammar-level. The text is normalised here, once; every later stage uses ``Parsed.words``."""
        return self.understand(text)

    def admit(
        self,
        parsed: Parsed | str,
        actor: Actor,
        *,
        source: str = "shell",
        request_id: str | None = None,
        expect_states: Mapping[str, str] | None = None,
    ) -> AdmittedRequest | Outcome:
        """Stage 2, engine-free: the host, the policy's grant for it and, for requests that name no existing
        container or image, the Engine request check (image, ports, limits, never-rules). Fast enough for a
        Slack ack, and never delayed by a host that hangs.

        ``parsed`` may be text, parsed here (a usage error is then a refusal like any other). Returns the
        admitted request, or the refusal as the final Outcome, already audited.
        """
        request_id = request_id or new_request_id()
        started = time.monotonic()
        if isinstance(parsed, str):
            text = parsed
            try:
                parsed = self.parse(text)
            except Exception as exc:
                return self._refused(request_id, actor, text, source, started, exc, shown=_safe_echo(text, self.policy))
        else:
            text = " ".join(parsed.words)
        shown = " ".join(redact_words(parsed.words, self.policy.redact))
        try:
            host = parsed.host or self.hosts.host_for_channel(actor.channel)
        except Exception as exc:
            return self._refused(request_id, actor, text, source, started, exc, shown=shown, parsed=parsed)
        shown_host = host if self.hosts.configured else None
        decision = self._decide(actor, parsed.request, host)
        try:
            if not decision.allowed:
                raise Denied(decision.reason, rule=decision.rule)
            if parsed.command.plan is not None and not parsed.request.plan_reads_engine():
                self._early_plan(parsed, actor, host)
        except Exception as exc:
            return self._refused(
                request_id,
                actor,
                text,
                source,
                started,
                exc,
                shown=shown,
                parsed=parsed,
                host=shown_host,
                decision=decision,
            )
        return AdmittedRequest(
            request_id=request_id,
            actor=actor,
            source=source,
            text=text,
            shown_text=shown,
            command=parsed.command,
            request=parsed.request,
            host=host,
            shown_host=shown_host,
            decision=decision,
            expect_states=tuple((expect_states or {}).items()),
            reason=parsed.reason,
        )

    def execute(
        self,
        admitted: AdmittedRequest,
        *,
        progress: Callable[[Progress], None] | None = None,
        approved: ApprovedRun | None = None,
    ) -> Outcome:
        """Stage 3: take the host's slot, resolve the targets on it (scope, the state a button saw, DNS names),
        check the Engine requests, audit, run the handler (or show the dry run), audit the end. ``progress`` is
        called as a long handler (a pull) advances; front doors show it while the request runs."""
        started = time.monotonic()
        command, request, host = admitted.command, admitted.request, admitted.host
        shown_text = admitted.shown_text
        secrets = SecretSink(self.policy.redact)
        decision = admitted.decision
        begun = False
        result: Result | None = None
        error: ErrorInfo | None = None
        engine_request: list[dict[str, Any]] | None = None
        container_ids: tuple[str, ...] = ()
        network_ids: tuple[str, ...] = ()
        slot = contextlib.ExitStack()
        try:
            if host == ALL_HOSTS:
                check_across(command)  # each host's share takes that host's slot
            elif command.name not in HOST_FREE:
                slot.enter_context(self.hosts.slot(host))  # a hung host holds only its own slots
            ctx = self._context(admitted.actor, request, secrets, progress=progress, host=host)
            _check_states(ctx, dict(admitted.expect_states) if admitted.expect_states else None)
            if approved is not None:  # approvals (issue #13): same containers, states and images as approved
                approved.check(ctx, request)
            container_ids = tuple(c.id for c in ctx.containers.values())
            network_ids = tuple(n.id for n in ctx.networks.values())
            calls = self._plan(command, ctx, request)
            if calls is not None:
                engine_request = redact_document([call.as_dict() for call in calls], self.policy.redact)
            if approved is not None:  # approvals (issue #13): the very Engine requests the approvers saw
                approved.check_plan(engine_request)
            known = secrets.mask()  # the request's own -e values and its containers' secret env values
            shown_text = known.text(shown_text)
            self._begin(admitted.request_id, admitted.actor, admitted.source, shown_text, admitted, mask=known)
            begun = True
            if request.dry_run:
                preview = command.preview
                result = DryRun(
                    summary=f"would run `{shown_text}`{_on_host(admitted.shown_host)}: {decision.reason}",
                    engine_requests=tuple(engine_request or ()),
                    lines=preview(ctx, request) if preview is not None else (),
                )
            elif approved is None and (held := self._hold(admitted, ctx, engine_request)):
                result = held  # approvals (issue #13): an `approve:` rule names it; it waits for other people
            else:
                run = across_hosts(command) if host == ALL_HOSTS else command.execute
                result = run(ctx, request)
        except Exception as exc:
            error, refusal = self._error(exc, admitted.request_id, command=command)
            decision = refusal or decision
        slot.close()
        mask = secrets.mask()
        if mask:
            result, error = _masked(mask, result, error)
            shown_text = mask.text(shown_text)
            if engine_request:
                engine_request = mask.apply(engine_request)
        outcome = Outcome(
            request_id=admitted.request_id,
            ok=error is None and _result_ok(result),
            text=admitted.text,
            shown_text=shown_text,
            actor=admitted.actor,
            command=command.name,
            request=request,
            decision=decision,
            result=result,
            error=error,
            engine_request=engine_request,
            host=admitted.shown_host,
            container_ids=container_ids,
            network_ids=network_ids,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            source=admitted.source,
        )
        if not begun:
            self._begin(admitted.request_id, admitted.actor, admitted.source, shown_text, outcome, mask=mask)
        self.auditor.end(outcome)
        return outcome

    def handle(
        self,
        text: str,
        actor: Actor,
        *,
        source: str = "shell",
        request_id: str | None = None,
        expect_states: Mapping[str, str] | None = None,
        progress: Callable[[Progress], None] | None = None,
        approved: ApprovedRun | None = None,
    ) -> Outcome:
        """Run ``text`` for ``actor``: parse, admit and execute in one call (the shell, tests). ``expect_states``
        (container ID → state, from a button) refuses the request if a container changed since the message the
        button belongs to was drawn. ``approved``: a stored request approved by others (:mod:`bot.approvals`),
        admitted again for its requester and run as stored (never parsed again) if what it touches is unchanged."""
        source_of = approved.parsed if approved is not None else text
        admitted = self.admit(source_of, actor, source=source, request_id=request_id, expect_states=expect_states)
        if isinstance(admitted, Outcome):
            return admitted
        return self.execute(admitted, progress=progress, approved=approved)

    def triage(self, text: str, actor: Actor, *, source: str = "slack") -> AdmittedRequest | Outcome:
        """The admit stage on text (callers written before the stages had names)."""
        return self.admit(text, actor, source=source)

    def refuse(
        self, text: str, actor: Actor, *, source: str, rule: str, message: str, request_id: str | None = None
    ) -> Outcome:
        """Audit a request refused before it could even be understood (an altered button), as ``denied``."""
        request_id = request_id or new_request_id()
        decision = Decision(allowed=False, rule=rule, reason=message)
        outcome = Outcome(
            request_id=request_id,
            ok=False,
            text=text,
            shown_text=redact_text(text[:300]),
            actor=actor,
            decision=decision,
            error=ErrorInfo(kind="denied", message=message, rule=rule),
            source=source,
        )
        self.auditor.begin(
            request_id=request_id,
            actor=actor,
            text=outcome.shown_text,
            source=source,
            command=None,
            request=None,
            decision=decision,
        )
        self.auditor.end(outcome)
        return outcome

    def refused(
        self, text: str, actor: Actor, exc: Exception, *, source: str, request_id: str | None = None
    ) -> Outcome:
        """Audit a request that could not be built (a button naming a host no longer configured) and say why."""
        started = time.monotonic()
        return self._refused(
            request_id or new_request_id(), actor, text, source, started, exc, shown=_safe_echo(text, self.policy)
        )

    def record_delivery(self, request_id: str, status: str) -> None:
        """Note how the reply to ``request_id`` went out, if the auditor keeps that (an AuditStore does)."""
        record = getattr(self.auditor, "record_delivery", None)
        if record is None:
            return
        try:
            record(request_id, status)
        except Exception:
            log.exception("request %s: could not record its delivery (%s)", request_id, status)

    # -- stage helpers ---------------------------------------------------------------------------------
    def _early_plan(self, parsed: Parsed, actor: Actor, host: str) -> None:
        """The Engine request check for a request whose body reads nothing from the engine (``run``,
        ``pull``, ``network create``): its denial is known at admission. Only a denial counts here; anything
        else (a target that must be read first) is found again, and said, at execution."""
        engine = self.hosts.engine(host if host in self.hosts.hosts else self.hosts.default)
        bare = Context(engine=engine, actor=actor, policy=self.policy, registry=self.registry)
        try:
            self._plan(parsed.command, bare, parsed.request)
        except Denied:
            raise
        except Exception:
            log.debug("the early Engine request check could not run; execution checks it", exc_info=True)

    def _error(self, exc: Exception, request_id: str, *, command: Command | None) -> tuple[ErrorInfo, Decision | None]:
        """An exception as the reply's error (and, for a denial, the decision that says so)."""
        if isinstance(exc, Denied):
            return ErrorInfo(kind=exc.kind, message=exc.message, rule=exc.rule), Decision(
                allowed=False, rule=exc.rule, reason=exc.message
            )
        if isinstance(exc, UsageError):
            usage = exc.usage if exc.usage is not None or command is None else command.grammar.usage
            return ErrorInfo(kind=exc.kind, message=exc.message, usage=usage), None
        if isinstance(exc, ChatdockError):
            return ErrorInfo(kind=exc.kind, message=exc.message), None
        log.error("request %s failed unexpectedly", request_id, exc_info=exc)
        message = f"chatdock hit an internal error (request {request_id}); the details are in its log"
        return ErrorInfo(kind="internal", message=message), None

    def _refused(
        self,
        request_id: str,
        actor: Actor,
        text: str,
        source: str,
        started: float,
        exc: Exception,
        *,
        shown: str,
        parsed: Parsed | None = None,
        host: str | None = None,
        decision: Decision | None = None,
    ) -> Outcome:
        """A request that ends before execution (usage error, denial), as its final Outcome, audited."""
        error, refusal = self._error(exc, request_id, command=parsed.command if parsed else None)
        outcome = Outcome(
            request_id=request_id,
            ok=False,
            text=text,
            shown_text=shown,
            actor=actor,
            command=parsed.command.name if parsed else None,
            request=parsed.request if parsed else None,
            decision=refusal or decision,
            error=error,
            host=host,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            source=source,
        )
        self._begin(request_id, actor, source, shown, outcome)
        self.auditor.end(outcome)
        return outcome

    def _begin(
        self,
        request_id: str,
        actor: Actor,
        source: str,
        shown: str,
        about: AdmittedRequest | Outcome,
        *,
        mask: SecretMask | None = None,
    ) -> None:
        """The audit's first write: before the handler runs, or with the outcome of a request that did not.
        ``mask``: the secrets known by then (the request's own ``-e`` values, its containers'), kept out of the
        stored request as out of the shown text."""
        if isinstance(about, AdmittedRequest):
            command: str | None = about.command.name
            request: Request | None = about.request
            decision: Decision | None = about.decision
            host = about.shown_host
        else:
            command, request, decision, host = about.command, about.request, about.decision, about.host
        self.auditor.begin(
            request_id=request_id,
            actor=actor,
            text=shown,
            source=source,
            command=command,
            request=mask.apply(_dump(request)) if mask else _dump(request),
            decision=decision,
            **_host_column(host),
        )

    # -- approvals (issue #13) -------------------------------------------------------------------------
    def _hold(
        self, admitted: AdmittedRequest, ctx: Context, engine_request: list[dict[str, Any]] | None
    ) -> PendingApproval | None:
        """The admitted request, stored to wait for approval when an ``approve:`` rule names it (else None)."""
        command, host = admitted.command, admitted.host
        if not self.policy.approve or host == ALL_HOSTS or command.name in ("approvals", "help"):
            return None
        if self.approvals is None:
            if matching_rule(self.policy, admitted.request, self.host_ref(host)) is not None:
                raise Denied("this request needs approval, but this chatdock keeps no approvals store", rule="approve")
            return None
        parsed = Parsed(
            command=command,
            request=admitted.request,
            words=tuple(admitted.shown_text.split()),
            host=host,
            reason=admitted.reason,
        )
        state = {"shown_text": admitted.shown_text, "host": admitted.shown_host, "engine_request": engine_request}
        return self.approvals.hold(
            policy=self.policy,
            actor=admitted.actor,
            parsed=parsed,
            host=host,
            host_ref=self.host_ref(host),
            ctx=ctx,
            state=state,
            request_id=admitted.request_id,
            source=admitted.source,
        )

    # -- steps -----------------------------------------------------------------------------------------
    def _decide(self, actor: Actor, request: Request, host: str | None = None) -> Decision:
        """The policy's word; on several hosts, for this host (across every host: allowed if on any)."""
        try:
            if host == ALL_HOSTS:
                decisions = [
                    policy_rules.decide(self.policy, actor, request, self.host_ref(h)) for h in self.hosts.names()
                ]
                return next((d for d in decisions if d.allowed), decisions[0])
            return policy_rules.decide(self.policy, actor, request, self.host_ref(host or self.hosts.default))
        except Exception:  # fail closed
            log.exception("policy evaluation failed")
            return policy_rules.deny("policy-error", "the policy could not be evaluated; refusing")

    def host_ref(self, host: str) -> policy_rules.HostRef:
        labels = self.hosts.hosts[host].labels if host in self.hosts.hosts else {}
        return policy_rules.HostRef(name=host, labels=labels, shown=self.hosts.configured)

    def _in_scope(self, facts: ContainerFacts, policy: Policy | None = None) -> bool:
        try:
            return policy_rules.container_in_scope(policy or self.policy, facts).allowed
        except Exception:
            log.exception("scope evaluation failed")
            return False

    def scope_on(self, host: str) -> tuple[Policy, Callable[[ContainerFacts], bool]]:
        """The policy on ``host`` (its own container and network scope, if the policy gives it one) and its
        container-scope test."""
        policy = self.policy.for_host(host)
        return policy, functools.partial(self._in_scope, policy=policy)

    def _context(
        self,
        actor: Actor,
        request: Request,
        secrets: SecretSink,
        *,
        progress: Callable[[Progress], None] | None = None,
        host: str | None = None,
    ) -> Context:
        host = host or self.hosts.default
        engine = self.hosts.engine(host if host in self.hosts.hosts else self.hosts.default)
        policy, in_scope = self.scope_on(host)
        containers: dict[str, ContainerFacts] = {}
        inspected: dict[str, dict[str, Any]] = {}
        missing: dict[str, str] = {}
        secrets.add_env(getattr(request, "env", None))  # run -e / exec -e values are shown back by `env`
        for ref in request.container_refs():
            try:
                data = inspected[ref] = engine.inspect_container(ref)
                containers[ref] = facts_from_inspect(data)
                secrets.add_inspect(data)
            except NotFound as exc:
                missing[ref] = exc.message
            except AmbiguousReference as exc:
                raise exc.worded(in_scope) from None
        for facts in containers.values():
            scope = policy_rules.container_in_scope(policy, facts)
            if not scope.allowed:
                raise Denied(f"{scope.reason}: `{request.command}` may not touch it", rule=scope.rule)
        networks: dict[str, NetworkFacts] = {}
        for ref in request.network_refs():
            try:
                networks[ref] = engine.network_facts(ref)
            except NotFound as exc:  # ends the request, unless it asked not to care (network rm -f)
                if not request.missing_networks_ok():
                    raise
                missing[ref] = exc.message
                continue
            if request.mutating:
                scope = policy_rules.network_in_scope(
                    policy, networks[ref], for_removal=request.command == "network rm"
                )
                if not scope.allowed:
                    raise Denied(scope.reason, rule=scope.rule)
        names = request.dns_names()
        if names is not None:
            for network in networks.values():
                dns.check_names(
                    engine,
                    policy,
                    network=network,
                    names=names,
                    joining=[inspected[ref] for ref in containers],
                    in_scope=in_scope,
                )
        if request.starts_containers:
            for ref in containers:
                dns.check_start(engine, policy, inspected[ref], in_scope=in_scope)
        images: dict[str, ImageFacts] = {}
        missing_images: dict[str, str] = {}
        for ref in request.image_refs():
            try:
                images[ref] = engine.image_facts(ref)
            except NotFound as exc:
                missing_images[ref] = exc.message
                continue
            if request.mutating:  # by ID every name goes; by name only that one
                by_id = images[ref].id.removeprefix("sha256:").startswith(ref.removeprefix("sha256:").lower())
                image_names = images[ref].tags if by_id else (ref,)
                scope = policy_rules.image_removable(policy, image_names)
                if not scope.allowed:
                    raise Denied(f"{scope.reason}: `{request.command}` may not remove it", rule=scope.rule)
        return Context(
            engine=engine,
            actor=actor,
            policy=policy,
            registry=self.registry,
            containers=containers,
            documents={data["Id"]: data for data in inspected.values()},
            networks=networks,
            missing=missing,
            in_scope=in_scope,
            scope_on=self.scope_on,
            run_timeout=self.run_timeout,
            exec_timeout=self.exec_timeout,
            history=self.history,
            secrets=secrets,
            images=images,
            missing_images=missing_images,
            progress=progress or _no_progress,
            hosts=self.hosts,
            host=host,
            approvals=self.approvals,
        )

    def _plan(self, command: Command, ctx: Context, request: Request) -> list[EngineCall] | None:
        if command.plan is None:
            return None
        calls = command.plan(ctx, request)
        try:
            refused = policy_rules.check_engine_calls(
                self.policy,
                ((c.method, c.path, dict(c.body) if c.body is not None else None, dict(c.params)) for c in calls),
            )
        except ChatdockError:
            raise
        except Exception:
            log.exception("engine request check failed")
            refused = policy_rules.deny("policy-error", "the Engine request could not be checked; refusing")
        if refused is not None:
            raise Denied(refused.reason, rule=refused.rule)
        return calls


def _result_ok(result: Result | None) -> bool:
    items = getattr(result, "items", None)
    if items:
        return all(item.ok for item in items)
    exit_code = getattr(result, "exit_code", None)
    return not (isinstance(exit_code, int) and exit_code != 0 and getattr(result, "kind", "") == "exec")


def _masked(mask: SecretMask, result: Result | None, error: ErrorInfo | None) -> tuple[Result | None, ErrorInfo | None]:
    """The reply with the secrets of the containers it is about masked: every string of the result (output,
    command lines, documents; IDs excepted) and the error message. One place, so every command, button and
    front door (Slack, shell, ``--json``) gets it."""
    if result is not None:
        dumped = result.model_dump()
        masked = mask.apply(dumped)
        if masked != dumped:
            result = type(result).model_validate(masked)
    if error is not None:
        error = error.model_copy(update={"message": mask.text(error.message)})
    return result, error


def _dump(request: Request | None) -> dict[str, Any] | None:
    if request is None:
        return None
    return {"command": request.command, **request.model_dump(mode="json")}


def _safe_echo(text: str, policy: Policy) -> str:
    try:
        return " ".join(redact_words(split_words(normalize(text)), policy.redact))
    except ChatdockError:
        return redact_text(text[:300])


def _check_states(ctx: Context, expected: Mapping[str, str] | None) -> None:
    for container_id, state in (expected or {}).items():
        current = next((c for c in ctx.containers.values() if c.id == container_id), None)
        if current is None:
            raise NotFound("that container no longer exists")
        if state and current.status != state:
            raise Conflict(
                f"{current.name} changed since this message was posted (it was {state}, it is now "
                f"{current.status}); nothing was done"
            )


_LEADING = Grammar(
    usage="[--context NAME] [--dry-run] COMMAND [ARG...]",
    flags=(
        Flag(("--dry-run",), "dry_run"),
        Flag(("--help", "-h"), "help"),
        Flag(("--context", "-c"), "context", Kind.VALUE),
        Flag(("--host", "-H"), "host", Kind.VALUE),
    ),
)


def _leading_dashes(words: list[str]) -> list[str]:
    """``—dry-run`` and ``—help`` typed before the command (or after ``network``) read as their ASCII options."""
    for index, word in enumerate(words):
        plain = plain_dash(_LEADING, word)
        if plain != word:
            words = [*words[:index], plain, *words[index + 1 :]]
        if not plain.startswith("-") and plain not in ("network", "container"):
            break
    return words


def _no_progress(_progress: Progress) -> None:
    return None


HOST_FREE = frozenset({"help", "history", "context ls", "context inspect", "approvals"})  # need no engine slot
_HOST_OPTIONS = ("--context", "-c", "--host", "-H")


def _leading_host(words: list[str], hosts: HostSet) -> tuple[list[str], str | None]:
    """Take docker's global ``--context NAME`` / ``-c NAME`` (and ``-H``/``--host`` naming a configured host) from
    before the command, or after a family word (``/net --context prod ls``). An address is never accepted: the
    hosts chatdock may drive are the configured ones."""
    family: list[str] = []
    if words[:1] in (["network"], ["container"]) and words[1:2] and words[1].split("=")[0] in _HOST_OPTIONS:
        family, words = words[:1], words[1:]
    if not words or words[0].split("=")[0] not in _HOST_OPTIONS:
        return [*family, *words], None
    option, _, value = words[0].partition("=")
    if not value:
        if len(words) < 2:
            raise UsageError(f"`{option}` needs a host name: {option} NAME COMMAND", usage=CONTEXT_USAGE)
        value, rest = words[1], words[2:]
    else:
        rest = words[1:]
    if rest[:1] and rest[0].split("=")[0] in _HOST_OPTIONS:
        raise UsageError("name one host: a single --context", usage=CONTEXT_USAGE)
    if value not in hosts.hosts and not (value == ALL_HOSTS and hosts.configured):
        if option in ("-H", "--host") and ("://" in value or "/" in value or ":" in value):
            raise Denied(
                f"`{option} {value}`: chatdock drives only its configured hosts, never an address typed in chat"
                f" (configured: {', '.join(hosts.names())})",
                rule="never:host-address",
            )
        raise UsageError(
            f'context "{value}" does not exist: the hosts are {", ".join(hosts.names())}', usage=CONTEXT_USAGE
        )
    return [*family, *rest], value


def _host_column(host: str | None) -> dict[str, str]:
    """``begin``'s ``host`` only when there is one: an auditor written before several hosts needs no change."""
    return {"host": host} if host else {}


def _on_host(host: str | None) -> str:
    return f" on host {host}" if host else ""


def _leading_reason(words: list[str]) -> tuple[list[str], str | None]:
    """Take ``--reason TEXT`` (or ``--reason=TEXT``) placed before the command: why a request that needs
    approval is made (approvals, issue #13). Quote a reason of several words."""
    if not words or words[0].split("=")[0] != "--reason":
        return words, None
    option, _, value = words[0].partition("=")
    rest = words[1:]
    if not value:
        if not rest or not rest[0].strip() or rest[0].startswith("--"):
            raise UsageError('`--reason` needs a text: --reason "WHY" COMMAND ...', usage=REASON_USAGE)
        value, rest = rest[0], rest[1:]
    if rest[:1] and rest[0].split("=")[0] == option:
        raise UsageError("give one --reason", usage=REASON_USAGE)
    return rest, value.strip()[:300]


def _leading_dry_run(words: list[str]) -> tuple[list[str], bool]:
    """Take ``--dry-run`` placed before the command, or after a family word (``/net --dry-run rm app``)."""
    found = False
    while words[:1] == ["--dry-run"]:
        words, found = words[1:], True
    while words[:1] in (["network"], ["container"], ["image"]) and words[1:2] == ["--dry-run"]:
        words, found = [words[0], *words[2:]], True
    return words, found
