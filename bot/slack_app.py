"""The Slack front door: bolt listeners for ``/docker``, ``/net`` and chatdock's buttons.

Listeners are thin and fast. A slash command is triaged (parse + grant check, no Docker), acknowledged at once
(an in-channel "running ..." so the typed command stays in the channel's history, or the ephemeral refusal),
and the Docker work is handed to chatdock's *own* bounded pool, never bolt's listener pool: twenty slow
``run`` commands in flight must not delay anyone's ack past Slack's 3 s deadline. The worker runs the pipeline
and delivers the reply through the request's response_url (:mod:`bot.respond`).

A button click is a new request from the *clicker*: acked at once, then in the worker the button's value is
checked, the pipeline runs ``stop <id>`` (etc.) for the clicker with the state the message showed, and the
original message is replaced on success ("stopped by @who"); a refusal or a stale button answers only the
clicker and leaves the message alone.

Who is asking: the Actor carries the person's own workspace (:func:`command_user_team`,
:func:`click_user_team`) and whether it is outside the installing organisation (:class:`SlackHome`, from
``auth.test`` at start); policy admits such people only by user ID or by a grant's ``teams``.

User groups (for grants by group) come from :class:`GroupDirectory`, refreshed in the background; a request
never waits for Slack's ``usergroups.list``.

Quick reads (``ps``, ``inspect``, ``logs``: neither slow nor changing anything) run on a small pool of their own,
``read_executor``: with one interpreter, more than a few at once only compete for it (and each keeps memory
that the allocator holds on to), while slow and changing commands, which mostly wait on the engine, keep the
large pool, so twenty ``run``s in flight never hold up a ``ps``.

Acknowledgements go first (:class:`AckFirst`): Slack's deadline is on the ack (3 s), the reply has 30 minutes.
Under a burst, workers hold the Docker work of earlier requests back while later ones are still being
acknowledged (at most ``max_delay``), instead of competing with them for the interpreter and the CPUs.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

from slack_bolt import Ack, App, BoltRequest
from slack_sdk import WebClient

from bot.buttons import BUTTON_COMMANDS, STATE_CHANGING, button_request, button_words
from bot.config import Settings
from bot.errors import ChatdockError
from bot.incident_buttons import click_command, is_incident_action, store_for  # incidents (#12)
from bot.models import Actor, Progress
from bot.notify_text import INCIDENT_ACTION
from bot.outcome import Outcome
from bot.periodic import Periodic
from bot.pipeline import Pipeline, new_request_id
from bot.render_blocks import (
    ACTION_ID_PREFIX,
    STATE_BUTTONS,
    SlackMessage,
    parse_button,
    render_ack,
    render_message,
    render_progress,
)
from bot.render_services import is_service_action, service_click_text
from bot.respond import Deliverer, api_error
from bot.stages import AdmittedRequest

log = logging.getLogger(__name__)

COMMANDS = {"/docker": "", "/net": "/net "}  # slash command → what goes before its text for the pipeline
BUTTON_VERBS = frozenset(BUTTON_COMMANDS)

# Words only this front door says (everything else is rendered from an Outcome by bot.render_blocks).
BUTTON_INVALID = "This button is not valid (it may be from an older chatdock, or altered); nothing was done."
SHUTTING_DOWN = "chatdock is restarting and did not run this; try again in a minute."
REPLAYED = (
    "This exact request was already received (a retry or a replay of it); it is handled once, nothing more was done."
)


@dataclasses.dataclass(frozen=True)
class SlackHome:
    """The organisation chatdock is installed in, from ``auth.test`` at start: the workspace (``team_id``) and,
    for an org-wide Enterprise Grid install (``is_enterprise_install``), the whole enterprise. Anyone else, such
    as a partner in a Slack Connect channel, is *external*: policy admits them only by user ID or by ``teams``.
    Unknown (no team in the answer) means nobody is at home: fail closed."""

    team: str = ""
    enterprise: str = ""
    org_wide: bool = False

    @classmethod
    def from_auth_test(cls, answer: Mapping[str, Any]) -> SlackHome:
        return cls(
            team=str(answer.get("team_id") or ""),
            enterprise=str(answer.get("enterprise_id") or ""),
            org_wide=bool(answer.get("is_enterprise_install")),
        )

    def is_home(self, user_team: str, enterprise: str = "") -> bool:
        if self.org_wide and self.enterprise:
            return enterprise == self.enterprise
        return bool(self.team) and user_team == self.team


def command_user_team(body: Mapping[str, Any]) -> tuple[str, str]:
    """The typing person's own workspace and enterprise from a slash command's form fields. Slack sends
    ``team_id`` (the workspace the person typed in: their own, in a Slack Connect channel) and, on Enterprise
    Grid, ``enterprise_id``; a ``user_team`` field, as Events API payloads carry, wins when present."""
    team = str(body.get("user_team") or body.get("team_id") or "")
    return team, str(body.get("enterprise_id") or "")


def click_user_team(body: Mapping[str, Any]) -> tuple[str, str]:
    """The clicking person's own workspace and enterprise from a ``block_actions`` payload: ``user.team_id`` is
    always theirs; ``team.id`` is where the click happened (``null`` for org-wide installs)."""
    user = body.get("user") or {}
    team = str(user.get("team_id") or (body.get("team") or {}).get("id") or "")
    enterprise = str((body.get("enterprise") or {}).get("id") or user.get("enterprise_id") or "")
    return team, enterprise


def internal_error(request_id: str) -> str:
    return f"chatdock hit an internal error (request {request_id}); the details are in its log"


def _notice(text: str) -> SlackMessage:
    return SlackMessage(
        text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}], response_type="ephemeral"
    )


class GroupDirectory:
    """Which Slack user groups each user is in, from ``usergroups.list(include_users=True)``.

    Loaded in a background thread at start and every ``interval`` seconds; lookups never block and return
    ``()`` until the first load finished (so a group grant may not match in the first seconds after start).
    A failed refresh keeps the previous map.
    """

    def __init__(self, client: WebClient, *, interval: float = 300.0) -> None:
        self.client = client
        self.interval = interval
        self._members: dict[str, tuple[str, ...]] = {}
        self.loaded = threading.Event()
        self._every = Periodic(
            self.refresh,
            interval=interval,
            name="chatdock-groups",
            failure="Slack user groups: refresh failed",
            run_first=True,
        )

    def groups_of(self, user: str) -> tuple[str, ...]:
        return self._members.get(user, ())

    def refresh(self) -> bool:
        try:
            response = self.client.usergroups_list(include_users=True)
        except Exception as exc:
            log.warning("could not load Slack user groups (%s); group grants use the previous list", api_error(exc))
            return False
        members: dict[str, list[str]] = {}
        for group in response.get("usergroups") or []:
            for user in group.get("users") or []:
                members.setdefault(user, []).append(str(group["id"]))
        self._members = {user: tuple(groups) for user, groups in members.items()}  # one atomic swap
        self.loaded.set()
        return True

    def start(self) -> None:
        """Load now and every ``interval`` seconds, in the background."""
        self._every.start()

    def stop(self) -> None:
        self._every.stop()


class AckFirst:
    """Lets Slack requests being acknowledged go before the Docker work of earlier ones.

    The HTTP front door wraps each request in :meth:`answering`. A job takes a :meth:`ticket` when its request
    hands it over, and its worker calls :meth:`wait` before starting: it goes ahead at once when no other
    request came in since (a quiet channel, Socket Mode), else once no request has been in progress for
    ``quiet`` seconds, or ``max_delay`` seconds after its own request arrived, whichever comes first (so a
    steady stream of requests delays a reply by at most ``max_delay``, never starves it). With one interpreter
    and a few CPUs, work that runs while acks are due only delays them: done afterwards it takes no longer.
    """

    def __init__(self, *, quiet: float = 0.02, max_delay: float = 1.0) -> None:
        self.quiet = quiet
        self.max_delay = max_delay
        self._answering = 0
        self._answered = 0
        self._last_answered = -float("inf")
        self._changed = threading.Condition(threading.Lock())

    @contextmanager
    def answering(self) -> Iterator[None]:
        with self._changed:
            self._answering += 1
        try:
            yield
        finally:
            with self._changed:
                self._answering -= 1
                self._answered += 1
                self._last_answered = time.monotonic()
                if not self._answering:
                    self._changed.notify_all()

    def ticket(self) -> int:
        """Taken while the job's own request is being answered: how many requests were answered before it."""
        with self._changed:
            return self._answered

    def wait(self, since: float, ticket: int) -> None:
        """Return when no request is being answered (for ``quiet`` s, if others came after the job's own), or at
        ``since + max_delay``."""
        deadline = since + self.max_delay
        with self._changed:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                if self._answering:  # (its own request, finishing its ack, counts too: it goes first)
                    self._changed.wait(deadline - now)
                    continue
                if self._answered - ticket <= 1:
                    return  # nothing but its own request came in: no burst to make way for
                idle = now - self._last_answered
                if idle >= self.quiet:
                    return
                self._changed.wait(min(self.quiet - idle, deadline - now))


