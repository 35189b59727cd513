"""``approvals``: the requests waiting for approval that the caller made or may approve (issue #13).

It reads the shared store through ``ctx.approvals`` (the pipeline's :class:`bot.approvals.Approvals`), so
every replica lists the same requests. Approving and denying are buttons on the request's Slack message;
the shell only lists (nobody can approve there: see :mod:`bot.approvals`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from bot import humanize
from bot.approvals import Approvals
from bot.commands import Command, Context
from bot.errors import UsageError
from bot.flags import Grammar, Parsed
from bot.models import Request, TextOutput

USAGE = "approvals"
HEADERS = ("ID", "REQUESTED BY", "COMMAND", "HOST", "APPROVALS", "EXPIRES", "REASON")


class ApprovalsRequest(Request):
    command = "approvals"


def build(parsed: Parsed) -> ApprovalsRequest:
    if parsed.positionals:
        raise UsageError(f'"approvals" accepts no arguments (got {" ".join(parsed.positionals)})', usage=USAGE)
    return ApprovalsRequest()


def run(ctx: Context, _request: ApprovalsRequest) -> TextOutput:
    desk = ctx.approvals
    if not isinstance(desk, Approvals):
        return TextOutput(title="pending approvals", text="", note="this chatdock keeps no approvals (no store)")
    now = time.time()
    rows = [
        (
            held.id,
            held.actor.name or held.actor.user,
            held.shown_text,
            held.host_shown or "",
            f"{len(held.approved_by)}/{held.needed}",
            f"in {humanize.human_duration(max(0.0, held.expires_at - now))} "
            f"({datetime.fromtimestamp(held.expires_at, UTC).strftime('%H:%M:%S')} UTC)",
            held.reason,
        )
        for held in desk.visible_to(ctx.policy, ctx.actor)
    ]
    if not rows:
        return TextOutput(title="pending approvals", text="no request is waiting for you or from you")
    widths = [max(len(str(row[i])) for row in (HEADERS, *rows)) for i in range(len(HEADERS))]
    lines = ["   ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in (HEADERS, *rows)]
    return TextOutput(title=f"{len(rows)} pending approval(s)", text="\n".join(lines))


COMMANDS = (
    Command(
        "approvals",
        Grammar(usage=USAGE),
        "requests waiting for approval that you made or may approve",
        build,
        run,
        examples=("approvals",),
    ),
)
