"""Looking inside containers: ``inspect``, ``top``, ``stats``, ``exec``."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot import humanize
from bot.commands import Command, Context, EngineCall
from bot.engine import translate
from bot.errors import ChatdockError, Conflict, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed, Refused
from bot.models import ContainerFacts, ExecOutcome, Inspection, Request, StatsView, TextOutput
from bot.redact import redact_document, redact_env, redact_labels, redact_string
from handlers.common import (
    env_assignments,
    facts_from_list,
    one_target,
    resolved,
    split_targets,
    state_conflict,
    view_from_inspect,
)

STATS_PARALLEL = 32
EXEC_OUTPUT_BYTES = 256 * 1024

# --------------------------------------------------------------------------------------------- inspect

INSPECT_USAGE = "inspect CONTAINER"


class InspectRequest(Request):
    command = "inspect"
    target: str

    def container_refs(self) -> tuple[str, ...]:
        return (self.target,)


def build_inspect(parsed: Parsed) -> InspectRequest:
    return InspectRequest(target=one_target(parsed.positionals, usage=INSPECT_USAGE))


def run_inspect(ctx: Context, request: InspectRequest) -> Inspection:
    """Similar to ``docker inspect``: a summary people read, and the whole document (secrets masked)."""
    facts = resolved(ctx, request.target)
    data = ctx.inspected(facts)
    document = redact_document(data, ctx.policy.redact)
    config = data.get("Config") or {}
    host = data.get("HostConfig") or {}
    state = data.get("State") or {}
    networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
    restart = host.get("RestartPolicy") or {}
    mounts = [
        f"{m.get('Type')}:{m.get('Name') or m.get('Source')} → {m.get('Destination')}" for m in data.get("Mounts") or []
    ]
    user_labels = redact_labels(config.get("Labels") or {}, ctx.policy.redact)
    summary = (
        ("Name", str(data.get("Name", "")).lstrip("/")),
        ("ID", data["Id"][:12]),
        ("Image", str(config.get("Image", ""))),
        (
            "Command",
            redact_string(" ".join([data.get("Path", ""), *(data.get("Args") or [])]).strip(), ctx.policy.redact),
        ),
        ("State", humanize.container_status(state, time.time())),
        ("Ports", humanize.format_ports((data.get("NetworkSettings") or {}).get("Ports") or {}) or "none"),
        (
            "Networks",
            ", ".join(
                f"{name} ({net.get('IPAddress') or 'no IP'}"
                + (
                    f", aliases {', '.join(a for a in net.get('Aliases') or [] if a != data['Id'][:12])}"
                    if [a for a in net.get("Aliases") or [] if a != data["Id"][:12]]
                    else ""
                )
                + ")"
                for name, net in networks.items()
            )
            or "none",
        ),
        ("Mounts", ", ".join(mounts) or "none"),
        (
            "Restart",
            f"{restart.get('Name') or 'no'}"
            + (f":{restart.get('MaximumRetryCount')}" if restart.get("MaximumRetryCount") else ""),
        ),
        ("Env", ", ".join(redact_env(config.get("Env") or [], ctx.policy.redact)) or "none"),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(user_labels.items())) or "none"),
    )
    return Inspection(
        title=f"inspect {facts.name}", summary=summary, document=document, container=view_from_inspect(data)
    )


# --------------------------------------------------------------------------------------------- top

# docker's `top CONTAINER [ps OPTIONS]` hands the options to `ps` on the Docker host; chatdock does not take them
# (`ps e` and friends print every process's environment, secrets included), so the usage does not offer them.
TOP_USAGE = "top CONTAINER"


class TopRequest(Request):
    command = "top"
    target: str

    def container_refs(self) -> tuple[str, ...]:
        return (self.target,)


def build_top(parsed: Parsed) -> TopRequest:
    if len(parsed.positionals) > 1:
        extra = " ".join(parsed.positionals[1:])
        raise UsageError(
            f"`top` takes exactly 1 container and no ps options (got `{extra}`): chatdock always shows "
            "`ps -ef` columns",
            usage=TOP_USAGE,
        )
    if not parsed.positionals:
        raise UsageError("requires exactly 1 container", usage=TOP_USAGE)
    return TopRequest(target=parsed.positionals[0])


def run_top(ctx: Context, request: TopRequest) -> TextOutput:
    """Similar to ``docker top``: the container's processes with ``ps -ef`` columns."""
    facts = resolved(ctx, request.target)
    try:
        top = ctx.engine.read(ctx.engine.api.top, facts.id)
    except Conflict as exc:
        raise state_conflict(exc, facts) from exc
    table = humanize.table(list(top.get("Titles") or []), [list(p) for p in top.get("Processes") or []])
    count = len(top.get("Processes") or [])
    return TextOutput(title=f"top {facts.name}", text=table, total_lines=count, shown_lines=count)


