"""Container lifecycle and listing: ``ps``, ``start``, ``stop``, ``restart``, ``rm``, ``logs``, ``port``."""

from __future__ import annotations

import re
import time
from typing import Any

from bot import humanize, parse_values
from bot.commands import Command, Context, EngineCall
from bot.engine import DEFAULT_STOP_TIMEOUT, KILL_WAIT, MAX_STOP_TIMEOUT, own_stop_timeout
from bot.errors import NotFound, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed
from bot.models import ContainerAction, ContainerFacts, ContainerList, ContainerView, Request, TextOutput
from bot.redact import redact_string
from handlers.common import (
    facts_from_list,
    for_each_target,
    logs_output,
    one_target,
    resolved,
    split_targets,
    view_from_inspect,
    view_from_list,
)

DRY_RUN = Flag(("--dry-run",), "dry_run", help="show the decision and the Engine requests; do nothing")
LOG_LINES_DEFAULT = 1000


# --------------------------------------------------------------------------------------------- ps

PS_USAGE = "ps [-a] [-q] [-n N] [-f KEY=VALUE]"
PS_GRAMMAR = Grammar(
    usage=PS_USAGE,
    flags=(
        Flag(("-a", "--all"), "all", help="show all containers (default shows just running)"),
        Flag(("-q", "--quiet"), "quiet", help="only display container IDs"),
        Flag(("-n", "--last"), "last", Kind.VALUE, "N", "show the N last created containers (all states)"),
        Flag(("-l", "--latest"), "latest", help="show the latest created container (all states)"),
        Flag(("-f", "--filter"), "filter", Kind.LIST, "KEY=VALUE", "filter output (name, label, status, ...)"),
        Flag(("--no-trunc",), "no_trunc", help="don't truncate output (full IDs and commands)"),
    ),
)


class PsRequest(Request):
    command = "ps"
    all: bool = False
    quiet: bool = False
    last: int = -1
    filters: tuple[tuple[str, str], ...] = ()
    no_trunc: bool = False


def _int(value: str, flag: str, usage: str, minimum: int = 0) -> int:
    if not re.fullmatch(r"-?\d+", value) or int(value) < minimum:
        raise UsageError(f'invalid argument "{value}" for "{flag}" flag: expected a number >= {minimum}', usage=usage)
    return int(value)


def build_ps(parsed: Parsed) -> PsRequest:
    if parsed.positionals:
        raise UsageError(f'"ps" accepts no arguments (got {" ".join(parsed.positionals)})', usage=PS_USAGE)
    filters = []
    for item in parsed.many("filter"):
        key, has_value, value = item.partition("=")
        if not has_value or not key:
            raise UsageError(f"bad format of filter (expected name=value): {item}", usage=PS_USAGE)
        filters.append((key.strip().lower(), value))
    last_text = parsed.value("last")
    last = _int(last_text, "--last", PS_USAGE) if last_text is not None else -1
    if parsed.flag("latest"):
        last = 1
    return PsRequest(
        all=parsed.flag("all"),
        quiet=parsed.flag("quiet"),
        last=last,
        filters=tuple(filters),
        no_trunc=parsed.flag("no_trunc"),
    )


def run_ps(ctx: Context, request: PsRequest) -> ContainerList:
    """Similar to the ``docker ps`` command; lists only containers the policy lets this channel touch.

    Scope first, then limits: ``-n 3`` / ``-l`` are the newest containers *this person may see*, so the engine
    is asked for every container (newest first, as ``/containers/json`` orders them) and the cut is made here.
    """
    filters: dict[str, list[str]] = {}
    for key, value in request.filters:
        filters.setdefault(key, []).append(value)
    items = ctx.engine.read(
        ctx.engine.api.containers,
        all=request.all or request.last > 0,
        filters=filters or None,
    )
    now = time.time()
    shown: list[dict[str, Any]] = []
    hidden = 0
    for item in items:
        if request.last > 0 and len(shown) >= request.last:
            break
        if ctx.in_scope(facts_from_list(item)):
            shown.append(item)
        else:
            hidden += 1
    return ContainerList(
        containers=tuple(_listed(item, now=now, no_trunc=request.no_trunc) for item in shown),
        quiet=request.quiet,
        all=request.all or request.last > 0,  # -n N / -l list stopped containers too: no "running" headline
        no_trunc=request.no_trunc,
        hidden_out_of_scope=hidden,
    )


def _listed(item: dict[str, Any], *, now: float, no_trunc: bool) -> ContainerView:
    """A ``ps`` row; ``--no-trunc``: the whole COMMAND (Go-quoted, as docker prints it), not its first 20 columns,
    and the IMAGE as the engine reports it (``sha256:…`` for an image since untagged), not shortened."""
    view = view_from_list(item, now=now)
    if not no_trunc:
        return view.model_copy(update={"image": humanize.ps_image(view.image, str(item.get("ImageID", "")))})
    return view.model_copy(update={"command": humanize.quote_command(redact_string(str(item.get("Command", ""))))})


