"""Outcome → plain text for the terminal, shaped like docker's own output so docker users feel at home."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot import humanize, wording
from bot.models import (
    ContainerAction,
    ContainerList,
    DryRun,
    ExecOutcome,
    HelpText,
    HistoryView,
    ImageList,
    ImageRemoval,
    Inspection,
    NetworkChange,
    NetworkList,
    Progress,
    PullOutcome,
    Result,
    RunOutcome,
    StatsView,
    TextOutput,
)
from bot.outcome import Outcome
from bot.render_services import service_change_text
from bot.services import ServiceChange, ServiceInspection


def render(outcome: Outcome) -> str:
    """The terminal's text; with several hosts configured, the host it is about comes first."""
    text = _render(outcome)
    if outcome.host and text:
        return f"{wording.host_line(outcome.host)}\n{text}"
    return text


def _render(outcome: Outcome) -> str:
    if outcome.error is not None:
        if outcome.error.kind == "denied":
            return wording.denied(outcome.error.message, outcome.error.rule or "")
        if outcome.error.kind == "usage":
            return wording.usage_error(outcome.error.message, outcome.error.usage)
        return wording.error(outcome.error.message)
    if outcome.result is None:
        return ""
    renderer = _RENDERERS.get(type(outcome.result))
    return renderer(outcome.result) if renderer else json.dumps(outcome.result.model_dump(mode="json"), indent=2)


def _container_list(result: Any) -> str:
    assert isinstance(result, ContainerList)
    text = _container_table(result)
    if result.failed_hosts:  # a listing across every host: the hosts that are missing from it, and why
        text = "\n".join([text, *result.failed_hosts]) if text else "\n".join(result.failed_hosts)
    return text


def _container_table(result: ContainerList) -> str:
    width = None if result.no_trunc else 12  # ps --no-trunc: full IDs
    if result.quiet:
        return "\n".join(c.id[:width] for c in result.containers)
    rows = [
        [
            c.id[:width],
            c.image,
            f'"{c.command.strip(chr(34))}"' if c.command else '""',
            c.created,
            c.status,
            c.ports,
            c.name,
        ]
        for c in result.containers
    ]
    headers = list(wording.PS_HEADERS)
    if result.hosts:
        headers, rows = (
            [wording.HOST_HEADER, *headers],
            [[c.host, *row] for c, row in zip(result.containers, rows, strict=True)],
        )
    text = humanize.table(headers, rows)
    if result.hidden_out_of_scope:
        text += "\n" + wording.hidden_note(result.hidden_out_of_scope)
    return text


def _action(result: Any) -> str:
    assert isinstance(result, ContainerAction)
    lines = []
    for item in result.items:
        if item.ok and not item.warning:
            lines.append(item.target)
        else:  # docker prints both on stderr in these words; a warning does not change the exit status
            lines.append(f"Error response from daemon: {item.warning or item.error}")
    return "\n".join(lines)


def _run(result: Any) -> str:
    assert isinstance(result, RunOutcome)
    if result.detached:
        return result.container.id + ("\n(already exited and removed)" if result.removed else "")
    lines = [result.output] if result.output else []
    if result.output_truncated:
        lines.append("(output cut to the last lines)")
    name = result.container.name
    if result.still_running:
        lines.append(
            f"{name} is still running after {result.waited_seconds:g} s. Follow it with `logs {name}`, "
            f"stop it with `stop {name}`" + ("; it will be removed when it exits." if result.remove_on_exit else ".")
        )
    else:
        lines.append(f"[{name} exited with code {result.exit_code}{', removed' if result.removed else ''}]")
    return "\n".join(lines)


def _exec(result: Any) -> str:
    assert isinstance(result, ExecOutcome)
    lines = [result.output.rstrip("\n")] if result.output else []
    if result.note:
        lines.append(f"({result.note})")
    if result.exit_code is not None and result.exit_code != 0:
        lines.append(f"[exit code {result.exit_code}]")
    return "\n".join(lines)


def _text(result: Any) -> str:
    assert isinstance(result, TextOutput)
    return result.text + (f"\n({result.note})" if result.note else "")


def _stats(result: Any) -> str:
    assert isinstance(result, StatsView)
    return "\n".join([result.table, *(f"Error: {e}" for e in result.errors)])


def _inspection(result: Any) -> str:
    assert isinstance(result, Inspection)
    return json.dumps([result.document], indent=4)


