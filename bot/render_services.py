"""Swarm services in replies: a scale / update / rollback result as text (the shell) and as a service card (Slack)
with its buttons, and the codec of those buttons.

The card offers **Scale −1 / +1** (a shortcut to ``service scale SERVICE=N`` with N written on the button),
**Logs** (``service logs SERVICE``) and, when an update paused or failed and the engine keeps a previous spec,
**Rollback** (``service rollback SERVICE``). A click is a request by the clicker, through policy and audit like any
other: the button carries only the action, the service's full ID, the replicas (scale) and the host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.hosts import HOST_NAME
from bot.services import ServiceChange, ServiceInspection, ServiceState

SERVICE_ACTION_PREFIX = "chatdock:svc-"  # under the app's ``chatdock:`` action prefix
SERVICE_ACTIONS = frozenset({"scale", "logs", "rollback"})
MAX_SCALE_BUTTON = 10_000
_SERVICE_ID = re.compile(r"[a-z0-9]{25}")
_LABELS = {"logs": "📜 Logs", "rollback": "⏪ Rollback"}

CONVERGED = "✅"
PAUSED = "⏸️"
WAITING = "⏳"
FAILED = "❌"
REMOVED = "🗑️"


# --------------------------------------------------------------------------------------------- buttons


def service_button_value(action: str, service_id: str, *, replicas: int | None = None, host: str = "") -> str:
    fields: dict[str, Any] = {"a": action, "v": service_id}
    if replicas is not None:
        fields["n"] = replicas
    if host:
        fields["h"] = host
    value = json.dumps(fields, separators=(",", ":"))
    parse_service_button(value)
    return value


def parse_service_button(value: str) -> tuple[str, str, int | None, str | None]:
    """``(action, service_id, replicas, host)``; ``ValueError`` for anything a real button never sends (a click
    payload can be forged: nothing in it is trusted)."""
    if not isinstance(value, str) or len(value) > 300:
        raise ValueError("service button value is not a short string")
    data = json.loads(value)
    if not isinstance(data, dict) or not {"a", "v"} <= set(data) <= {"a", "v", "n", "h"}:
        raise ValueError('service button value must be an object with "a", "v" (and "n", "h")')
    action, service_id = data["a"], data["v"]
    if action not in SERVICE_ACTIONS:
        raise ValueError(f"unknown service button action {str(action)[:40]!r}")
    if not isinstance(service_id, str) or not _SERVICE_ID.fullmatch(service_id):
        raise ValueError("service ID must be 25 lowercase letters and digits")
    replicas = data.get("n")
    if (action == "scale") != (replicas is not None):
        raise ValueError("a scale button carries the replicas, and only it")
    if replicas is not None and (
        not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= MAX_SCALE_BUTTON
    ):
        raise ValueError("replicas must be a number from 0 to 10000")
    host = data.get("h")
    if host is not None and not (isinstance(host, str) and HOST_NAME.fullmatch(host)):
        raise ValueError("button host must be a host name")
    return action, service_id, replicas, host


def is_service_action(action: Mapping[str, Any]) -> bool:
    return str(action.get("action_id", "")).startswith(SERVICE_ACTION_PREFIX)


def service_click_text(action: Mapping[str, Any]) -> str:
    """The command a service button stands for (``--context swarm service scale ID=3``); ValueError if forged."""
    verb, service_id, replicas, host = parse_service_button(str(action.get("value", "")))
    if str(action.get("action_id", "")) != SERVICE_ACTION_PREFIX + verb:
        raise ValueError(f"action_id {str(action.get('action_id'))[:80]!r} does not match the value's action {verb!r}")
    on_host = f"--context {host} " if host else ""
    if verb == "scale":
        return f"{on_host}service scale {service_id}={replicas}"
    return f"{on_host}service {verb} {service_id}"


def _button(
    action: str, label: str, service: ServiceState, host: str, *, replicas: int | None = None, style: str | None = None
) -> ButtonElement:
    confirm = None
    if action == "rollback":
        confirm = ConfirmObject(
            title=PlainTextObject(text="Roll back?"),
            text=PlainTextObject(text=f"Revert {service.name[:200]} to its previous spec?"),
            confirm=PlainTextObject(text="Roll back"),
            deny=PlainTextObject(text="Cancel"),
            style="danger",
        )
    return ButtonElement(
        text=PlainTextObject(text=label, emoji=True),
        action_id=SERVICE_ACTION_PREFIX + action,
        value=service_button_value(action, service.id, replicas=replicas, host=host),
        style=style,
        confirm=confirm,
    )


def service_buttons(service: ServiceState, host: str) -> list[ButtonElement]:
    """Scale −1 / +1 (replicated services), Logs, and Rollback when the update paused or failed."""
    if not _SERVICE_ID.fullmatch(service.id):
        return []
    buttons = []
    if service.desired is not None:
        if service.desired > 0:
            buttons.append(
                _button("scale", f"➖ Scale to {service.desired - 1}", service, host, replicas=service.desired - 1)
            )
        if service.desired < MAX_SCALE_BUTTON:
            buttons.append(
                _button("scale", f"➕ Scale to {service.desired + 1}", service, host, replicas=service.desired + 1)
            )
    buttons.append(_button("logs", _LABELS["logs"], service, host))
    if service.can_roll_back and (service.paused or not service.ok):
        buttons.append(_button("rollback", _LABELS["rollback"], service, host, style="danger"))
    return buttons


# --------------------------------------------------------------------------------------------- results


def _verdict(action: str, item: ServiceState) -> tuple[str, str]:
    name = item.name or item.target
    if item.error:
        return FAILED, f"{name}: {item.error}"
    if action == "rm":
        return REMOVED, f"{name}: removed"
    if item.converged:
        return CONVERGED, f"{name}: {action} converged"
    if item.paused:
        return PAUSED, f"{name}: update {item.update_state}"
    return WAITING, f"{name}: still converging after {item.waited:g} s"


def service_change_text(result: Any) -> str:
    """As ``docker service update`` ends: per service, converged or not, and where it stands."""
    assert isinstance(result, ServiceChange)
    lines = []
    for item in result.items:
        _, verdict = _verdict(result.action, item)
        lines.append(verdict if item.error or result.action == "rm" else f"{verdict} ({item.line()})")
    return "\n".join(lines)


def _esc(text: str, limit: int) -> str:
    shown = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def service_change_blocks(result: ServiceChange, block_id: Any) -> tuple[list[dict[str, Any]], str]:
    """The service cards (one per service: verdict, image, tasks, update state, a task's error) and their
    buttons; ``block_id(stem)`` gives unique block IDs. Returns the blocks and the notification fallback."""
    blocks: list[dict[str, Any]] = []
    fallbacks = []
    for item in result.items[:10]:
        emoji, verdict = _verdict(result.action, item)
        fallbacks.append(verdict)
        fields = []
        if not item.error and result.action != "rm":
            wanted = "global" if item.desired is None else str(item.desired)
            fields = [
                f"*Image*\n{_esc(item.image or '—', 400)}",
                f"*Tasks running*\n{item.running}/{wanted}",
                f"*Update*\n{_esc(item.update_state or '—', 100)}",
            ]
            if item.update_message and item.update_state not in ("completed", "rollback_completed"):
                fields.append(f"*Engine says*\n{_esc(item.update_message, 400)}")
            if item.task_error:
                fields.append(f"*Failing task*\n{_esc(item.task_error, 400)}")
        section = SectionBlock(
            block_id=block_id("service"),
            text=MarkdownTextObject(text=f"{emoji} {_esc(verdict, 1500)}"),
            fields=[MarkdownTextObject(text=f) for f in fields] or None,
        )
        blocks.append(section.to_dict())
        buttons = service_buttons(item, result.host) if item.id and result.action != "rm" else []
        if buttons:
            blocks.append(ActionsBlock(block_id=block_id(f"svc-{item.id[:12]}"), elements=buttons).to_dict())
    return blocks, "; ".join(fallbacks)


def service_card_blocks(result: ServiceInspection, block_id: Any) -> list[dict[str, Any]]:
    """The card on ``service inspect``: where the service stands, and its buttons."""
    item = result.service
    if item is None:
        return []
    wanted = "global" if item.desired is None else str(item.desired)
    fields = [f"*Tasks running*\n{item.running}/{wanted}", f"*Update*\n{_esc(item.update_state or '—', 100)}"]
    if item.task_error:
        fields.append(f"*Failing task*\n{_esc(item.task_error, 400)}")
    blocks = [
        SectionBlock(
            block_id=block_id("service"),
            text=MarkdownTextObject(text=f"*{_esc(item.name, 200)}* `{item.id[:12]}`"),
            fields=[MarkdownTextObject(text=f) for f in fields],
        ).to_dict()
    ]
    buttons = service_buttons(item, result.host)
    if buttons:
        blocks.append(ActionsBlock(block_id=block_id(f"svc-{item.id[:12]}"), elements=buttons).to_dict())
    return blocks