class Shared(Protocol):
    """What replicas share through the store (:class:`bot.audit.AuditStore`): who received a request first, and
    which replies are still owed (answered by another replica if this one dies)."""

    def claim(self, key: str, *, owe: dict[str, Any] | None = None) -> bool: ...

    def owe_reply(
        self, *, request_id: str, response_url: str, channel: str, user: str, text: str, issued_at: float
    ) -> None: ...

    def reply_settled(self, request_id: str) -> None: ...


def command_key(body: Mapping[str, Any]) -> str:
    """A slash command's dedupe key: its ``trigger_id`` (unique per invocation), else its response_url."""
    trigger = str(body.get("trigger_id") or "")
    if trigger:
        return f"command:{trigger}"
    url = str(body.get("response_url") or "")
    return f"command-url:{url}" if url else ""


def click_key(body: Mapping[str, Any], action: Mapping[str, Any]) -> str:
    """A click's dedupe key: the message, the button, the click's own ``action_ts`` and the clicker (a second
    click on the same button is a new ``action_ts``: a new request, which the state check then judges)."""
    container = body.get("container") or {}
    message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts") or ""
    stamp = str(action.get("action_ts") or body.get("trigger_id") or "")
    if not stamp:
        return ""
    user = str((body.get("user") or {}).get("id") or "")
    return f"click:{message_ts}:{action.get('action_id', '')}:{stamp}:{user}"


