"""Approvals in Slack (issue #13): the request's message, its Approve / Deny / Cancel buttons, the Deny modal.

A held request (:class:`bot.approvals.PendingApproval`) is posted in the channel with ``chat.postMessage`` (its
``ts`` is stored, so any replica can redraw it with ``chat.update`` later): who asked, the command as understood,
the host, the Engine requests as ``--dry-run`` shows them, the reason, when it expires, and the buttons. The
requester is told (only them) that it waits.

A click is acknowledged at once and handled on chatdock's worker pool like any other click (deduplicated across
replicas by the same claim). Approve and Cancel go straight to :class:`bot.approvals.Approvals`; Deny first
checks the clicker may deny, then opens a modal (``views.open`` with the click's ``trigger_id``) asking why; its
``view_submission`` ends the request. Every step redraws the message; the result of a run is posted in the
channel. Expiry is a periodic job under the replicas' maintenance lease (:func:`expire_approvals`).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack
from slack_sdk import WebClient

from bot.approval_store import Held
from bot.approvals import PendingApproval, Verdict
from bot.redact import redact_text
from bot.render_blocks import SlackMessage, escape, mention, render_message
from bot.respond import api_error

if TYPE_CHECKING:
    from bot.pipeline import Outcome, Pipeline
    from bot.slack_app import _Listeners

log = logging.getLogger(__name__)

ACTION_PREFIX = "approval:"  # not chatdock's container-button prefix: these carry an approval ID
DENY_VIEW = "approval:deny"
EXPIRY_INTERVAL = 5.0  # seconds between sweeps for expired requests (on the lease holder only)
ENGINE_CLIP = 2500

STATE_LINE = {
    "pending": ":hourglass_flowing_sand: *Waiting for approval*",
    "running": ":gear: *Approved*: running",
    "done": ":white_check_mark: *Approved and run*",
    "failed": ":x: *Approved; it ran and failed*",
    "refused": ":no_entry: *Approved, but not run*: what it touches changed",
    "denied": ":no_entry_sign: *Denied*",
    "cancelled": ":heavy_multiplication_x: *Cancelled* by the person who asked",
    "expired": ":alarm_clock: *Expired*: nobody approved it in time",
    "interrupted": ":warning: *Approved; interrupted*: the chatdock process running it stopped",
}


def _when(ts: float) -> str:
    fallback = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(ts)}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}


def _code(text: str) -> str:
    return "`" + escape(text.replace("`", "ˋ").replace("\n", " "))[:600] + "`"


def render_card(held: Held) -> SlackMessage:
    """The request's message in the channel, as it stands now."""
    on = f" on host *{escape(held.host_shown)}*" if held.host_shown else ""
    lead = f"{mention(held.actor.user)} asks to run {_code(held.shown_text)}{on}"
    blocks: list[dict[str, Any]] = [_section(f"{STATE_LINE.get(held.state, held.state)}\n{lead}")]
    if held.reason:
        blocks.append(_section(f"*Reason:* {escape(redact_text(held.reason))}"))
    if held.engine_request:
        shown = json.dumps(held.engine_request, indent=1)
        if len(shown) > ENGINE_CLIP:
            shown = shown[: ENGINE_CLIP - 1] + "…"
        blocks.append(_section("*Engine requests* (as `--dry-run` shows them):\n```" + escape(shown) + "```"))
    rule = held.approval_rule
    approvers = ", ".join(
        [f"role {escape(r)}" for r in rule.approvers.roles]
        + [f"<!subteam^{g}>" for g in rule.approvers.groups]
        + ["anyone" if u == "*" else mention(u) for u in rule.approvers.users]
    )
    needs = f"needs {held.needed} approval(s) from {approvers or 'nobody'}"
    if rule.allow_self:
        needs += " (the requester's own counts)"
    timing = f"expires {_when(held.expires_at)}" if held.state == "pending" else f"asked {_when(held.created_at)}"
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"{needs} · {timing} · approval {held.id} · rule approve[{held.rule_index}]"}
            ],
        }
    )
    votes = [
        f"{'approved' if v.vote == 'approve' else 'denied'} by {mention(v.user)} at {_when(v.at)}"
        + (f": {escape(redact_text(v.reason))}" if v.reason else "")
        for v in held.votes
    ]
    if votes:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(votes)[:2900]}]})
    if held.result:
        blocks.append(_section(f"*Result:* {escape(held.result)}"))
    if held.state == "pending":
        blocks.append(
            {
                "type": "actions",
                "block_id": f"approval-{held.id}",
                "elements": [
                    _button("Approve", "approve", held.id, style="primary"),
                    _button("Deny", "deny", held.id, style="danger"),
                    _button("Cancel", "cancel", held.id),
                ],
            }
        )
    text = f"Approval {held.id} ({held.state}): {held.shown_text}"[:2900]
    return SlackMessage(text=text, blocks=blocks, response_type="in_channel")