# --------------------------------------------------------------------------------------------- start/stop/...


class TargetsRequest(Request):
    """A request naming one or more existing containers."""

    targets: tuple[str, ...]

    def container_refs(self) -> tuple[str, ...]:
        return self.targets


class StartRequest(TargetsRequest):
    command = "start"
    mutating = True
    starts_containers = True


class StopRequest(TargetsRequest):
    command = "stop"
    mutating = True
    timeout: int | None = None


class RestartRequest(StopRequest):
    command = "restart"
    starts_containers = True


class RmRequest(TargetsRequest):
    command = "rm"
    mutating = True
    force: bool = False
    volumes: bool = False


START_USAGE = "start CONTAINER [CONTAINER...]"
STOP_USAGE = "stop [-t SECONDS] CONTAINER [CONTAINER...]"
RESTART_USAGE = "restart [-t SECONDS] CONTAINER [CONTAINER...]"
RM_USAGE = "rm [-f] [-v] CONTAINER [CONTAINER...]"
TIMEOUT_FLAG = Flag(("-t", "--time", "--timeout"), "timeout", Kind.VALUE, "SECONDS", "seconds to wait before killing")


def _timeout(parsed: Parsed, usage: str) -> int | None:
    text = parsed.value("timeout")
    if text is None:
        return None
    seconds = _int(text, "--time", usage)
    if seconds > MAX_STOP_TIMEOUT:
        raise UsageError(f"a stop timeout above {MAX_STOP_TIMEOUT} seconds is not accepted from chat", usage=usage)
    return seconds


def build_start(parsed: Parsed) -> StartRequest:
    return StartRequest(targets=split_targets(parsed.positionals, usage=START_USAGE), dry_run=parsed.flag("dry_run"))


def build_stop(parsed: Parsed) -> StopRequest:
    return StopRequest(
        targets=split_targets(parsed.positionals, usage=STOP_USAGE),
        timeout=_timeout(parsed, STOP_USAGE),
        dry_run=parsed.flag("dry_run"),
    )


def build_restart(parsed: Parsed) -> RestartRequest:
    return RestartRequest(
        targets=split_targets(parsed.positionals, usage=RESTART_USAGE),
        timeout=_timeout(parsed, RESTART_USAGE),
        dry_run=parsed.flag("dry_run"),
    )


def build_rm(parsed: Parsed) -> RmRequest:
    return RmRequest(
        targets=split_targets(parsed.positionals, usage=RM_USAGE),
        force=parsed.flag("force"),
        volumes=parsed.flag("volumes"),
        dry_run=parsed.flag("dry_run"),
    )


def _ids(ctx: Context, request: TargetsRequest) -> list[str]:
    return [ctx.containers[ref].id if ref in ctx.containers else ref for ref in request.targets]


def plan_start(ctx: Context, request: StartRequest) -> list[EngineCall]:
    return [EngineCall("POST", f"/containers/{cid}/start") for cid in _ids(ctx, request)]


def plan_stop(ctx: Context, request: StopRequest) -> list[EngineCall]:
    verb = "restart" if isinstance(request, RestartRequest) else "stop"
    return [
        EngineCall("POST", f"/containers/{cid}/{verb}", _stop_params(stop_seconds(ctx, cid, request.timeout)))
        for cid in _ids(ctx, request)
    ]


def plan_rm(ctx: Context, request: RmRequest) -> list[EngineCall]:
    params = {"force": request.force, "v": request.volumes}
    return [EngineCall("DELETE", f"/containers/{cid}", params) for cid in _ids(ctx, request)]


def _fresh_view(ctx: Context, facts: ContainerFacts) -> ContainerView:
    return view_from_inspect(ctx.engine.read(ctx.engine.api.inspect_container, facts.id))


def run_start(ctx: Context, request: StartRequest) -> ContainerAction:
    """Similar to the ``docker start`` command: starts existing containers (``run`` always makes a new one)."""

    def start(facts: ContainerFacts) -> ContainerView:
        ctx.engine.write(ctx.engine.api.start, facts.id)
        return _fresh_view(ctx, facts)

    return ContainerAction(action="start", items=for_each_target(ctx, request.targets, start))