def retry_of(request: BoltRequest | None) -> str:
    """Slack's retry headers (``X-Slack-Retry-Num``, ``X-Slack-Retry-Reason``) as a few words for the log."""
    if request is None:
        return ""
    number = (request.headers.get("x-slack-retry-num") or [""])[0]
    reason = (request.headers.get("x-slack-retry-reason") or [""])[0]
    return f"Slack retry #{number[:4]} ({reason[:40] or 'no reason given'})" if number else ""


class ReplayGuard:
    """Lets each request through once. A request can arrive twice: Slack retries (``X-Slack-Retry-Num``), a load
    balancer re-sends to another replica, or someone replays a captured request within its signature's 5 minutes
    (without this, a re-sent ``/docker run -d IMAGE`` would start a second container). The key is claimed in the
    shared store (:class:`Shared`), so the first of any replica wins; a copy that arrives later is acknowledged
    as already received and does nothing. This process also remembers its own keys for ``ttl`` seconds (no
    database round trip for its own repeats). If the store cannot be reached, the local memory decides alone
    (that replica then reports itself unhealthy on /healthz, so a balancer sends the traffic elsewhere)."""

    def __init__(
        self, *, shared: Shared | None = None, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.shared = shared
        self.ttl = ttl
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str, *, owe: dict[str, Any] | None = None) -> bool:
        """True the first time ``key`` is seen by any replica (and for requests without one). ``owe`` notes the
        reply this process then owes, in the same transaction as the claim (see :meth:`Shared.owe_reply`)."""
        if not key:
            return True
        now = self._clock()
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if now - seen_at < self.ttl:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return False
            self._seen[key] = now
        if self.shared is None:
            return True
        try:
            return self.shared.claim(key, owe=owe)
        except Exception:
            log.error(
                "could not claim a request in the shared store; deduplicating in this process only", exc_info=True
            )
            return True