def _button(label: str, action: str, approval_id: str, *, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}{action}",
        "text": {"type": "plain_text", "text": label},
        "value": approval_id,
    }
    if style:
        button["style"] = style
    return button


def deny_view(held: Held, channel: str) -> dict[str, Any]:
    """The modal asking why the request is denied."""
    return {
        "type": "modal",
        "callback_id": DENY_VIEW,
        "private_metadata": json.dumps({"id": held.id, "channel": channel}),
        "title": {"type": "plain_text", "text": "Deny the request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Back"},
        "blocks": [
            _section(f"Deny {_code(held.shown_text)} asked by {mention(held.actor.user)}? It will not run."),
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why"},
                "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True, "max_length": 300},
            },
        ],
    }


def _notice(text: str) -> SlackMessage:
    return SlackMessage(text=text, blocks=[_section(escape(text))], response_type="ephemeral")


class ApprovalDesk:
    """The Slack side of approvals, on the listeners' pools, replay guard and deliverer."""

    def __init__(self, *, listeners: _Listeners, client: WebClient) -> None:
        self.listeners = listeners
        self.client = client

    @property
    def pipeline(self) -> Pipeline:
        return self.listeners.pipeline

    # -- the hook in the command and click workers -------------------------------------------------------
    def pending_message(self, outcome: Outcome) -> SlackMessage | None:
        """For a held request: post its message in the channel and return the note for the requester; None
        for any other outcome."""
        pending = outcome.result
        approvals = self.pipeline.approvals
        if not isinstance(pending, PendingApproval) or approvals is None:
            return None
        held = approvals.store.get(pending.approval_id)
        if held is None:
            return None
        card = render_card(held)
        try:
            answer = self.client.chat_postMessage(channel=held.actor.channel, text=card.text, blocks=card.blocks)
            approvals.store.set_message(held.id, str(answer.get("channel") or held.actor.channel), str(answer["ts"]))
        except Exception as exc:
            log.error("approval %s: could not post it (%s); cancelling it", held.id, api_error(exc))
            approvals.store.transition(held.id, to="cancelled", by="chatdock", reason="not posted", unexpired=False)
            return _notice(
                f"Your request needs approval, but chatdock could not post it in this channel ({api_error(exc)}); "
                "nothing was done."
            )
        return _notice(
            f"Your request waits for approval ({pending.needed} needed from {pending.approvers}; approval "
            f"{held.id}, expires in {round((held.expires_at - time.time()) / 60)} min). It is posted in the "
            "channel; you can cancel it there."
        )

    # -- listeners -----------------------------------------------------------------------------------------
    def on_click(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        from bot.slack_app import click_key, click_user_team

        received = time.monotonic()
        user = body.get("user") or {}
        container = body.get("container") or {}
        actor = self.listeners._actor(
            user=str(user.get("id", "")),
            channel=str((body.get("channel") or {}).get("id") or container.get("channel_id") or ""),
            team=str((body.get("team") or {}).get("id") or user.get("team_id") or ""),
            name=str(user.get("username") or user.get("name") or ""),
            own=click_user_team(body),
        )
        if not self.listeners.replays.first_time(click_key(body, action)):
            ack()
            return
        ack()
        self.listeners._submit(
            self._click,
            actor=actor,
            verb=str(action.get("action_id", "")).removeprefix(ACTION_PREFIX),
            approval_id=str(action.get("value", ""))[:40],
            response_url=body.get("response_url") or None,
            trigger_id=str(body.get("trigger_id") or ""),
            received=received,
        )

    def on_view(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        from bot.slack_app import click_user_team

        received = time.monotonic()
        values = ((view.get("state") or {}).get("values") or {}).get("reason") or {}
        reason = str((values.get("reason") or {}).get("value") or "").strip()
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why it is denied."})
            return
        ack()
        try:
            meta = json.loads(str(view.get("private_metadata") or "{}"))
        except ValueError:
            meta = {}
        user = body.get("user") or {}
        actor = self.listeners._actor(
            user=str(user.get("id", "")),
            channel=str(meta.get("channel") or ""),
            team=str((body.get("team") or {}).get("id") or user.get("team_id") or ""),
            name=str(user.get("username") or user.get("name") or ""),
            own=click_user_team(body),
        )
        self.listeners._submit(
            self._deny, actor=actor, approval_id=str(meta.get("id") or "")[:40], reason=reason[:300], received=received
        )

    # -- work ----------------------------------------------------------------------------------------------
    def _click(
        self,
        *,
        actor: Any,
        verb: str,
        approval_id: str,
        response_url: str | None,
        trigger_id: str,
        received: float,
    ) -> None:
        approvals = self.pipeline.approvals
        if approvals is None:
            self._tell(actor, "This chatdock keeps no approvals; nothing was done.", response_url)
            return
        verdict: Verdict | None
        if verb == "approve":
            groups = self.listeners.groups
            verdict = approvals.approve(
                self.pipeline, approval_id, actor, groups_of=groups.groups_of if groups is not None else None
            )
        elif verb == "cancel":
            verdict = approvals.cancel(self.pipeline, approval_id, actor)
        elif verb == "deny":
            verdict = self._open_deny(actor, approval_id, trigger_id)
            if verdict is None:
                return
        else:
            verdict = Verdict(ok=False, message="This button is not valid; nothing was done.")
        self._settle(actor, verdict, response_url)

    def _open_deny(self, actor: Any, approval_id: str, trigger_id: str) -> Verdict | None:
        approvals = self.pipeline.approvals
        assert approvals is not None
        held = approvals.store.get(approval_id)
        ended = approvals.closed(held, approval_id)
        if ended is not None or held is None:
            return ended
        why = approvals.may_vote(self.pipeline, held, actor)
        if why:
            approvals.audit(self.pipeline, actor, held, "deny", ok=False, message=f"denial refused: {why}")
            return Verdict(ok=False, message=f"You cannot deny it: {why}.", held=held)
        try:
            self.client.views_open(trigger_id=trigger_id, view=deny_view(held, actor.channel))
        except Exception as exc:
            return Verdict(ok=False, message=f"Could not open the form to deny it ({api_error(exc)}); try again.")
        return None

    def _deny(self, *, actor: Any, approval_id: str, reason: str, received: float) -> None:
        approvals = self.pipeline.approvals
        if approvals is None:
            return
        self._settle(actor, approvals.deny(self.pipeline, approval_id, actor, reason), None)

    def _settle(self, actor: Any, verdict: Verdict, response_url: str | None) -> None:
        """Tell the clicker, redraw the message, and post the result of a run."""
        if verdict.held is not None and verdict.changed:
            self.redraw(verdict.held)
        outcome = verdict.outcome
        if outcome is not None and verdict.held is not None:
            message = render_message(outcome)
            channel = verdict.held.message_channel or verdict.held.actor.channel
            status = self.listeners.deliverer.deliver(message, None, channel, user=verdict.held.actor.user)
            self.pipeline.record_delivery(outcome.request_id, status)
        self._tell(actor, verdict.message, response_url)

    def _tell(self, actor: Any, text: str, response_url: str | None) -> None:
        self.listeners.deliverer.deliver(_notice(text), response_url, actor.channel, user=actor.user)

    def redraw(self, held: Held) -> None:
        redraw(self.client, held)


def redraw(client: WebClient, held: Held) -> None:
    if not held.message_ts:
        return
    card = render_card(held)
    try:
        client.chat_update(channel=held.message_channel, ts=held.message_ts, text=card.text, blocks=card.blocks)
    except Exception as exc:
        log.warning("approval %s: could not update its message (%s)", held.id, api_error(exc))


def expire_approvals(*, pipeline: Pipeline, client: WebClient) -> None:
    """End the requests past their expiry and mark their messages expired (on one replica: the lease's)."""
    approvals = pipeline.approvals
    if approvals is None:
        return
    for held in approvals.expire_due(pipeline):
        redraw(client, held)
