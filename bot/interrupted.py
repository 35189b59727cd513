"""Replies owed by a replica that died: another one answers them, saying what is known.

A request acknowledged by a replica that is then killed (SIGKILL, OOM, a lost host) would otherwise never be
answered. Each replica notes in the shared store the replies it owes (:meth:`bot.audit.AuditStore.owe_reply`);
the replica holding the maintenance lease (:class:`bot.periodic.Leader`) runs :func:`answer_orphans` every few
seconds: it forgets dead instances (:meth:`~bot.audit.AuditStore.mark_interrupted`) and takes each reply they
still owed (each is taken once, by one replica). It re-reads the state of the containers the request named and
posts "interrupted: ..." through the request's stored response_url; when the dead replica had begun posting its
own reply, the note says that reply may be just above (a note that may repeat is better than a reply lost).
The response_url is a bearer capability: it is stored only in the shared store's replies table (deleted 35
minutes after Slack issued it), never logged, shown or exported (``audit export`` reads only the audit rows).
"""

from __future__ import annotations

import logging
from typing import Any

from bot.audit import AuditStore
from bot.errors import ChatdockError
from bot.pipeline import Pipeline
from bot.render_blocks import SlackMessage
from bot.respond import DeliveryFailed, ResponseUrlClient
from bot.wording import interrupted_reply

log = logging.getLogger(__name__)


def known_state(pipeline: Pipeline, text: str) -> list[str]:
    """What the engine says now about the containers ``text`` named (re-parsed, never run)."""
    try:
        request = pipeline.understand(text).request
    except Exception:
        return []
    refs = list(request.container_refs())
    name = getattr(request, "name", None)
    if isinstance(name, str) and name and name not in refs:
        refs.append(name)
    lines = []
    for ref in refs[:10]:
        try:
            data = pipeline.engine.inspect_container(ref)
        except ChatdockError as exc:
            lines.append(f"{ref}: {exc.message}")
            continue
        state = data.get("State") or {}
        status = str(state.get("Status") or "unknown")
        shown = str(data.get("Name") or ref).lstrip("/")
        exit_code = f" (exit code {state.get('ExitCode')})" if status == "exited" else ""
        lines.append(f"container {shown} `{str(data.get('Id', ''))[:12]}` is {status}{exit_code}")
    return lines


def describe(pipeline: Pipeline, owed: dict[str, Any]) -> list[str]:
    """The audit row's outcome when the request got that far, then the containers' state."""
    lines = []
    outcome = owed.get("outcome")
    if outcome and outcome != "interrupted":
        lines.append(f"the request finished ({outcome}: {owed.get('message') or 'no details'}) before its reply")
    elif outcome == "interrupted":
        lines.append("it had started: the audit log marks it interrupted")
    else:
        lines.append("it had not started: nothing was done (no audit entry); send it again if it is still wanted")
    return lines + known_state(pipeline, str(owed.get("text") or ""))


def answer_orphans(*, store: AuditStore, pipeline: Pipeline, response_urls: ResponseUrlClient) -> int:
    """Answer every reply owed by a dead replica; return how many were sent."""
    store.mark_interrupted()
    sent = 0
    for owed in store.orphaned_replies():
        request_id = str(owed["request_id"])
        # posts > 0: the dead replica had begun posting to this response_url (posts are counted in the store
        # before they are sent), and was killed before it could note the reply as delivered: it went out, or
        # was cut in the very moment of the kill. Nobody can tell which, so the person is told, saying so: a
        # note that may repeat a reply is better than a reply that may be lost.
        was_posting = bool(owed["posts"])
        text = interrupted_reply(
            f"<@{owed['user']}>",
            str(owed["text"] or "?"),
            request_id,
            describe(pipeline, owed),
            was_posting=was_posting,
        )
        message = SlackMessage(
            text=text,
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            response_type="in_channel",
        )
        try:
            response_urls.post(
                str(owed["response_url"]),
                {
                    "response_type": message.response_type,
                    "replace_original": False,
                    "text": text,
                    "blocks": message.blocks,
                },
            )
            status = "response_url (interrupted; sent by another replica)"
            sent += 1
        except DeliveryFailed as exc:
            status = f"failed: interrupted reply not delivered ({exc.reason})"
            log.warning("request %s: the interrupted reply could not be delivered (%s)", request_id, exc.reason)
        store.record_delivery(request_id, status, mine=False)
        store.reply_settled(request_id)
    if sent:
        log.warning("answered %d request(s) a stopped chatdock replica had acknowledged", sent)
    return sent
