"""Incident commands: ``notify ls``, ``notify test [ROUTE]``, ``mute``, ``mute ls``, ``unmute``, ``incident logs``.

Routes come from the policy's ``notify:`` list (:mod:`bot.notify_routes`); incidents and mutes live in the audit
store (:mod:`bot.incident_store`). The store is reached through the audit log the pipeline already reads for
``history`` (``ctx.history`` is that store's bound ``recent``), so these commands need no wiring of their own.
``notify test`` posts through ``chatdock serve``'s running notifier (:func:`bot.event_service.current`).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from zoneinfo import ZoneInfo

from bot import notify_text
from bot.audit import AuditStore
from bot.commands import Command, Context
from bot.errors import ChatdockError, UsageError
from bot.event_service import current
from bot.flags import Flag, Grammar, Kind, Parsed
from bot.incident_store import IncidentStore
from bot.models import Request, TextOutput
from bot.notify_routes import KINDS, Route, parse_duration
from bot.policy import HostRef, may_run

NOTIFY_LS_USAGE = "notify ls"
NOTIFY_TEST_USAGE = "notify test [ROUTE]   (ROUTE: its number in `notify ls`, or its channel ID)"
MUTE_USAGE = "mute CONTAINER [KIND] [--for DURATION | --until HH:MM]"
MUTE_LS_USAGE = "mute ls"
UNMUTE_USAGE = "unmute CONTAINER|MUTE_ID"
INCIDENT_LOGS_USAGE = "incident logs INCIDENT_ID"
_ID = re.compile(r"^[0-9a-f]{12,32}$")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")


def incidents_of(ctx: Context) -> IncidentStore:
    """The incident tables of this chatdock's audit store (``serve``'s own when it runs here)."""
    service = current()
    if service is not None:
        return service.incidents
    owner = getattr(ctx.history, "__self__", None)
    if isinstance(owner, AuditStore) and not owner.readonly:
        return IncidentStore(owner)
    raise ChatdockError("incidents are unavailable: this chatdock has no audit log configured (CHATDOCK_DB)")


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


# -- notify ls / notify test -------------------------------------------------------------------------------
class NotifyLsRequest(Request):
    command = "notify ls"


class NotifyTestRequest(Request):
    command = "notify test"
    route: str | None = None


def build_notify_ls(parsed: Parsed) -> NotifyLsRequest:
    if parsed.positionals:
        raise UsageError(f'"notify ls" takes no arguments (got {" ".join(parsed.positionals)})', usage=NOTIFY_LS_USAGE)
    return NotifyLsRequest()


def build_notify_test(parsed: Parsed) -> NotifyTestRequest:
    if len(parsed.positionals) > 1:
        raise UsageError('"notify test" takes at most one route', usage=NOTIFY_TEST_USAGE)
    return NotifyTestRequest(route=parsed.positionals[0] if parsed.positionals else None)


def run_notify_ls(ctx: Context, _request: NotifyLsRequest) -> TextOutput:
    """The policy's routes, numbered, and what each catches; whether this process watches events now."""
    routes = ctx.policy.notify
    if not routes:
        return TextOutput(
            title="notify ls", text="no notify: routes in the policy: container events are not reported", note=""
        )
    lines = [f"{i}. {route.channel}: {route.describe()}" for i, route in enumerate(routes, 1)]
    service = current()
    watched = sorted(service.watchers) if service is not None else []
    note = f"watching events of: {', '.join(watched)}" if watched else "this process is not watching events now"
    return TextOutput(title="notify ls", text="\n".join(lines), note=note)


def _route(routes: tuple[Route, ...], which: str | None) -> Route:
    if not routes:
        raise UsageError("the policy has no notify: routes", usage=NOTIFY_TEST_USAGE)
    if which is None:
        return routes[0]
    if which.isdigit() and 1 <= int(which) <= len(routes):
        return routes[int(which) - 1]
    for route in routes:
        if route.channel == which:
            return route
    raise UsageError(
        f'no route "{which}": give its number (1-{len(routes)}) or its channel ID', usage=NOTIFY_TEST_USAGE
    )


def run_notify_test(ctx: Context, request: NotifyTestRequest) -> TextOutput:
    """Post a sample incident to the route's channel, as a real one would look (without buttons)."""
    route = _route(ctx.policy.notify, request.route)
    service = current()
    if service is None:
        raise ChatdockError("notify test posts through `chatdock serve`'s Slack connection: run it from Slack")
    service.notifier.sample(route, by=ctx.actor.user)
    return TextOutput(title="notify test", text=f"posted a sample incident to {route.channel}", monospace=False)


# -- mute / mute ls / unmute --------------------------------------------------------------------------------
class MuteRequest(Request):
    command = "mute"
    container: str
    kind: str = "*"
    seconds: float | None = None
    until: str | None = None
    context: str | None = None


