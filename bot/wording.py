"""User-facing words shared by every renderer, so the terminal and Slack say the same things."""

from __future__ import annotations

ACTION_PAST = {"start": "started", "stop": "stopped", "restart": "restarted", "rm": "removed"}
NETWORK_PAST = {"create": "created", "connect": "connected", "disconnect": "disconnected", "rm": "removed"}

STATE_EMOJI = {
    "running": "🟢",
    "created": "⚪",
    "restarting": "🔄",
    "paused": "⏸️",
    "exited": "🔴",
    "dead": "⚫",
    "removing": "🗑️",
    "removed": "🗑️",
}

PS_HEADERS = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
NETWORK_HEADERS = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]


def denied(reason: str, rule: str) -> str:
    return f"Denied: {reason} (rule: {rule})"


def usage_error(message: str, usage: str | None) -> str:
    text = f"Error: {message}"
    if usage:
        text += f"\nUsage: {usage}"
    return text


def error(message: str) -> str:
    return f"Error: {message}"


def hidden_note(count: int) -> str:
    return f"({count} container{'s' if count != 1 else ''} outside chatdock's scope not shown)"


def more_lines(count: int) -> str:
    return f"… {count:,} more line{'s' if count != 1 else ''}"
