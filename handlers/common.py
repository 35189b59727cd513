"""Pieces the command families share: target lists, container views, concurrent per-target actions."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot import humanize, parse_values
from bot.commands import Context
from bot.errors import ChatdockError, Conflict, Denied, NotFound, UsageError
from bot.models import ActionItem, ContainerFacts, ContainerView, TextOutput
from bot.policy import MANAGED_LABEL, OWNER_LABEL
from bot.redact import redact_string

MAX_PARALLEL = 8


def split_targets(words: Iterable[str], *, usage: str, at_least: int = 1) -> tuple[str, ...]:
    """Targets separated by spaces or commas (``rm web1, web2``), in order, without repeats."""
    targets: list[str] = []
    for word in words:
        for piece in word.split(","):
            part = piece.strip()
            if part and part not in targets:
                targets.append(part)
    if len(targets) < at_least:
        raise UsageError(f"requires at least {at_least} argument{'s' if at_least > 1 else ''}", usage=usage)
    return tuple(targets)


def one_target(words: list[str], *, usage: str, what: str = "container") -> str:
    if len(words) != 1:
        found = "none" if not words else f"{len(words)}: {' '.join(words)}"
        raise UsageError(f"requires exactly 1 {what} (got {found})", usage=usage)
    return words[0]


def resolved(ctx: Context, ref: str) -> ContainerFacts:
    """The container a single-target command acts on, as the pipeline resolved and checked it."""
    facts = ctx.containers.get(ref)
    if facts is None:
        raise NotFound(ctx.missing.get(ref, f"No such container: {ref}"))
    return facts


def state_conflict(exc: Conflict, facts: ContainerFacts) -> Conflict:
    """The engine's own words for a state conflict (as docker prints them: ``Container web is paused, unpause
    the container before exec``), with the container's full ID, where the engine used it, shown as its name."""
    return Conflict(exc.message.replace(facts.id, facts.name))


def view_from_inspect(data: dict[str, Any], *, now: float | None = None) -> ContainerView:
    """A ContainerView from ``GET /containers/{id}/json``."""
    now = time.time() if now is None else now
    config = data.get("Config") or {}
    labels = config.get("Labels") or {}
    state = data.get("State") or {}
    path = data.get("Path", "")
    args = data.get("Args") or []
    command = " ".join([path, *args]).strip()
    created = parse_values.parse_docker_time(str(data.get("Created", "")))
    ports = (data.get("NetworkSettings") or {}).get("Ports") or {}
    return ContainerView(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        image=config.get("Image", ""),
        command=humanize.truncate_command(command),
        created=humanize.created_ago(created, now) if created else "",
        status=humanize.container_status(state, now),
        state=str(state.get("Status", "")),
        ports=humanize.format_ports(ports),
        owner=labels.get(OWNER_LABEL, ""),
        managed=labels.get(MANAGED_LABEL) == "true",
    )


def ports_from_list(items: list[dict[str, Any]]) -> dict[str, list[dict[str, str]] | None]:
    """Convert ``/containers/json``'s port list to inspect's mapping so one formatter serves both."""
    ports: dict[str, list[dict[str, str]] | None] = {}
    for item in items:
        key = f"{item.get('PrivatePort')}/{item.get('Type', 'tcp')}"
        if item.get("PublicPort"):
            ports.setdefault(key, [])
            bindings = ports[key]
            assert bindings is not None
            bindings.append({"HostIp": str(item.get("IP", "")), "HostPort": str(item["PublicPort"])})
        else:
            ports.setdefault(key, None)
    return ports


def view_from_list(item: dict[str, Any], *, now: float) -> ContainerView:
    """A ContainerView from one entry of ``GET /containers/json`` (no per-container inspect needed)."""
    labels = item.get("Labels") or {}
    names = item.get("Names") or ["/"]
    return ContainerView(
        id=item["Id"],
        name=names[0].lstrip("/"),
        image=item.get("Image", ""),
        command=humanize.truncate_command(redact_string(item.get("Command", ""))),  # sh -c 'API_TOKEN=x ...'
        created=humanize.created_ago(float(item.get("Created", now)), now),
        status=item.get("Status", ""),
        state=item.get("State", ""),
        ports=humanize.format_ports(ports_from_list(item.get("Ports") or [])),
        owner=labels.get(OWNER_LABEL, ""),
        managed=labels.get(MANAGED_LABEL) == "true",
    )


def facts_from_list(item: dict[str, Any]) -> ContainerFacts:
    names = item.get("Names") or ["/"]
    return ContainerFacts(
        id=item["Id"],
        name=names[0].lstrip("/"),
        labels=item.get("Labels") or {},
        image=item.get("Image", ""),
        status=item.get("State", ""),
    )


def for_each_target(
    ctx: Context, targets: tuple[str, ...], action: Callable[[ContainerFacts], ContainerView | None]
) -> tuple[ActionItem, ...]:
    """Run ``action`` on every resolved target concurrently (as docker does); one item per target, in order."""

    def one(ref: str) -> ActionItem:
        facts = ctx.containers.get(ref)
        if facts is None:
            return ActionItem(target=ref, ok=False, error=ctx.missing.get(ref, f"No such container: {ref}"))
        try:
            return ActionItem(target=ref, ok=True, container=action(facts))
        except ChatdockError as exc:
            return ActionItem(target=ref, ok=False, error=exc.message.replace(facts.id, facts.name))

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, max(1, len(targets)))) as pool:
        return tuple(pool.map(one, targets))


def env_assignments(values: list[str]) -> tuple[str, ...]:
    """``-e KEY=VALUE`` values. ``-e KEY`` alone would copy chatdock's own variable: never allowed."""
    for value in values:
        key, has_value, _ = value.partition("=")
        if not has_value:
            raise Denied(
                f"`-e {value}` without a value is never allowed: docker would copy chatdock's own "
                f"environment variable {value} into the container. Write `-e {value}=VALUE`.",
                rule="never:env-passthrough",
            )
        if not key or any(c.isspace() for c in key):
            raise UsageError(f"invalid environment variable: {value}")
    return tuple(values)


def logs_output(name: str, raw: bytes | str | Iterable[bytes], note: str = "") -> TextOutput:
    """A ``logs`` reply (``docker logs`` / ``docker service logs``): the engine's output (bytes, text, or chunks of
    bytes) as lines, every one counted."""
    if not isinstance(raw, bytes | str):
        raw = b"".join(raw)  # docker-py's chunks
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    lines = text.splitlines()
    return TextOutput(
        title=f"logs {name}", text="\n".join(lines), note=note, total_lines=len(lines), shown_lines=len(lines)
    )