class MuteLsRequest(Request):
    command = "mute ls"


class UnmuteRequest(Request):
    command = "unmute"
    target: str


MUTE_GRAMMAR = Grammar(
    usage=MUTE_USAGE,
    flags=(
        Flag(("--for",), "for", Kind.VALUE, "DURATION", "how long (default 1h): 1h, 8h, 1w, 30m, ..."),
        Flag(("--until",), "until", Kind.VALUE, "HH:MM", "until this time of day, in the route's zone"),
    ),
)


def build_mute(parsed: Parsed) -> MuteRequest:
    args = parsed.positionals
    if not args or len(args) > 2:
        raise UsageError('"mute" needs a container name and optionally an incident kind', usage=MUTE_USAGE)
    if not _NAME.match(args[0]):
        raise UsageError(f'"{args[0]}" is not a container name', usage=MUTE_USAGE)
    kind = args[1] if len(args) == 2 else "*"
    if kind != "*" and kind not in KINDS:
        raise UsageError(f'unknown incident kind "{kind}" (known: {", ".join(KINDS)})', usage=MUTE_USAGE)
    for_text, until = parsed.value("for"), parsed.value("until")
    if for_text is not None and until is not None:
        raise UsageError("give --for or --until, not both", usage=MUTE_USAGE)
    seconds = None
    if for_text is not None:
        try:
            seconds = parse_duration(for_text)
        except ValueError as exc:
            raise UsageError(f"--for: {exc}", usage=MUTE_USAGE) from None
    if until is not None and not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", until):
        raise UsageError(f'--until "{until}": expected a time of day such as 09:00', usage=MUTE_USAGE)
    return MuteRequest(container=args[0], kind=kind, seconds=seconds, until=until)


def build_mute_ls(parsed: Parsed) -> MuteLsRequest:
    if parsed.positionals:
        raise UsageError('"mute ls" takes no arguments', usage=MUTE_LS_USAGE)
    return MuteLsRequest()


def build_unmute(parsed: Parsed) -> UnmuteRequest:
    if len(parsed.positionals) != 1:
        raise UsageError('"unmute" needs one container name or mute ID', usage=UNMUTE_USAGE)
    return UnmuteRequest(target=parsed.positionals[0])


def mute_end(*, now: float, seconds: float | None, until: str | None, zone: str) -> float:
    """When a mute ends: ``seconds`` from now, or the next ``until`` (HH:MM) in ``zone``; one hour by default."""
    if until is None:
        return now + (seconds or 3600.0)
    hour, minute = (int(p) for p in until.split(":"))
    local = dt.datetime.fromtimestamp(now, ZoneInfo(zone))
    end = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if end <= local:
        end += dt.timedelta(days=1)
    return end.timestamp()


def route_zone(routes: tuple[Route, ...], host: str) -> str:
    for route in routes:
        if route.quiet is not None and route.wants("crashed", host):
            return route.quiet.tz
    return "UTC"


def run_mute(ctx: Context, request: MuteRequest) -> TextOutput:
    """Stop reporting ``kind`` incidents of a container on this host until the mute ends (they are still
    recorded, as ``muted``)."""
    end = mute_end(
        now=time.time(), seconds=request.seconds, until=request.until, zone=route_zone(ctx.policy.notify, ctx.host)
    )
    mute = incidents_of(ctx).mute(
        host=ctx.host, container=request.container, kind=request.kind, until=end, by=ctx.actor.user
    )
    what = "every incident" if request.kind == "*" else f"{request.kind} incidents"
    return TextOutput(
        title="mute",
        text=f"muted {what} of {request.container} on {ctx.host} until {_utc(end)} (mute {mute.id})",
        monospace=False,
    )


def run_mute_ls(ctx: Context, _request: MuteLsRequest) -> TextOutput:
    mutes = incidents_of(ctx).mutes()
    if not mutes:
        return TextOutput(title="mute ls", text="nothing is muted")
    header = f"{'MUTE ID':<14}{'HOST':<12}{'CONTAINER':<32}{'KIND':<14}{'UNTIL':<22}BY"
    rows = [f"{m.id:<14}{m.host[:11]:<12}{m.container[:31]:<32}{m.kind:<14}{_utc(m.until):<22}{m.by}" for m in mutes]
    return TextOutput(title="mute ls", text="\n".join([header, *rows]))


def run_unmute(ctx: Context, request: UnmuteRequest) -> TextOutput:
    store = incidents_of(ctx)
    target = request.target
    ended = store.unmute(mute_id=target) if _ID.match(target) else 0
    if not ended:
        ended = store.unmute(container=target)
    if not ended:
        raise UsageError(f'nothing is muted for "{target}" (see `mute ls`)', usage=UNMUTE_USAGE)
    return TextOutput(title="unmute", text=f"ended {ended} mute(s) for {target}", monospace=False)


