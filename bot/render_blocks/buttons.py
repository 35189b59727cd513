"""The button codec: what a button's value carries (action, full ID, the state it was drawn in, the host), and
the strict reading of a click's value (anyone can forge one, so nothing is trusted)."""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from typing import Any

from bot.hosts import HOST_NAME

log = logging.getLogger(__name__)

ACTION_ID_PREFIX = "chatdock:"
BUTTON_ACTIONS = frozenset({"stop", "start", "restart", "logs", "rm", "rmi"})
IMAGE_STATE = "image"  # the "state" an image button carries: images have none; the engine re-checks at the click
DOCKER_STATES = frozenset({"created", "restarting", "running", "removing", "paused", "exited", "dead"})

VALUE_MAX = 2000  # Slack's limit on a button's value
_HEX64 = re.compile(r"[0-9a-f]{64}")

# Which buttons a container in a given state gets, in order.
STATE_BUTTONS: dict[str, tuple[str, ...]] = {
    "running": ("stop", "restart", "logs"),
    "restarting": ("stop", "logs"),
    "paused": ("logs",),
    "exited": ("start", "logs", "rm"),
    "created": ("start", "logs", "rm"),
    "dead": ("logs", "rm"),
    IMAGE_STATE: ("rmi",),
}


# --------------------------------------------------------------------------------------------- buttons

_BUTTON_HOST: ContextVar[str | None] = ContextVar("chatdock_button_host", default=None)


def button_value(action: str, container_id: str, state: str, host: str | None = None) -> str:
    """What a button carries: the action, the container's full ID, the state it was drawn in and, with several
    hosts, the host it is on (``h``), so a click acts there whatever the channel's default is by then."""
    fields = {"a": action, "c": container_id, "s": state, **({"h": host} if host else {})}
    value = json.dumps(fields, separators=(",", ":"))
    _check_button(action, container_id, state, len(value))
    return value


def parse_button(value: str) -> tuple[str, str, str, str | None]:
    """``(action, container_id, state, host)``: :func:`parse_button_value` plus the host (None on buttons drawn
    before several hosts, or with one engine)."""
    action, container_id, state = parse_button_value(value)
    host = json.loads(value).get("h")
    return action, container_id, state, host


def parse_button_value(value: str) -> tuple[str, str, str]:
    """``(action, container_id, state)`` from a click; ``ValueError`` for anything a real button never sends.

    Anyone can forge a click payload, so nothing is trusted: the value must be the exact JSON object
    :func:`button_value` writes, with a known action, a full lowercase container ID and a docker state.
    """
    if not isinstance(value, str) or len(value) > VALUE_MAX:
        raise ValueError("button value is not a string of at most 2000 characters")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("button value repeats a key")
        return dict(items)

    try:
        data = json.loads(value, object_pairs_hook=pairs)
    except RecursionError:
        raise ValueError("button value is nested too deeply") from None
    if not isinstance(data, dict) or set(data) - {"h"} != {"a", "c", "s"}:
        raise ValueError('button value must be an object with exactly "a", "c", "s" (and "h")')
    if "h" in data and not (isinstance(data["h"], str) and HOST_NAME.fullmatch(data["h"])):
        raise ValueError("button host must be a host name")
    action, container_id, state = data["a"], data["c"], data["s"]
    if not all(isinstance(item, str) for item in (action, container_id, state)):
        raise ValueError("button value fields must be strings")
    _check_button(action, container_id, state, len(value))
    return action, container_id, state


def _check_button(action: str, container_id: str, state: str, length: int) -> None:
    if action not in BUTTON_ACTIONS:
        raise ValueError(f"unknown button action {action[:40]!r}")
    if not _HEX64.fullmatch(container_id):
        raise ValueError("container ID must be 64 lowercase hex digits")
    if (action == "rmi") != (state == IMAGE_STATE):
        raise ValueError("an image button goes with the image state, and only it")
    if state not in DOCKER_STATES and state != IMAGE_STATE:
        raise ValueError(f"unknown container state {state[:40]!r}")
    if length > VALUE_MAX:
        raise ValueError("button value longer than 2000 characters")
