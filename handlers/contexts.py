"""``context ls`` and ``context inspect NAME``: the configured hosts, as ``docker context ls`` shows contexts, plus
what chatdock knows of each: reachable or not, engine version, running / total containers, round-trip time and
the last error with since when.

Both probe every host first (concurrently, each bounded to a few seconds), so a host stopped a minute ago shows
as unreachable now, and one started again shows as reachable; a hung host costs the listing at most that bound.
No credentials are shown: a URL's kind and address only (bot.hosts.Host.shown_url).
"""

from __future__ import annotations

import json
import time

from bot import humanize
from bot.commands import Command, Context
from bot.errors import UsageError
from bot.flags import Grammar, Parsed
from bot.hosts import Health, HostSet, HostView
from bot.models import Request, TextOutput

LS_USAGE = "context ls"
INSPECT_USAGE = "context inspect NAME [NAME...]"
PROBE_WAIT = 5.0


class ContextListRequest(Request):
    command = "context ls"


class ContextInspectRequest(Request):
    command = "context inspect"
    names: tuple[str, ...]


def build_ls(parsed: Parsed) -> ContextListRequest:
    if parsed.positionals:
        raise UsageError(f'"context ls" accepts no arguments (got {" ".join(parsed.positionals)})', usage=LS_USAGE)
    return ContextListRequest()


def build_inspect(parsed: Parsed) -> ContextInspectRequest:
    if not parsed.positionals:
        raise UsageError('"context inspect" requires at least 1 argument', usage=INSPECT_USAGE)
    return ContextInspectRequest(names=tuple(parsed.positionals))


def _hosts(ctx: Context) -> HostSet:
    assert ctx.hosts is not None, "the pipeline hands every handler its HostSet"
    return ctx.hosts


def _ago(moment: float | None, now: float) -> str:
    if moment is None:
        return ""
    return f"{humanize.human_duration(max(0.0, now - moment))} ago"


def _state(health: Health, now: float) -> str:
    if health.reachable:
        return "reachable"
    if health.reachable is None:
        return "not checked"
    if health.error_since is None:
        return "unreachable"
    lasted = humanize.human_duration(max(0.0, now - health.error_since))
    return f"unreachable for {lasted[:1].lower()}{lasted[1:]}"


def run_ls(ctx: Context, request: ContextListRequest) -> TextOutput:
    """Similar to ``docker context ls``, with each host's health."""
    hosts = _hosts(ctx)
    hosts.probe_all(wait=PROBE_WAIT)
    now = time.time()
    rows = []
    for name in hosts.names():
        view = hosts.view(name, current=ctx.host)
        health = view.health
        containers = f"{health.running}/{health.total}" if health.reachable and health.total is not None else ""
        rows.append(
            [
                name + (" *" if view.current else ""),
                view.url,
                _state(health, now),
                health.version or "" if health.reachable else "",
                containers,
                f"{health.rtt_ms:g} ms" if health.reachable and health.rtt_ms is not None else "",
                "" if health.reachable else (health.error or ""),
            ]
        )
    text = humanize.table(["NAME", "DOCKER ENDPOINT", "STATE", "VERSION", "RUNNING/ALL", "RTT", "ERROR"], rows)
    return TextOutput(title=f"{len(rows)} hosts (* = this channel's)", text=text)


def _inspected(view: HostView, now: float) -> dict[str, object]:
    health = view.health
    return {
        "Name": view.name,
        "Endpoint": view.url,
        "Kind": view.kind,
        "Context": view.context,
        "Labels": dict(view.labels),
        "Default": view.default,
        "Current": view.current,
        "Reachable": health.reachable,
        "Version": health.version,
        "ContainersRunning": health.running,
        "Containers": health.total,
        "RoundTripMs": health.rtt_ms,
        "LastOk": humanize_time(health.last_ok),
        "LastError": health.error,
        "ErrorSince": humanize_time(health.error_since),
        "Checked": _ago(health.checked, now) or None,
    }


def humanize_time(moment: float | None) -> str | None:
    if moment is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def run_inspect(ctx: Context, request: ContextInspectRequest) -> TextOutput:
    """Similar to ``docker context inspect``: one JSON object per host, without any credential."""
    hosts = _hosts(ctx)
    unknown = [name for name in request.names if name not in hosts.hosts]
    if unknown:
        raise UsageError(
            f'context "{unknown[0]}" does not exist: the hosts are {", ".join(hosts.names())}', usage=INSPECT_USAGE
        )
    for name in request.names:
        hosts.probe(name, wait=PROBE_WAIT)
    now = time.time()
    shown = [_inspected(hosts.view(name, current=ctx.host), now) for name in request.names]
    return TextOutput(title=f"context inspect {' '.join(request.names)}", text=json.dumps(shown, indent=4))


COMMANDS = (
    Command(
        "context ls",
        Grammar(usage=LS_USAGE),
        "list the Docker hosts chatdock drives, and whether each answers",
        build_ls,
        run_ls,
        aliases=("context list",),
        examples=("context ls",),
        slow=True,  # probes every host, up to PROBE_WAIT seconds: not on the quick-read workers
    ),
    Command(
        "context inspect",
        Grammar(usage=INSPECT_USAGE),
        "one host's details: endpoint kind, labels, engine version, containers, last error",
        build_inspect,
        run_inspect,
        examples=("context inspect prod",),
        slow=True,
    ),
)