def stop_seconds(ctx: Context, container_id: str, seconds: int | None) -> tuple[int | None, int]:
    """``(t to send or None, seconds the engine may wait)``: ``-t`` when given, else the container's own
    ``--stop-timeout`` capped at ``MAX_STOP_TIMEOUT`` (:func:`own_stop_timeout`), 10 s when it has none."""
    if seconds is not None:
        return seconds, seconds
    if container_id not in {facts.id for facts in ctx.containers.values()}:
        return None, DEFAULT_STOP_TIMEOUT  # not there: the engine's error says so
    data = ctx.engine.read(ctx.engine.api.inspect_container, container_id)
    own = (data.get("Config") or {}).get("StopTimeout")
    capped = own_stop_timeout(own)
    if capped is not None:
        return capped, capped
    return None, DEFAULT_STOP_TIMEOUT if own is None else int(own)


def _stop_params(seconds: tuple[int | None, int]) -> dict[str, Any]:
    return {"t": seconds[0]} if seconds[0] is not None else {}


def run_stop(ctx: Context, request: StopRequest) -> ContainerAction:
    """Similar to the ``docker stop`` command (``restart`` for RestartRequest); all targets at once.

    Without ``-t`` no ``t`` is sent, as docker sends none: the engine applies the container's own stop timeout,
    and chatdock waits for as long as the engine may plus its usual timeout. A container's own stop timeout that
    is negative (wait forever) or above ``MAX_STOP_TIMEOUT`` is capped there: ``t=300`` is sent.
    """
    restart = isinstance(request, RestartRequest)
    path = "/containers/{0}/restart" if restart else "/containers/{0}/stop"

    def act(facts: ContainerFacts) -> ContainerView:
        seconds = stop_seconds(ctx, facts.id, request.timeout)
        ctx.engine.write(ctx.engine.post_waiting, path, facts.id, params=_stop_params(seconds), waits=seconds[1])
        return _fresh_view(ctx, facts)

    return ContainerAction(action="restart" if restart else "stop", items=for_each_target(ctx, request.targets, act))


def run_rm(ctx: Context, request: RmRequest) -> ContainerAction:
    """Similar to the ``docker rm`` command: several containers at once, ``-f`` for running ones."""

    def remove(facts: ContainerFacts) -> ContainerView:
        view = _fresh_view(ctx, facts)
        try:
            params = {"force": request.force, "v": request.volumes}
            waits = KILL_WAIT if request.force else 0
            ctx.engine.write(ctx.engine.post_waiting, "/containers/{0}", facts.id, params=params, waits=waits)
        except NotFound:
            if not request.force:
                raise  # with -f, a container removed meanwhile (by --rm, by someone) is what was asked for
        return view.model_copy(update={"status": "Removed", "state": "removed"})

    items = for_each_target(ctx, request.targets, remove)
    if request.force:
        # docker 28: `rm -f` of a container that does not exist prints the error and exits 0
        items = tuple(
            item.model_copy(update={"ok": True, "warning": item.error, "error": ""})
            if not item.ok and item.target in ctx.missing
            else item
            for item in items
        )
    return ContainerAction(action="rm", items=items)


# --------------------------------------------------------------------------------------------- logs / port

LOGS_USAGE = "logs [--tail N] [--since TIME] [-t] CONTAINER"
LOGS_GRAMMAR = Grammar(
    usage=LOGS_USAGE,
    flags=(
        Flag(("-n", "--tail"), "tail", Kind.VALUE, "N", f"lines from the end (default {LOG_LINES_DEFAULT})"),
        Flag(
            ("--since",),
            "since",
            Kind.VALUE,
            "TIME",
            "since a time (2024-01-02T15:04:05Z) or a duration (10m)",
        ),
        Flag(("-t", "--timestamps"), "timestamps", help="show timestamps"),
    ),
)


class LogsRequest(Request):
    command = "logs"
    target: str
    tail: int = LOG_LINES_DEFAULT
    since: int | None = None
    since_note: str = ""
    timestamps: bool = False

    def container_refs(self) -> tuple[str, ...]:
        return (self.target,)


def build_logs(parsed: Parsed) -> LogsRequest:
    target = one_target(parsed.positionals, usage=LOGS_USAGE)
    tail_text = parsed.value("tail")
    tail = LOG_LINES_DEFAULT
    if tail_text is not None and tail_text != "all":
        tail = _int(tail_text, "--tail", LOGS_USAGE)
    since_text = parsed.value("since")
    since: int | None = None
    note = ""
    if since_text is not None:
        since = parse_values.parse_since(since_text, time.time())
        since = since if since > 0 else None  # at or before 1970: every line, as docker prints
        note = parse_values.since_zone_note(since_text)
    return LogsRequest(target=target, tail=tail, since=since, since_note=note, timestamps=parsed.flag("timestamps"))