# -- incident logs ------------------------------------------------------------------------------------------
LOGS_FRESH = 15.0  # seconds after a death its logs may still be being read (see bot.event_watch)
LOGS_WAIT = 5.0  # seconds a Logs click waits for them then


class IncidentLogsRequest(Request):
    command = "incident logs"
    incident: str


def build_incident_logs(parsed: Parsed) -> IncidentLogsRequest:
    if len(parsed.positionals) != 1 or not _ID.match(parsed.positionals[0]):
        raise UsageError(
            '"incident logs" needs the incident ID (from its message, or the first 12 characters '
            "`history --incidents` shows)",
            usage=INCIDENT_LOGS_USAGE,
        )
    return IncidentLogsRequest(incident=parsed.positionals[0])


def run_incident_logs(ctx: Context, request: IncidentLogsRequest) -> TextOutput:
    """The last 50 log lines captured when the container died (it may be gone since). Whoever may not run
    ``logs`` may not read them either."""
    store = incidents_of(ctx)
    row = store.find(request.incident)
    if row is None:
        raise UsageError(f'no incident "{request.incident}" (or more than one starts so)', usage=INCIDENT_LOGS_USAGE)
    deadline = time.monotonic() + LOGS_WAIT
    fresh = row.kind in ("crashed", "oom") and time.time() - row.last_seen < LOGS_FRESH
    while fresh and not row.logs and time.monotonic() < deadline:
        time.sleep(0.1)  # clicked the moment it was posted: its logs are read right after the post
        row = store.get(row.id) or row
    hosts = ctx.hosts
    host = None
    if hosts is not None and hosts.configured and row.host in hosts.hosts:
        host = HostRef(name=row.host, labels=hosts.hosts[row.host].labels, shown=True)
    allowed = may_run(ctx.policy, ctx.actor, "logs", host)  # on the incident's host, as `logs` there would be
    if not allowed.allowed:
        raise ChatdockError(f"denied: {allowed.reason}")
    text = row.logs.strip() or "(no output was captured)"
    lines = text.splitlines()[-notify_text.LOG_LINES_SHOWN :]
    return TextOutput(
        title=f"logs {row.container} (captured {_utc(row.last_seen)}, {row.kind} on {row.host})",
        text="\n".join(lines),
        total_lines=len(lines),
        shown_lines=len(lines),
    )


def incident_history(ctx: Context, *, limit: int, host: str | None) -> TextOutput:
    """``history --incidents``: the newest incidents (every channel's; they are about hosts, not channels)."""
    rows = incidents_of(ctx).recent(limit=limit, host=host)
    if not rows:
        return TextOutput(title="history --incidents", text="no incidents recorded")
    header = f"{'INCIDENT ID':<14}{'LAST SEEN':<22}{'HOST':<12}{'CONTAINER':<32}{'KIND':<14}{'COUNT':<7}STATUS"
    lines = [
        f"{r.id[:12]:<14}{_utc(r.last_seen):<22}{r.host[:11]:<12}{r.container[:31]:<32}{r.kind:<14}{r.count:<7}"
        f"{r.status}"
        for r in rows
    ]
    return TextOutput(title="history --incidents", text="\n".join([header, *lines]))


COMMANDS = (
    Command(
        "notify ls",
        Grammar(usage=NOTIFY_LS_USAGE),
        "the notify routes: which incidents go to which channel",
        build_notify_ls,
        run_notify_ls,
        examples=("notify ls",),
    ),
    Command(
        "notify test",
        Grammar(usage=NOTIFY_TEST_USAGE),
        "post a sample incident to a route's channel",
        build_notify_test,
        run_notify_test,
        examples=("notify test", "notify test 2", "notify test C0OPS"),
    ),
    Command(
        "mute",
        MUTE_GRAMMAR,
        "stop reporting a container's incidents for a while",
        build_mute,
        run_mute,
        examples=("mute web-1", "mute web-1 crashed --for 8h", "mute web-1 --until 09:00"),
    ),
    Command("mute ls", Grammar(usage=MUTE_LS_USAGE), "the mutes in force", build_mute_ls, run_mute_ls),
    Command(
        "unmute", Grammar(usage=UNMUTE_USAGE), "end a mute now", build_unmute, run_unmute, examples=("unmute web-1",)
    ),
    Command(
        "incident logs",
        Grammar(usage=INCIDENT_LOGS_USAGE),
        "the log lines captured when an incident's container died",
        build_incident_logs,
        run_incident_logs,
    ),
)