# --------------------------------------------------------------------------------------------- stats

STATS_USAGE = "stats [CONTAINER...]"
STATS_GRAMMAR = Grammar(
    usage=STATS_USAGE,
    flags=(
        Flag(("-a", "--all"), "all", help="show all containers (default shows just running)"),
        Flag(("--no-stream",), "no_stream", help="accepted: chatdock always takes one snapshot", hidden=True),
    ),
)


class StatsRequest(Request):
    command = "stats"
    targets: tuple[str, ...] = ()
    all: bool = False

    def container_refs(self) -> tuple[str, ...]:
        return self.targets


def build_stats(parsed: Parsed) -> StatsRequest:
    targets = split_targets(parsed.positionals, usage=STATS_USAGE, at_least=0)
    return StatsRequest(targets=targets, all=parsed.flag("all"))


def run_stats(ctx: Context, request: StatsRequest) -> StatsView:
    """Like ``docker stats --no-stream``: one snapshot, every container fetched concurrently."""
    errors: list[str] = []
    if request.targets:
        chosen: list[ContainerFacts] = []
        for ref in request.targets:
            if ref in ctx.containers:
                chosen.append(ctx.containers[ref])
            else:
                errors.append(ctx.missing.get(ref, f"No such container: {ref}"))
    else:
        items = ctx.engine.read(ctx.engine.api.containers, all=request.all)
        chosen = [f for f in (facts_from_list(i) for i in items) if ctx.in_scope(f)]

    def one(facts: ContainerFacts) -> humanize.StatsRow | str:
        try:
            raw = ctx.engine.read(ctx.engine.api.stats, facts.id, stream=False)
        except ChatdockError as exc:
            return f"{facts.name}: {exc.message}"
        raw.setdefault("name", "/" + facts.name)
        raw.setdefault("id", facts.id)
        return humanize.stats_row(raw)

    rows: list[humanize.StatsRow] = []
    if chosen:
        with ThreadPoolExecutor(max_workers=min(STATS_PARALLEL, len(chosen))) as pool:
            for outcome in pool.map(one, chosen):
                if isinstance(outcome, str):
                    errors.append(outcome)
                else:
                    rows.append(outcome)
    return StatsView(
        table=humanize.stats_table(rows),
        rows=tuple(row.model_dump() for row in rows),
        errors=tuple(errors),
    )


# --------------------------------------------------------------------------------------------- exec

EXEC_USAGE = "exec [-it] [-u USER] [-w DIR] [-e KEY=VALUE] CONTAINER COMMAND [ARG...]"
EXEC_GRAMMAR = Grammar(
    usage=EXEC_USAGE,
    positionals="stop",
    refused=(
        Refused(("--privileged",), "never:privileged", "a privileged process is root on the host", takes_value=False),
        Refused(("--env-file",), "never:env-file", "it reads a file on chatdock's host"),
    ),
    flags=(
        Flag(("-i", "--interactive"), "interactive", help="accepted; chat runs the command once"),
        Flag(("-t", "--tty"), "tty", help="accepted; chat runs the command once"),
        Flag(("-d", "--detach"), "detach", help="run the command in the background"),
        Flag(("-u", "--user"), "user", Kind.VALUE, "USER", "user[:group] to run as"),
        Flag(("-w", "--workdir"), "workdir", Kind.VALUE, "DIR", "working directory"),
        Flag(("-e", "--env"), "env", Kind.LIST, "KEY=VALUE", "set an environment variable"),
        Flag(("--dry-run",), "dry_run", help="show the decision and the Engine requests; do nothing"),
    ),
)
INTERACTIVE_SHELLS = {"sh", "bash", "ash", "zsh", "/bin/sh", "/bin/bash", "/bin/ash", "/bin/zsh"}


class ExecRequest(Request):
    command = "exec"
    mutating = True
    target: str
    argv: tuple[str, ...]
    interactive: bool = False
    tty: bool = False
    detach: bool = False
    user: str | None = None
    workdir: str | None = None
    env: tuple[str, ...] = ()

    def container_refs(self) -> tuple[str, ...]:
        return (self.target,)


