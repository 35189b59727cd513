"""User-facing words shared by every renderer, so the terminal and Slack say the same things."""

from __future__ import annotations

from bot.humanize import bytes_decimal

ACTION_PAST = {"start": "started", "stop": "stopped", "restart": "restarted", "rm": "removed", "rmi": "removed"}
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
BUTTON_LABEL = {
    "start": "▶️ Start",
    "stop": "⏹️ Stop",
    "restart": "🔄 Restart",
    "logs": "📜 Logs",
    "rm": "🗑️ Remove",
    "rmi": "🗑️ Remove image",
}
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
    label = {
        "start": "Start",
        "stop": "Stop",
        "restart": "Restart",
        "logs": "Logs",
        "rm": "Remove",
        "rmi": "Remove image",
    }.get(action)
    return f"{label} clicked by {mention}" if label else f"requested by {mention} (button)"


def request_line(request_id: str) -> str:
    return f"request {request_id}"


HOST_HEADER = "HOST"


def host_line(host: str) -> str:
    """Which configured host a reply is about (shown only when CHATDOCK_HOSTS names several)."""
    return "every host" if host == "*" else f"host {host}"


def confirm_title(action: str, name: str) -> str:
    return f"{'Remove' if action in ('rm', 'rmi') else action.capitalize()} {name}?"


def confirm_text(action: str, name: str) -> str:
    if action == "rm":
        return f"This removes the container {name} and its writable layer. It cannot be undone."
    if action == "rmi":
        return (
            f"This removes the image {name} from this host (every tag of it). Containers using it keep it; "
            "pulling it again needs the registry."
        )
    return f"This stops the container {name}. Whatever it serves will be unavailable until someone starts it."


def confirm_button(action: str) -> str:
    return "Remove" if action in ("rm", "rmi") else action.capitalize()


def earlier_lines(count: int) -> str:
    return f"… {count:,} earlier line{'s' if count != 1 else ''}"


def full_output_in(filename: str) -> str:
    return f"Cut to fit Slack; the whole output is attached as {filename}."


def document_in(filename: str) -> str:
    return f"The whole document is attached as {filename}."


# Why Slack refused a file, as the person in the channel can fix it (Slack's error code → what to do).
_ATTACH_FIXES = {
    "not_in_channel": "chatdock is not a member of this channel: invite it with `/invite @chatdock`, then run the "
    "command again",
    "channel_not_found": "chatdock cannot see this channel: invite it with `/invite @chatdock`, then run the command "
    "again",
    "missing_scope": "the Slack app lacks the `files:write` scope: an admin adds it (see manifest.yml) and reinstalls "
    "the app",
    "no_permission": "the Slack app may not upload files here: an admin adds the `files:write` scope and reinstalls "
    "the app",
    "not_allowed_token_type": "the Slack app may not upload files with its token: an admin adds the `files:write` "
    "scope and reinstalls the app",
    "file_uploads_disabled": "this workspace does not allow file uploads",
    "file_uploads_except_images_disabled": "this workspace allows only images to be uploaded",
    "restricted_action": "this channel does not allow chatdock to post files",
    "is_archived": "this channel is archived",
}
NOT_ATTACHED_HERE = "replies that replace a message or that only you can see cannot carry files; run the command again"


def not_attached(filename: str, error: str) -> str:
    """The promise "the whole output is attached" taken back: the upload failed; say why and how to fix it."""
    fix = _ATTACH_FIXES.get(error, f"Slack did not take the file (`{error}`); try again, or ask an admin")
    code = f" (Slack: `{error}`)" if error in _ATTACH_FIXES else ""
    return f"⚠️ The whole output could not be attached as {filename}{code}: {fix}."


def waiting(request: object, *, run_timeout: float, exec_timeout: float, stop_wait: int | None = None) -> str:
    """What the shell says while a command takes a while (``stopping web (waits up to 10 s)…``).

    Reads the request by its attributes (``targets``, ``timeout``, ``image``, ...) so that the words stay here.
    ``stop_wait``: the longest stop timeout the targets' own ``StopTimeout`` gives (read by the caller), when
    ``-t`` is not given."""
    command = str(getattr(request, "command", ""))
    targets = ", ".join(getattr(request, "targets", ()) or ())
    if command in ("stop", "restart"):
        timeout = getattr(request, "timeout", None)
        if timeout is None and stop_wait is not None:
            timeout = stop_wait
        wait = f"up to {timeout} s" if timeout is not None else "up to 10 s, or its own stop timeout,"
        verb = "stopping" if command == "stop" else "restarting"
        return f"{verb} {targets} (waits {wait} before killing)…"
    if command == "run" and not getattr(request, "detach", False):
        return f"running {getattr(request, 'image', '')} (waits up to {run_timeout:g} s for it to exit)…"
    if command == "run":
        return f"starting a container from {getattr(request, 'image', '')}…"
    if command == "exec":
        argv = getattr(request, "argv", ()) or ("",)
        return f"running {argv[0]} in {getattr(request, 'target', '')} (waits up to {exec_timeout:g} s)…"
    if command == "stats":
        return "reading stats (each container takes about 2 s, all at once)…"
    verb = {"rm": "removing", "start": "starting"}.get(command, command)
    return f"{verb} {targets}…" if targets else f"{verb}…"


