"""What incident messages say and which buttons they carry (Block Kit as plain dicts)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.render_blocks import escape

if TYPE_CHECKING:
    from bot.event_watch import Signal
    from bot.incident_store import IncidentRow
    from bot.notify_routes import Route

INCIDENT_ACTION = "chatdock-incident:"  # action_id prefix of the incident buttons (bot.incident_buttons)
MUTE_CHOICES = {"1h": "for 1 hour", "8h": "for 8 hours", "0900": "until 09:00", "1w": "for 1 week"}
BURST_LINES = 30
LOG_LINES_SHOWN = 50

_TITLE = {
    "crashed": ":red_circle: crashed",
    "oom": ":boom: killed for memory (OOM)",
    "unhealthy": ":large_orange_circle: unhealthy",
    "restart_loop": ":repeat: restart loop",
    "host": ":satellite_antenna: host unreachable",
}


def when(ts: float | None, zone: str = "UTC") -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def title(row: IncidentRow) -> str:
    if row.kind == "host":
        return f"host {row.host} " + ("is back" if row.resolved_at else "is unreachable")
    return f"{row.container} on {row.host}: {_TITLE.get(row.kind, row.kind).split(' ', 1)[1]}"


def summary_line(row: IncidentRow, zone: str = "UTC") -> str:
    if row.kind == "host":
        state = f"back {when(row.resolved_at, zone)}" if row.resolved_at else "unreachable"
        emoji = ":white_check_mark:" if row.resolved_at else ":satellite_antenna:"
        return f"{emoji} host *{escape(row.host)}* {state} (since {when(row.first_seen, zone)})"
    emoji = ":white_check_mark:" if row.resolved_at else _TITLE.get(row.kind, "").split(" ", 1)[0]
    codes = f" exit {', '.join(str(c) for c in row.exit_codes[-5:])}" if row.exit_codes else ""
    times = f" ×{row.count}" if row.count > 1 else ""
    state = f", resolved {when(row.resolved_at, zone)}" if row.resolved_at else ""
    return (
        f"{emoji} `{escape(row.container)}` ({row.host}) {row.kind.replace('_', ' ')}{codes}{times}{state}"
        f" · id `{row.id[:12]}`"
    )


def incident_payload(row: IncidentRow, *, zone: str = "UTC") -> dict[str, Any]:
    """One incident: what, where, how often, resolved or not, and the buttons to act on it."""
    head = _TITLE.get(row.kind, row.kind)
    if row.kind == "host":
        head = ":white_check_mark: host back" if row.resolved_at else head
        text = f"{head}: *{escape(row.host)}*"
    else:
        text = f"{head}: `{escape(row.container)}` on *{escape(row.host)}*"
    facts = [f"first seen {when(row.first_seen, zone)}"]
    if row.count > 1:
        facts.append(f"{row.count} times, last {when(row.last_seen, zone)}")
    if row.exit_codes:
        facts.append("exit " + ", ".join(str(c) for c in row.exit_codes[-10:]))
    if row.image:
        facts.append(f"image {escape(row.image)}")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(facts)[:2900]}]},
    ]
    if row.detail:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{escape(row.detail)[:2800]}```"}})
    if row.resolved_at:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f":white_check_mark: resolved {when(row.resolved_at, zone)}"}],
            }
        )
    if row.kind != "host":
        blocks.append(actions(row))
    fallback = f"{title(row)}" + (" (resolved)" if row.resolved_at else "")
    return {"text": fallback[:3000], "blocks": blocks}


def actions(row: IncidentRow) -> dict[str, Any]:
    def button(verb: str, label: str, style: str | None = None) -> dict[str, Any]:
        element: dict[str, Any] = {
            "type": "button",
            "text": {"type": "plain_text", "text": label},
            "action_id": f"{INCIDENT_ACTION}{verb}",
            "value": row.id,
        }
        if style:
            element["style"] = style
        return element

    mute = {
        "type": "static_select",
        "action_id": f"{INCIDENT_ACTION}mute",
        "placeholder": {"type": "plain_text", "text": "Mute"},
        "options": [
            {"text": {"type": "plain_text", "text": f"Mute {label}"}, "value": f"{key}:{row.id}"}
            for key, label in MUTE_CHOICES.items()
        ],
    }
    return {
        "type": "actions",
        "block_id": f"incident:{row.id}",
        "elements": [button("logs", "Logs"), button("restart", "Restart"), button("stop", "Stop", "danger"), mute],
    }


BURST_ACTIONS = "Act on one with `incident logs ID`, `restart NAME`, `stop NAME`, `mute NAME KIND --for 8h`."


def burst_payload(rows: list[IncidentRow], *, title: str = "") -> dict[str, Any]:
    """Several incidents in one message: the counts by kind, then one line each (the first 30)."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.kind] = counts.get(row.kind, 0) + row.count
    resolved = sum(1 for r in rows if r.resolved_at)
    hosts = sorted({r.host for r in rows})
    head = title or f":rotating_light: {len(rows)} incidents on {', '.join(hosts)}"
    tally = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()))
    lines = [summary_line(r) for r in rows[:BURST_LINES]]
    if len(rows) > BURST_LINES:
        lines.append(f"… and {len(rows) - BURST_LINES} more (`history --incidents`)")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head[:2900]}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"{tally}; {resolved} resolved. {BURST_ACTIONS}"[:2900]}],
        },
    ]
    chunk: list[str] = []
    for line in lines:
        if sum(len(c) + 1 for c in chunk) + len(line) > 2800:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}})
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}})
    return {"text": f"{head} ({tally})"[:3000], "blocks": blocks}


def digest_title(count: int, route: Route) -> str:
    quiet = route.quiet
    span = f"{quiet.start}–{quiet.end} {quiet.tz}" if quiet else ""
    return f":crescent_moon: {count} incident(s) held during quiet hours {span}"


def notice_blocks(text: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]


def restart_detail(signal: Signal, route: Route) -> str:
    count = f"RestartCount {signal.restart_count}; " if signal.restart_count is not None else ""
    return f"{count}{len(signal.restarts)} automatic restarts seen (a loop: {route.restarts} within {route.window})"


def host_back_detail(row: IncidentRow, signal: Signal) -> str:
    try:
        down = float(signal.detail)
    except ValueError:
        return row.detail
    return (
        f"{row.detail}\nback at {when(signal.at)}. Events from {when(down)} to {when(signal.at)} may be missing "
        "if the engine restarted; containers that exited non-zero in that span are reported below."
    )


def gap_text(host: str, start: float, end: float) -> str:
    return (
        f":warning: host *{escape(host)}*: events from {when(start)} to {when(end)} could not be read; "
        "incidents in that span may be missing (containers that exited non-zero are reported)."
    )