class _Listeners:
    """What the bolt listeners do; the Docker part always runs on ``executor``."""

    def __init__(
        self,
        *,
        pipeline: Pipeline,
        executor: ThreadPoolExecutor,
        deliverer: Deliverer,
        groups: GroupDirectory | None,
        ack_first: AckFirst | None = None,
        read_executor: ThreadPoolExecutor | None = None,
        progress_interval: float = 3.0,
        home: SlackHome | None = None,
        shared: Shared | None = None,
    ) -> None:
        self.home = home or SlackHome()
        self.pipeline = pipeline
        self.executor = executor
        self.read_executor = read_executor or executor
        self.deliverer = deliverer
        self.groups = groups
        self.shared = shared
        self.replays = ReplayGuard(shared=shared)
        self.ack_first = ack_first
        self.progress_interval = progress_interval
        self.desk: Any = None  # approvals (issue #13): bot.approval_slack.ApprovalDesk, set by create_app

    # -- slash commands --------------------------------------------------------------------------------
    def on_command(self, ack: Ack, body: dict[str, Any], request: BoltRequest | None = None) -> None:
        received = time.monotonic()
        actor = self._actor(
            user=body.get("user_id", ""),
            channel=body.get("channel_id", ""),
            team=body.get("team_id", ""),
            name=body.get("user_name", ""),
            own=command_user_team(body),
        )
        text = COMMANDS.get(str(body.get("command", "")), "") + str(body.get("text", ""))
        response_url = body.get("response_url") or None
        request_id = new_request_id()
        if not self.replays.first_time(command_key(body), owe=self._owed(request_id, response_url, actor, text)):
            retry = retry_of(request)
            log.warning(
                "a slash command from %s was already received (%s); not run again", actor.user, retry or "replay"
            )
            _ack(ack, _notice(REPLAYED))
            return
        if response_url:
            self.deliverer.response_urls.note(response_url, issued_at=received)
        try:
            admitted = self.pipeline.admit(text, actor, source="slack", request_id=request_id)
            if isinstance(admitted, Outcome):
                _ack(ack, render_message(admitted))
                self.pipeline.record_delivery(admitted.request_id, "ack")
                self._settle(request_id)
                return
        except Exception:  # admit promises not to raise; the user still gets an answer in time
            log.exception("request %s: admission failed", request_id)
            _ack(ack, _notice(internal_error(request_id)))
            self._settle(request_id)
            return
        if not admitted.quick_read:
            # mutating or slow: the typed command goes into the channel's history at once
            _ack(ack, render_ack(admitted.shown_text, actor.user, request_id, host=admitted.shown_host))
        else:
            ack()  # a quick read: its in-channel result (naming who asked) follows in a moment
        self._submit(
            self._run_command,
            executor=self.read_executor if admitted.quick_read else self.executor,
            admitted=admitted,
            response_url=response_url,
            received=received,
        )

    def _run_command(self, *, admitted: AdmittedRequest, response_url: str | None, received: float) -> None:
        """The worker's part: execute the request admitted at the ack (never parsed or decided again)."""
        actor, request_id = admitted.actor, admitted.request_id
        live = self.deliverer.live(actor.channel, interval=self.progress_interval)
        latest: list[Progress] = []

        def progress(step: Progress) -> None:
            latest[:] = [step]
            live.show(
                lambda: render_progress(step, shown_text=admitted.shown_text, user=actor.user, request_id=request_id)
            )

        try:
            outcome = self.pipeline.execute(admitted, progress=progress)
            pending = self.desk.pending_message(outcome) if self.desk is not None else None  # approvals (#13)
            message = pending or render_message(outcome)
        except Exception:
            log.exception("request %s: rendering failed", request_id)
            message = _notice(internal_error(request_id))
        status = None
        if live.ts is not None:
            if message.response_type == "in_channel" and message.attachment is None:
                status = live.finish(message)  # the progress message becomes the result
            elif latest:  # the result goes out on its own (a file, or only to the requester): close the bar
                step = latest[0].model_copy(update={"done": True})
                live.finish(render_progress(step, shown_text="", user=actor.user, request_id=request_id))
        if status is None:
            status = self.deliverer.deliver(message, response_url, actor.channel, user=actor.user, issued_at=received)
        self._record(request_id, actor, status, received)

    # -- buttons ---------------------------------------------------------------------------------------
    def on_button(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], request: BoltRequest | None = None
    ) -> None:
        received = time.monotonic()
        user = body.get("user") or {}
        container = body.get("container") or {}
        actor = self._actor(
            user=str(user.get("id", "")),
            channel=str((body.get("channel") or {}).get("id") or container.get("channel_id") or ""),
            team=str((body.get("team") or {}).get("id") or user.get("team_id") or ""),
            name=str(user.get("username") or user.get("name") or ""),
            own=click_user_team(body),
        )
        response_url = body.get("response_url") or None
        request_id = new_request_id()
        owed = self._owed(request_id, response_url, actor, _button_text(action))
        if not self.replays.first_time(click_key(body, action), owe=owed):
            log.warning("a click was already received (%s); not run again", retry_of(request) or "replay")
            ack()  # the first delivery replies (or replaced the message); a second reply would only repeat it
            return
        ack()
        if response_url:
            self.deliverer.response_urls.note(response_url, issued_at=received)
        message_ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
        self._submit(
            self._run_click,
            request_id=request_id,
            action=action,
            actor=actor,
            response_url=response_url,
            message_ts=message_ts,
            received=received,
        )

    def _run_click(
        self,
        *,
        request_id: str,
        action: Mapping[str, Any],
        actor: Actor,
        response_url: str | None,
        message_ts: str | None,
        received: float,
    ) -> None:
        if is_incident_action(action):  # incidents (#12): Logs / Restart / Stop / Mute on an incident message
            self._run_incident_click(
                request_id=request_id, action=action, actor=actor, response_url=response_url, received=received
            )
            return
        if is_service_action(action):  # swarm services (bot/render_services.py): scale, logs, rollback
            self._run_service_click(
                request_id=request_id, action=action, actor=actor, response_url=response_url, received=received
            )
            return
        try:
            verb, container_id, state, host = parse_button(str(action.get("value", "")))
            if str(action.get("action_id", "")) != ACTION_ID_PREFIX + verb or verb not in BUTTON_VERBS:
                raise ValueError(f"action_id {action.get('action_id')!r} does not match the value's action {verb!r}")
            if verb not in STATE_BUTTONS.get(state, ()):  # chatdock never draws this button for that state
                raise ValueError(f"no {verb!r} button is offered for a {state} container")
        except ValueError as exc:
            log.warning("refused a button click from %s: %s", actor.user, exc)
            self.pipeline.refuse(
                f"button {str(action.get('action_id', ''))[:80]} {str(action.get('value', ''))[:200]}",
                actor,
                source="button",
                rule="button-value",
                message=f"{BUTTON_INVALID} ({exc})",
                request_id=request_id,
            )
            status = self.deliverer.deliver(
                _notice(f"{BUTTON_INVALID} (request {request_id})"),
                response_url,
                actor.channel,
                user=actor.user,
                issued_at=received,
            )
            self._record(request_id, actor, status, received)
            return
        changing = verb in STATE_CHANGING
        try:
            # logs only needs the container to exist; actions need it unchanged since the message was drawn
            # (an image has no state to compare: the engine refuses one in use, and the policy is asked again)
            expect = None if verb == "rmi" else {container_id: state if changing else ""}
            try:
                # the host the message came from, whatever the channel's default is now
                parsed = button_request(
                    self.pipeline.registry, self.pipeline.hosts, action=verb, target=container_id, host=host
                )
            except ChatdockError as exc:
                text = " ".join(button_words(verb, container_id, host))
                outcome = self.pipeline.refused(text, actor, exc, source="button", request_id=request_id)
            else:
                admitted = self.pipeline.admit(
                    parsed, actor, source="button", request_id=request_id, expect_states=expect
                )
                outcome = admitted if isinstance(admitted, Outcome) else self.pipeline.execute(admitted)
            pending = self.desk.pending_message(outcome) if self.desk is not None else None  # approvals (#13)
            if pending is not None:
                message, replace = pending, False
            elif outcome.ok and changing:
                message, replace = render_message(outcome, clicked_by=actor.user), True
            elif outcome.ok:
                message, replace = render_message(outcome), False  # logs: a new reply in the channel
            else:
                message = dataclasses.replace(render_message(outcome), response_type="ephemeral")
                replace = False  # only the clicker hears why; the message stays as it was
        except Exception:
            log.exception("request %s: rendering failed", request_id)
            message, replace = _notice(internal_error(request_id)), False
        status = self.deliverer.deliver(
            message,
            response_url,
            actor.channel,
            replace,
            user=actor.user,
            message_ts=message_ts,
            issued_at=received,
        )
        self._record(request_id, actor, status, received)

    def _refuse_click(self, shown: str, actor: Actor, request_id: str, exc: Exception) -> SlackMessage:
        """A button whose value does not decode to a command: audited as refused (``shown``: what the audit
        log says was clicked); the clicker alone is told."""
        log.warning("refused a button click (%s) from %s: %s", shown[:80], actor.user, exc)
        self.pipeline.refuse(
            shown,
            actor,
            source="button",
            rule="button-value",
            message=f"{BUTTON_INVALID} ({exc})",
            request_id=request_id,
        )
        return _notice(f"{BUTTON_INVALID} (request {request_id})")

    def _run_incident_click(
        self, *, request_id: str, action: Mapping[str, Any], actor: Actor, response_url: str | None, received: float
    ) -> None:
        """An incident button (bot.incident_buttons): the command it stands for, run for the clicker; the answer
        is a new message (the incident message stays as it is)."""
        try:
            text = click_command(action, store_for(self.pipeline.auditor), named_hosts=self.pipeline.hosts.configured)
        except ValueError as exc:
            message = self._refuse_click(f"button {str(action.get('action_id', ''))[:80]}", actor, request_id, exc)
        else:
            try:
                outcome = self.pipeline.handle(text, actor, source="button", request_id=request_id)
                message = render_message(outcome)
                if not outcome.ok:
                    message = dataclasses.replace(message, response_type="ephemeral")
            except Exception:
                log.exception("request %s: rendering failed", request_id)
                message = _notice(internal_error(request_id))
        status = self.deliverer.deliver(message, response_url, actor.channel, user=actor.user, issued_at=received)
        self._record(request_id, actor, status, received)

    def _run_service_click(
        self, *, request_id: str, action: Mapping[str, Any], actor: Actor, response_url: str | None, received: float
    ) -> None:
        """A service card's button (swarm services): the command it stands for, run as the clicker's request; the
        result is a new reply in the channel (the card stays as it was), a refusal only for the clicker."""
        try:
            text = service_click_text(action)
        except (ValueError, TypeError) as exc:
            shown = f"button {str(action.get('action_id', ''))[:80]} {str(action.get('value', ''))[:200]}"
            message = self._refuse_click(shown, actor, request_id, exc)
        else:
            live = self.deliverer.live(actor.channel, interval=self.progress_interval)
            latest: list[Progress] = []

            def progress(step: Progress) -> None:  # a rollout: one message, edited in place, as for a command
                latest[:] = [step]
                live.show(lambda: render_progress(step, shown_text=text, user=actor.user, request_id=request_id))

            try:
                outcome = self.pipeline.handle(text, actor, source="button", request_id=request_id, progress=progress)
                message = render_message(outcome, clicked_by=actor.user)
                if outcome.error is not None:
                    message = dataclasses.replace(message, response_type="ephemeral")
            except Exception:
                log.exception("request %s: rendering failed", request_id)
                message = _notice(internal_error(request_id))
            if live.ts is not None and message.response_type == "in_channel" and message.attachment is None:
                finished = live.finish(message)  # the progress message becomes the result
                if finished is not None:
                    self._record(request_id, actor, finished, received)
                    return
            elif live.ts is not None and latest:
                step = latest[0].model_copy(update={"done": True})
                live.finish(render_progress(step, shown_text="", user=actor.user, request_id=request_id))
        status = self.deliverer.deliver(message, response_url, actor.channel, user=actor.user, issued_at=received)
        self._record(request_id, actor, status, received)

    # -- helpers ---------------------------------------------------------------------------------------
    # -- helpers ---------------------------------------------------------------------------------------
    def _actor(self, *, user: str, channel: str, team: str, name: str, own: tuple[str, str]) -> Actor:
        """The Actor for a command or a click; ``own`` is the person's own (workspace, enterprise)."""
        groups = self.groups.groups_of(user) if self.groups is not None else ()
        user_team, enterprise = own
        external = not self.home.is_home(user_team, enterprise)
        return Actor(
            user=user, channel=channel, team=team, name=name, groups=groups, user_team=user_team, external=external
        )

    def _submit(self, work: Callable[..., None], *, executor: ThreadPoolExecutor | None = None, **kwargs: Any) -> None:
        ack_first = self.ack_first
        ticket = ack_first.ticket() if ack_first is not None else 0

        def guarded() -> None:
            try:
                if ack_first is not None:
                    ack_first.wait(since=kwargs.get("received", time.monotonic()), ticket=ticket)
                work(**kwargs)
            except Exception:  # a worker must never die silently inside a Future
                log.exception("chatdock worker failed")

        try:
            (executor or self.executor).submit(guarded)
        except RuntimeError:  # the pool is shut down: chatdock is stopping
            log.warning("refused work from %s: shutting down", kwargs["actor"].user)
            self.deliverer.deliver(
                _notice(SHUTTING_DOWN), kwargs.get("response_url"), kwargs["actor"].channel, user=kwargs["actor"].user
            )
            if kwargs.get("request_id"):
                self._settle(kwargs["request_id"])

    def _owed(self, request_id: str, response_url: str | None, actor: Actor, text: str) -> dict[str, Any] | None:
        """What the shared store notes as owed once the request is claimed (see :class:`Shared`)."""
        if self.shared is None or not response_url:
            return None
        return {
            "request_id": request_id,
            "response_url": response_url,
            "channel": actor.channel,
            "user": actor.user,
            "text": text,
            "issued_at": time.time(),
        }

    def _settle(self, request_id: str) -> None:
        """The request is answered (or refused for good): no other replica needs to answer it."""
        if self.shared is None:
            return
        try:
            self.shared.reply_settled(request_id)
        except Exception:
            log.error("request %s: could not settle its reply in the shared store", request_id, exc_info=True)

    def _record(self, request_id: str, actor: Actor, status: str, received: float) -> None:
        self._settle(request_id)  # first: another replica must not answer it again
        elapsed = (time.monotonic() - received) * 1000
        if status.startswith("failed"):  # logged before the audit entry says so: whoever reads it finds the log
            log.error(
                "request %s for %s: reply not delivered (%s) after %.0f ms", request_id, actor.user, status, elapsed
            )
        else:
            log.info("request %s for %s: delivered via %s after %.0f ms", request_id, actor.user, status, elapsed)
        self.pipeline.record_delivery(request_id, status)  # in the request's audit entry, failures included