def ps_headline(count: int, *, all_states: bool) -> str:
    if count == 0:
        return "No containers." if all_states else "No running containers."
    noun = "container" if count == 1 else "containers"
    return f"📦 {count:,} {noun}" if all_states else f"📦 {count:,} running {noun}"


def buttons_for_first(shown: int, total: int) -> str:
    return f"Buttons for the first {shown} of {total:,} containers; act on the others by name (`stop NAME`)."


def action_headline(action: str, ok: int, total: int, *, warned: int = 0) -> str:
    verb = ACTION_PAST.get(action, action)
    emoji = ACTION_EMOJI.get(action, "✅")
    if warned == total:
        return "⚠️ Nothing to remove" if action == "rm" else f"⚠️ Nothing to {action}"
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
TOO_LARGE_NOT_ATTACHED = "This reply is too large for a Slack message."


# ------------------------------------------------------------------------------------------ images

IMAGE_HEADERS = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "CONTAINERS"]
NO_IMAGES = "No images."


def size(n: float) -> str:
    """docker images' SIZE ("1.98MB": decimal units, 3 significant digits)."""
    return bytes_decimal(n, 3)


def progress_bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(fraction, 1.0)) * width)
    return "▰" * filled + "▱" * (width - filled) + f" {fraction * 100:3.0f}%"


def progress_line(
    *, layers_done: int, layers_total: int, bytes_done: int, bytes_total: int, rate: float, elapsed: float
) -> str:
    """``3/5 layers · 12.3MB / 50.1MB · 8.1MB/s · 6 s``"""
    parts = [f"{layers_done}/{layers_total} layers" if layers_total else "resolving"]
    if bytes_total:
        parts.append(f"{size(bytes_done)} / {size(bytes_total)}")
    if rate:
        parts.append(f"{size(rate)}/s")
    parts.append(f"{elapsed:.0f} s")
    return " · ".join(parts)


def pulling(image: str) -> str:
    return f"⬇️ Pulling {image}…"


def pulled(image: str, *, up_to_date: bool) -> str:
    return f"✅ {image} is up to date" if up_to_date else f"⬇️ Pulled {image}"


def pull_summary(*, digest: str, size_bytes: int, seconds: float, layers: int) -> str:
    parts = [f"{size(size_bytes)}", f"{layers} layer{'s' if layers != 1 else ''}", f"in {seconds:.1f} s"]
    return (f"{digest} · " if digest else "") + " · ".join(parts)


def pulled_first(image: str, seconds: float) -> str:
    return f"pulled {image} first ({seconds:.1f} s)"


def image_removal_headline(action: str, *, deleted: int, untagged: int, space: int, failed: int) -> str:
    if action == "prune" and not deleted and not untagged and not failed:
        return "🧹 Nothing to prune"
    emoji = "🧹" if action == "prune" else "🗑️"
    text = f"{emoji} {deleted} image{'s' if deleted != 1 else ''} deleted"
    if untagged:
        text += f", {untagged} tag{'s' if untagged != 1 else ''} removed"
    text += f", {size(space)} freed"
    return text + (f"; {failed} failed" if failed else "")


def used_by(names: tuple[str, ...], hidden: int) -> str:
    shown = ", ".join(names)
    if hidden:
        shown += (" + " if shown else "") + f"{hidden} other{'s' if hidden != 1 else ''}"
    return shown or "—"


def interrupted_reply(mention: str, text: str, request_id: str, known: list[str], *, was_posting: bool = False) -> str:
    """The reply another replica sends for a request whose replica died before answering it (``was_posting``:
    it died while posting its own reply, which may or may not have arrived)."""
    facts = "\n".join(f"• {line}" for line in known) or "• nothing more is known; check with `ps -a`"
    how = (
        "it was sending its reply when it stopped, so that reply may be just above"
        if was_posting
        else "another chatdock replica sends this instead"
    )
    return (
        f"⚠️ Interrupted: chatdock stopped while running `{text}` for {mention} (request {request_id}); "
        f"{how}. What is known of the state now:\n{facts}"
    )
