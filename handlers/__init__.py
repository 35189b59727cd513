"""chatdock's commands, one module per family; :func:`build_registry` lists them all explicitly."""

from __future__ import annotations

from bot.commands import Command, Registry
from handlers import (
    approvals,
    containers,
    contexts,
    history,
    images,
    inspect,
    meta,
    networks,
    notify,
    run,
    services,
)


def all_commands() -> tuple[Command, ...]:
    return (
        run.COMMAND,
        *containers.COMMANDS,
        *inspect.COMMANDS,
        *networks.COMMANDS,
        *images.COMMANDS,
        *history.COMMANDS,
        *contexts.COMMANDS,
        *services.COMMANDS,
        *notify.COMMANDS,
        *meta.COMMANDS,
        *approvals.COMMANDS,
    )


def build_registry(extra: tuple[Command, ...] = ()) -> Registry:
    return Registry((*all_commands(), *extra))