def _network_list(result: Any) -> str:
    assert isinstance(result, NetworkList)
    rows = [[n["id"], n["name"], n["driver"], n["scope"]] for n in result.networks]
    return humanize.table(wording.NETWORK_HEADERS, rows)


def _network_change(result: Any) -> str:
    assert isinstance(result, NetworkChange)
    if result.action == "create":
        return result.network_id
    if result.action == "rm":
        return "\n".join(  # docker 28 prints nothing for a missing network with -f
            i.target if i.ok else f"Error response from daemon: {i.error}" for i in result.items if not i.warning
        )
    return (
        f"{result.container} {wording.NETWORK_PAST[result.action]} {'to' if result.action == 'connect' else 'from'}"
        f" {result.network}" + (f" ({result.detail})" if result.detail else "")
    )


def _help(result: Any) -> str:
    assert isinstance(result, HelpText)
    return "\n".join([result.title, "", *result.lines])


def _dry_run(result: Any) -> str:
    assert isinstance(result, DryRun)
    lines = "".join(line + "\n" for line in result.lines)
    return "Dry run: " + result.summary + "\n" + lines + json.dumps(list(result.engine_requests), indent=2)


def progress_text(progress: Progress) -> str:
    """One plain line of a pull's progress (the shell's piped output; the bar's text on a terminal)."""
    if progress.detail:  # a service rollout
        return f"{progress.action} {progress.subject}: {progress.detail}"
    return f"{progress.subject}: " + wording.progress_line(
        layers_done=progress.layers_done,
        layers_total=progress.layers_total,
        bytes_done=progress.bytes_done,
        bytes_total=progress.bytes_total,
        rate=progress.rate,
        elapsed=progress.elapsed,
    )


def _pull(result: Any) -> str:
    """As ``docker pull`` ends: digest, status, the reference; then what chatdock measured."""
    assert isinstance(result, PullOutcome)
    lines = []
    if result.digest:
        lines.append(f"Digest: {result.digest}")
    if result.status:
        lines.append(f"Status: {result.status}")
    lines.append(result.image)
    summary = wording.pull_summary(digest="", size_bytes=result.size, seconds=result.seconds, layers=result.layers)
    lines.append(f"({summary})")
    return "\n".join(lines)


def _image_list(result: Any) -> str:
    assert isinstance(result, ImageList)
    if result.quiet:
        return "\n".join(i.id for i in result.images)
    rows = [
        [
            i.repository,
            i.tag,
            i.id,
            i.created,
            wording.size(i.size),
            wording.used_by(i.containers, i.hidden_containers),
        ]
        for i in result.images
    ]
    return humanize.table(wording.IMAGE_HEADERS, rows)


def _image_removal(result: Any) -> str:
    """``docker rmi`` / ``docker image prune`` output: Untagged / Deleted lines, errors, reclaimed space."""
    assert isinstance(result, ImageRemoval)
    lines = [f"Untagged: {tag}" for tag in result.untagged] + [f"Deleted: {image}" for image in result.deleted]
    # docker prints both on stderr in these words; a warning (`rmi -f` of a missing image) keeps exit status 0
    lines += [
        f"Error response from daemon: {item.warning or item.error}"
        for item in result.items
        if item.warning or not item.ok
    ]
    if result.action == "prune":
        lines.append(f"Total reclaimed space: {wording.size(result.space)}")
    return "\n".join(lines)


def _history(result: Any) -> str:
    assert isinstance(result, HistoryView)
    rows = [
        [
            e.get("when", ""),
            e.get("who", ""),
            e.get("command", ""),
            e.get("outcome", ""),
            e.get("summary", ""),
        ]
        for e in result.entries
    ]
    return humanize.table(["WHEN", "WHO", "COMMAND", "OUTCOME", "RESULT"], rows)


_RENDERERS: dict[type[Result], Callable[[Any], str]] = {
    ContainerList: _container_list,
    ContainerAction: _action,
    RunOutcome: _run,
    ExecOutcome: _exec,
    TextOutput: _text,
    StatsView: _stats,
    Inspection: _inspection,
    NetworkList: _network_list,
    NetworkChange: _network_change,
    HelpText: _help,
    DryRun: _dry_run,
    HistoryView: _history,
    PullOutcome: _pull,
    ImageList: _image_list,
    ImageRemoval: _image_removal,
    ServiceChange: service_change_text,  # swarm services (bot/render_services.py)
    ServiceInspection: _inspection,
}