def run_logs(ctx: Context, request: LogsRequest) -> TextOutput:
    """Similar to ``docker logs``; capped at the last lines so a chat reply stays readable."""
    facts = resolved(ctx, request.target)
    raw = ctx.engine.read(
        ctx.engine.api.logs,
        facts.id,
        stdout=True,
        stderr=True,
        tail=request.tail,
        since=request.since,
        timestamps=request.timestamps,
    )
    return logs_output(facts.name, raw, request.since_note)


PORT_USAGE = "port CONTAINER [PRIVATE_PORT[/PROTO]]"


class PortRequest(Request):
    command = "port"
    target: str
    private_port: str | None = None

    def container_refs(self) -> tuple[str, ...]:
        return (self.target,)


def build_port(parsed: Parsed) -> PortRequest:
    """As docker port: PORT must be a 16-bit number, ``/PROTO`` is taken as typed (tcp when absent)."""
    words = parsed.positionals
    if not 1 <= len(words) <= 2:
        raise UsageError("requires a container and optionally a port", usage=PORT_USAGE)
    private = words[1] if len(words) == 2 else None
    if private is not None:
        number = private.partition("/")[0]
        if not re.fullmatch(r"[0-9]+", number, re.ASCII):
            raise UsageError(
                f'invalid port ({number}): strconv.ParseUint: parsing "{number}": invalid syntax', usage=PORT_USAGE
            )
        if len(number.lstrip("0")) > 5 or int(number) > 65535:
            raise UsageError(
                f'invalid port ({number}): strconv.ParseUint: parsing "{number}": value out of range',
                usage=PORT_USAGE,
            )
    return PortRequest(target=words[0], private_port=private)


def run_port(ctx: Context, request: PortRequest) -> TextOutput:
    """Similar to the ``docker port`` command: ``80/tcp -> 0.0.0.0:9090`` lines, or for one private port only
    the host addresses (``0.0.0.0:9090`` and ``[::]:9090``), naturally sorted as docker sorts them."""
    facts = resolved(ctx, request.target)
    data = ctx.inspected(facts)
    ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
    if request.private_port:
        number, _, proto = request.private_port.partition("/")
        bindings = ports.get(f"{number}/{proto or 'tcp'}")
        if not bindings:
            raise NotFound(f"No public port '{request.private_port}' published for {request.target}")
        lines = humanize.port_lines({"": bindings}, with_private=False)
    else:
        lines = humanize.port_lines(ports)
    return TextOutput(title=f"port {facts.name}", text="\n".join(lines), total_lines=len(lines), shown_lines=len(lines))


# --------------------------------------------------------------------------------------------- registry


def _targets_grammar(usage: str, *extra: Flag) -> Grammar:
    return Grammar(usage=usage, flags=(*extra, DRY_RUN))


COMMANDS = (
    Command(
        "ps",
        PS_GRAMMAR,
        "list containers",
        build_ps,
        run_ps,
        aliases=("container ls", "container ps", "container list"),
        examples=("ps", "ps -a", "ps -f name=web", "ps -q"),
    ),
    Command(
        "start",
        _targets_grammar(START_USAGE),
        "start stopped containers",
        build_start,
        run_start,
        plan=plan_start,
        aliases=("container start",),
        examples=("start webhost",),
    ),
    Command(
        "stop",
        _targets_grammar(STOP_USAGE, TIMEOUT_FLAG),
        "stop running containers",
        build_stop,
        run_stop,
        plan=plan_stop,
        aliases=("container stop",),
        slow=True,
        examples=("stop webhost", "stop 1480a", "stop -t 2 web1 web2"),
    ),
    Command(
        "restart",
        _targets_grammar(RESTART_USAGE, TIMEOUT_FLAG),
        "restart containers",
        build_restart,
        run_stop,
        plan=plan_stop,
        aliases=("container restart",),
        slow=True,
        examples=("restart webhost",),
    ),
    Command(
        "rm",
        _targets_grammar(
            RM_USAGE,
            Flag(("-f", "--force"), "force", help="force the removal of a running container"),
            Flag(("-v", "--volumes"), "volumes", help="remove anonymous volumes too"),
        ),
        "remove containers",
        build_rm,
        run_rm,
        plan=plan_rm,
        aliases=("container rm",),
        examples=("rm web1 web2", "container rm web1, web2", "rm -f webhost"),
    ),
    Command(
        "logs",
        LOGS_GRAMMAR,
        "show a container's output",
        build_logs,
        run_logs,
        aliases=("container logs",),
        examples=("logs webhost", "logs --tail 20 --since 10m webhost"),
    ),
    Command(
        "port",
        Grammar(usage=PORT_USAGE),
        "list a container's published ports",
        build_port,
        run_port,
        aliases=("container port",),
        examples=("port webhost", "port webhost 80/tcp"),
    ),
)
