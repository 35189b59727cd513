"""A button click as a typed request, built directly (never turned back into text and parsed again).

A button carries an action, a container's (or image's) full ID, the state it was drawn in and, with several
hosts, the host of the message (see :func:`bot.render_blocks.button_value`). Each action is one command with
fixed options; the command's own builder makes the typed request from those values, so a click and the same
command typed in chat are the same request (same policy, same audit, same reply).
"""

from __future__ import annotations

from bot.commands import Registry
from bot.errors import UsageError
from bot.flags import Parsed as Values
from bot.hosts import HostSet
from bot.pipeline import CONTEXT_USAGE
from bot.stages import Parsed

# action → (command, its options as the builder reads them, the options as the audit and replies show them)
BUTTON_COMMANDS: dict[str, tuple[str, dict[str, bool | str | list[str]], tuple[str, ...]]] = {
    "stop": ("stop", {}, ()),
    "start": ("start", {}, ()),
    "restart": ("restart", {}, ()),
    "rm": ("rm", {}, ()),
    "logs": ("logs", {"tail": "50"}, ("--tail", "50")),
    "rmi": ("rmi", {}, ()),  # the value carries the image's full ID
}
STATE_CHANGING = frozenset({"stop", "start", "restart", "rm", "rmi"})


def button_words(action: str, target: str, host: str | None) -> tuple[str, ...]:
    """The command a click stands for, as shown (``--context prod stop <ID>``)."""
    name, _values, shown = BUTTON_COMMANDS[action]
    return (*(("--context", host) if host else ()), *name.split(), *shown, target)


def button_request(registry: Registry, hosts: HostSet, *, action: str, target: str, host: str | None) -> Parsed:
    """The typed request for a click on ``action`` about ``target`` (a full ID), on the message's host: a host
    no longer configured is an error, never the default host instead."""
    if host is not None and host not in hosts.hosts:
        raise UsageError(
            f'context "{host}" does not exist: the hosts are {", ".join(hosts.names())}', usage=CONTEXT_USAGE
        )
    name, values, _shown = BUTTON_COMMANDS[action]
    command = registry.commands[name]
    request = command.build(Values(values=dict(values), positionals=[target]))
    return Parsed(command=command, request=request, words=button_words(action, target, host), host=host)