def _button_text(action: Mapping[str, Any]) -> str:
    """The command a click stands for (``stop <container ID>``), as noted with its owed reply; checked later."""
    if is_service_action(action):  # swarm services
        try:
            return service_click_text(action)
        except (ValueError, TypeError):
            return "(a button that is not valid)"
    if is_incident_action(action):  # incidents (#12)
        return f"incident button {str(action.get('action_id', ''))[:60]}"
    try:
        verb, container_id, _state, host = parse_button(str(action.get("value", "")))
    except ValueError:
        return "(a button that is not valid)"
    if verb not in BUTTON_COMMANDS:
        return "(a button that is not valid)"
    return " ".join(button_words(verb, container_id, host))


def _ack(ack: Ack, message: SlackMessage) -> None:
    ack(text=message.text, blocks=message.blocks or None, response_type=message.response_type)


class _QuietTokenNotice(logging.Filter):
    """bolt warns "As you gave `client` as well, `token` will be unused." whenever SLACK_BOT_TOKEN is in the
    environment, because it reads that variable itself; chatdock's client already carries the same token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


_QUIET_TOKEN_NOTICE = _QuietTokenNotice()


def create_app(
    *,
    settings: Settings,
    pipeline: Pipeline,
    client: WebClient,
    executor: ThreadPoolExecutor,
    deliverer: Deliverer,
    groups: GroupDirectory | None = None,
    listener_executor: ThreadPoolExecutor | None = None,
    ack_first: AckFirst | None = None,
    read_executor: ThreadPoolExecutor | None = None,
    home: SlackHome | None = None,
    shared: Shared | None = None,
) -> App:
    """The bolt App with chatdock's listeners. ``client`` is the WebClient every Web API call goes through;
    ``ack_first`` is the front door's (HTTP wraps each request in :meth:`AckFirst.answering`); quick reads run
    on ``read_executor`` (``executor`` when not given), everything else on ``executor``. ``home`` is the
    installing organisation (people from elsewhere are external; without it, everyone is). ``shared`` (the audit
    store) makes replicas agree on duplicates and owed replies; without it each process deduplicates alone."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    if not secret:
        # Socket Mode needs no signing secret. An empty one would let anyone sign HTTP requests with the
        # empty key, so use one nobody knows: every HTTP request then fails verification (401).
        secret = secrets.token_hex(16)
    logging.getLogger("slack_bolt.App").addFilter(_QUIET_TOKEN_NOTICE)  # the same object each time: added once
    app = App(
        client=client,
        signing_secret=secret,
        # Our listeners only triage (no Docker, no Slack call) and hand the work to ``executor``, so they run in
        # the request's own thread and the ack goes out the moment they return. With False, bolt would run them
        # on ``listener_executor`` while the request thread polls for the ack every 10 ms: a hand-off and up
        # to 10 ms per request, and a server thread held idle meanwhile (under a burst, requests queue behind it).
        process_before_response=True,
        # only bolt's lazy listeners (chatdock has none) would use it; bolt's own default is 5 threads
        listener_executor=listener_executor or ThreadPoolExecutor(max_workers=32, thread_name_prefix="bolt"),
    )
    listeners = _Listeners(
        pipeline=pipeline,
        executor=executor,
        deliverer=deliverer,
        groups=groups,
        ack_first=ack_first,
        read_executor=read_executor,
        home=home,
        shared=shared,
    )

    def on_command(ack: Ack, body: dict[str, Any], request: BoltRequest) -> None:
        listeners.on_command(ack, body, request)

    def on_button(ack: Ack, body: dict[str, Any], action: dict[str, Any], request: BoltRequest) -> None:
        listeners.on_button(ack, body, action, request)

    for command in COMMANDS:
        app.command(command)(on_command)
    # approvals (issue #13): the request's buttons and the Deny modal (bot.approval_slack)
    from bot.approval_slack import ACTION_PREFIX as APPROVAL_PREFIX
    from bot.approval_slack import DENY_VIEW, ApprovalDesk

    listeners.desk = desk = ApprovalDesk(listeners=listeners, client=client)
    app.action(re.compile("^" + re.escape(APPROVAL_PREFIX)))(desk.on_click)
    app.view(DENY_VIEW)(desk.on_view)
    app.action(re.compile("^" + re.escape(ACTION_ID_PREFIX)))(on_button)
    app.action(re.compile("^" + re.escape(INCIDENT_ACTION)))(on_button)  # incidents (#12): same path, own branch
    return app
