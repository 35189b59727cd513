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


# ------------------------------------------------------------------------------------------ Slack (render_blocks)

ERROR_EMOJI = {
    "denied": "🚫",
    "usage": "⚠️",
    "not_found": "🔍",
    "conflict": "⚠️",
    "engine_unavailable": "🔌",
    "engine_error": "🐳",
    "internal": "💥",
}
ACTION_EMOJI = {"start": "▶️", "stop": "⏹️", "restart": "🔄", "rm": "🗑️", "logs": "📜"}
BUTTON_LABEL = {"start": "▶️ Start", "stop": "⏹️ Stop", "restart": "🔄 Restart", "logs": "📜 Logs", "rm": "🗑️ Remove"}
CONFIRM_CANCEL = "Cancel"
NO_OUTPUT = "(no output)"
OUTPUT_CUT = "(output cut to the last lines)"


def slack_denied(reason: str) -> str:
    return f"🚫 Denied: {reason}"


def rule_line(rule: str) -> str:
    return f"rule: {rule}"


def slack_error(kind: str, message: str) -> str:
    return f"{ERROR_EMOJI.get(kind, '❌')} {message}"


def ack(mention: str, command: str) -> str:
    return f"⏳ {mention} ran {command}"


def requested_by(mention: str) -> str:
    return f"requested by {mention}"


def done_by(action: str, mention: str) -> str:
    """``stopped by @ann`` for a button click that changed something; ``Logs clicked by @ann`` otherwise."""
    if action in ACTION_PAST:
        return f"{ACTION_PAST[action]} by {mention}"
    return clicked_by(action, mention)


def clicked_by(action: str, mention: str) -> str:
    label = {"start": "Start", "stop": "Stop", "restart": "Restart", "logs": "Logs", "rm": "Remove"}.get(action)
    return f"{label} clicked by {mention}" if label else f"requested by {mention} (button)"


def request_line(request_id: str) -> str:
    return f"request {request_id}"


HOST_HEADER = "HOST"


def host_line(host: str) -> str:
    """Which configured host a reply is about (shown only when CHATDOCK_HOSTS names several)."""
    return "every host" if host == "*" else f"host {host}"


def confirm_title(action: str, name: str) -> str:
    return f"{'Remove' if action == 'rm' else action.capitalize()} {name}?"


def confirm_text(action: str, name: str) -> str:
    if action == "rm":
        return f"This removes the container {name} and its writable layer. It cannot be undone."
    return f"This stops the container {name}. Whatever it serves will be unavailable until someone starts it."


def confirm_button(action: str) -> str:
    return "Remove" if action == "rm" else action.capitalize()


def earlier_lines(count: int) -> str:
    return f"… {count:,} earlier line{'s' if count != 1 else ''}"


def full_output_in(filename: str) -> str:
    return f"Cut to fit Slack; the whole output is attached as {filename}."


def ps_headline(count: int, *, all_states: bool) -> str:
    if count == 0:
        return "No containers." if all_states else "No running containers."
    noun = "container" if count == 1 else "containers"
    return f"📦 {count:,} {noun}" if all_states else f"📦 {count:,} running {noun}"


def buttons_for_first(shown: int, total: int) -> str:
    return f"Buttons for the first {shown} of {total:,} containers; act on the others by name (`stop NAME`)."


def action_headline(action: str, ok: int, total: int) -> str:
    verb = ACTION_PAST.get(action, action)
    emoji = ACTION_EMOJI.get(action, "✅")
    if total == 1:
        return f"{emoji} {verb.capitalize()}" if ok else f"❌ Could not {action}"
    return f"{emoji} {verb.capitalize()} {ok} of {total} containers"


def run_detached(name: str) -> str:
    return f"🚀 Started {name}"


def run_removed_after_exit(name: str) -> str:
    return f"{name} already exited and was removed."


def run_exited(name: str, exit_code: int | None, *, removed: bool) -> str:
    emoji = "✅" if exit_code == 0 else "❌"
    return f"{emoji} {name} exited with code {exit_code}" + (", removed" if removed else "")


def run_still_running(name: str, seconds: float, *, remove_on_exit: bool) -> str:
    return (
        f"⏳ {name} is still running after {seconds:g} s. Follow it with `logs {name}`, stop it with `stop {name}`"
        + ("; it will be removed when it exits." if remove_on_exit else ".")
    )


def exec_headline(container: str, exit_code: int | None, *, timed_out: bool) -> str:
    if timed_out:
        return f"⏱️ exec in {container} timed out"
    emoji = "✅" if exit_code == 0 else "❌" if exit_code is not None else "ℹ️"
    return f"{emoji} exec in {container}" + (f": exit code {exit_code}" if exit_code is not None else "")


def shown_lines_note(shown: int, total: int) -> str:
    return f"showing {shown:,} of {total:,} lines"


def dry_run_headline(summary: str) -> str:
    return f"🧪 Dry run: {summary}"


def network_headline(action: str, network: str, *, container: str = "", network_id: str = "") -> str:
    if action == "create":
        return f"🆕 Created network {network}" + (f" `{network_id}`" if network_id else "")
    if action in ("connect", "disconnect"):
        joiner = "to" if action == "connect" else "from"
        return f"🔗 {NETWORK_PAST[action].capitalize()} {container} {joiner} {network}"
    return f"🗑️ Network {NETWORK_PAST.get(action, action)}: {network}"


def more_items(count: int) -> str:
    return f"… {count:,} more"


EMPTY = "(empty)"
REMOVED = "Removed"
HISTORY_HEADERS = ["WHEN", "WHO", "COMMAND", "OUTCOME", "RESULT"]
NO_HISTORY = "No history yet."
NO_NETWORKS = "No networks."
TOO_LARGE = "This reply is too large for a Slack message; the whole of it is attached."
