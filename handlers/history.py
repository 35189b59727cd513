"""``history``: the current channel's recent requests, newest first, from the audit log.

The handler reads through ``ctx.history`` (the audit store's ``recent``, handed to the pipeline by the wiring),
so it never opens the log itself. Entries are scoped to the channel the request comes from; the request asking
is not listed. Times are UTC.
"""

from __future__ import annotations

import re
from typing import Any

from bot.commands import Command, Context
from bot.errors import ChatdockError, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed
from bot.models import HistoryView, Request, TextOutput

USAGE = "history [N] [--user @USER] [--failed] [--context HOST] [--incidents]"
DEFAULT_ENTRIES = 20
MAX_ENTRIES = 200
COMMAND_WIDTH = 60
SUMMARY_WIDTH = 80
_USER = re.compile(r"^@?([A-Za-z0-9][A-Za-z0-9._-]*)$")

GRAMMAR = Grammar(
    usage=USAGE,
    flags=(
        Flag(("--user", "-u"), "user", Kind.VALUE, "@USER", "only this user's requests (a mention or a user ID)"),
        Flag(("--failed",), "failed", help="only requests that did not succeed (errors, denials, usage, interrupted)"),
        Flag(("--context", "-c"), "context", Kind.VALUE, "HOST", "only requests to this host (several hosts)"),
        Flag(("--incidents",), "incidents", help="the incidents reported from the hosts' events instead (notify)"),
    ),
)


class HistoryRequest(Request):
    command = "history"
    limit: int = DEFAULT_ENTRIES
    user: str | None = None
    failed: bool = False
    context: str | None = None
    incidents: bool = False


def build_history(parsed: Parsed) -> HistoryRequest:
    if len(parsed.positionals) > 1:
        raise UsageError(f'"history" accepts at most 1 argument (got {" ".join(parsed.positionals)})', usage=USAGE)
    limit = DEFAULT_ENTRIES
    if parsed.positionals:
        text = parsed.positionals[0]
        if not text.isdigit() or int(text) < 1:
            raise UsageError(
                f'invalid number of entries "{text}": expected a number from 1 to {MAX_ENTRIES}', usage=USAGE
            )
        limit = int(text)
        if limit > MAX_ENTRIES:
            raise UsageError(f"history shows at most {MAX_ENTRIES} entries (asked for {limit})", usage=USAGE)
    user = None
    raw_user = parsed.value("user")
    if raw_user is not None:
        match = _USER.match(raw_user.strip())
        if not match:
            raise UsageError(f'invalid user "{raw_user}": expected a mention like @U123ABC or a user ID', usage=USAGE)
        user = match.group(1)
    incidents = parsed.flag("incidents")
    if incidents and (user is not None or parsed.flag("failed")):
        raise UsageError("--incidents lists incidents, not requests: --user and --failed do not apply", usage=USAGE)
    return HistoryRequest(
        limit=limit, user=user, failed=parsed.flag("failed"), context=parsed.value("context"), incidents=incidents
    )


def _short(text: str, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(iso_time: str | None) -> str:
    """``2026-11-28T13:05:07.123Z`` → ``2026-11-28 13:05``."""
    return (iso_time or "")[:16].replace("T", " ")


def entry_view(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "when": _when(record.get("time")),
        "who": record.get("user", ""),
        "command": _short(record.get("text") or record.get("command") or "", COMMAND_WIDTH),
        "outcome": record.get("outcome", ""),
        "summary": _short(record.get("message", ""), SUMMARY_WIDTH),
    }


def run_history(ctx: Context, request: HistoryRequest) -> HistoryView | TextOutput:
    """The last N entries of this channel (ctx.actor.channel), newest first; or the last N incidents."""
    if request.incidents:
        from handlers.notify import incident_history

        return incident_history(ctx, limit=request.limit, host=request.context)
    if ctx.history is None:
        raise ChatdockError("history is unavailable: this chatdock has no audit log configured")
    filters: dict[str, Any] = {"user": request.user, "failed": request.failed}
    if request.context is not None:
        if ctx.hosts is not None and request.context not in ctx.hosts.hosts:
            raise UsageError(
                f'context "{request.context}" does not exist: the hosts are {", ".join(ctx.hosts.names())}'
            )
        filters["host"] = request.context
    records = ctx.history(channel=ctx.actor.channel, limit=request.limit, **filters)
    return HistoryView(entries=tuple(entry_view(record) for record in records[: request.limit]))


COMMANDS = (
    Command(
        "history",
        GRAMMAR,
        "this channel's recent requests, newest first",
        build_history,
        run_history,
        examples=(
            "history",
            "history 50",
            "history --user @U123ABC",
            "history --failed",
            "history --context prod",
            "history --incidents",
        ),
    ),
)