def build_exec(parsed: Parsed) -> ExecRequest:
    if len(parsed.positionals) < 2:
        raise UsageError('"exec" requires at least 2 arguments: a container and a command', usage=EXEC_USAGE)
    target, *argv = parsed.positionals
    return ExecRequest(
        target=target,
        argv=tuple(argv),
        interactive=parsed.flag("interactive"),
        tty=parsed.flag("tty"),
        detach=parsed.flag("detach"),
        user=parsed.value("user"),
        workdir=parsed.value("workdir"),
        env=env_assignments(parsed.many("env")),
        dry_run=parsed.flag("dry_run"),
    )


def _exec_body(request: ExecRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Cmd": list(request.argv),
        "AttachStdout": not request.detach,
        "AttachStderr": not request.detach,
        "AttachStdin": False,
        "Tty": False,
        "Privileged": False,
        "User": request.user or "",
        "Env": list(request.env) or None,
    }
    if request.workdir:
        body["WorkingDir"] = request.workdir
    return body


def plan_exec(ctx: Context, request: ExecRequest) -> list[EngineCall]:
    facts = ctx.containers.get(request.target)
    cid = facts.id if facts else request.target
    return [
        EngineCall("POST", f"/containers/{cid}/exec", body=_exec_body(request)),
        EngineCall("POST", "/exec/{id}/start", body={"Detach": request.detach, "Tty": False}),
    ]


def run_exec(ctx: Context, request: ExecRequest) -> ExecOutcome:
    """Similar to ``docker exec``: runs the command once, bounded in time, and returns its exit code and output."""
    facts = resolved(ctx, request.target)
    api = ctx.engine.api
    note = ""
    if request.interactive and request.tty:
        note = "Chat has no interactive terminal: the command ran once, without input."
        if list(request.argv) and request.argv[0] in INTERACTIVE_SHELLS and len(request.argv) == 1:
            note += f" For a shell command, pass it along: `exec {facts.name} sh -c 'ls -l /'`."
    try:
        created = ctx.engine.write(
            api.exec_create,
            facts.id,
            list(request.argv),
            stdout=True,
            stderr=True,
            tty=False,
            user=request.user or "",
            environment=list(request.env) or None,
            workdir=request.workdir,
        )
    except Conflict as exc:
        raise state_conflict(exc, facts) from exc
    exec_id = created["Id"]
    if request.detach:
        ctx.engine.write(api.exec_start, exec_id, detach=True)
        return ExecOutcome(
            container=facts.name,
            command=request.argv,
            exit_code=None,
            output="",
            note="started in the background",
        )
    chunks: list[bytes] = []
    failure: list[Exception] = []

    def collect() -> None:
        try:
            for chunk in api.exec_start(exec_id, stream=True, demux=False):
                if sum(len(c) for c in chunks) < EXEC_OUTPUT_BYTES:
                    chunks.append(chunk)
        except Exception as exc:  # recorded and translated below
            failure.append(exc)

    reader = threading.Thread(target=collect, name=f"exec-{exec_id[:12]}", daemon=True)
    reader.start()
    reader.join(ctx.exec_timeout)
    timed_out = reader.is_alive()
    if failure and not timed_out:
        raise translate(failure[0], timeout=ctx.engine.timeout) from failure[0]
    exit_code = None if timed_out else ctx.engine.read(api.exec_inspect, exec_id).get("ExitCode")
    output = b"".join(chunks).decode("utf-8", "replace")
    if timed_out:
        note = (note + " " if note else "") + (
            f"Still running after {ctx.exec_timeout:g} s; showing the output so far."
        )
    return ExecOutcome(
        container=facts.name,
        command=request.argv,
        exit_code=exit_code,
        output=output,
        timed_out=timed_out,
        note=note.strip(),
    )


COMMANDS = (
    Command(
        "inspect",
        Grammar(usage=INSPECT_USAGE),
        "show a container's configuration",
        build_inspect,
        run_inspect,
        aliases=("container inspect",),
        examples=("inspect webhost",),
    ),
    Command(
        "top",
        Grammar(usage=TOP_USAGE, positionals="stop"),  # `top web -o pid`: refused by build_top, saying why
        "list a container's processes",
        build_top,
        run_top,
        aliases=("container top",),
        examples=("top webhost",),
    ),
    Command(
        "stats",
        STATS_GRAMMAR,
        "CPU, memory, network and block I/O (one snapshot)",
        build_stats,
        run_stats,
        aliases=("container stats",),
        slow=True,
        examples=("stats", "stats webhost db"),
    ),
    Command(
        "exec",
        EXEC_GRAMMAR,
        "run a command once in a running container",
        build_exec,
        run_exec,
        plan=plan_exec,
        aliases=("container exec",),
        slow=True,
        examples=("exec webhost ls /www", "exec -it webhost cat /etc/hostname"),
    ),
)
