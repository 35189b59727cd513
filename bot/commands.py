"""The shape of a command, and the registry that maps what people type to it.

A command is its grammar (flags, usage, examples), a builder from parsed words to a typed request, and the
handler that carries it out. ``plan`` (for mutating commands) returns the Engine API requests the command
would send: policy reads them, ``--dry-run`` shows them, and the handler sends exactly those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.engine import Engine
from bot.errors import UsageError
from bot.flags import Grammar, Parsed, parse
from bot.hosts import DEFAULT_NAME, HostSet
from bot.models import Actor, ContainerFacts, NetworkFacts, Request, Result
from bot.policy import Policy


@dataclass(frozen=True)
class EngineCall:
    """One Engine API request, as dry-run shows it and policy reads it."""

    method: str
    path: str
    params: Mapping[str, Any] = field(default_factory=dict)
    body: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.params:
            shown["params"] = dict(self.params)
        if self.body is not None:
            shown["body"] = dict(self.body)
        return shown


@dataclass(frozen=True)
class Context:
    """Everything a handler may use. Targets are resolved (and scope-checked) before the handler runs."""

    engine: Engine
    actor: Actor
    policy: Policy
    registry: Registry
    containers: Mapping[str, ContainerFacts] = field(default_factory=dict)
    networks: Mapping[str, NetworkFacts] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    in_scope: Callable[[ContainerFacts], bool] = lambda _c: False
    run_timeout: float = 60.0
    exec_timeout: float = 30.0
    history: Callable[..., list[dict[str, Any]]] | None = None
    hosts: HostSet | None = None  # every configured host (``context ls``); ``engine`` is the chosen one's
    host: str = DEFAULT_NAME
    # another host's policy and scope test (a read across every host runs each host's share with its own)
    scope_on: Callable[[str], tuple[Policy, Callable[[ContainerFacts], bool]]] | None = None


Handler = Callable[[Context, Any], Result]
Planner = Callable[[Context, Any], list[EngineCall]]


@dataclass(frozen=True)
class Command:
    name: str
    grammar: Grammar
    summary: str
    build: Callable[[Parsed], Request]
    execute: Handler
    plan: Planner | None = None
    aliases: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    slow: bool = False

    def parse(self, words: list[str]) -> Request:
        return self.build(parse(self.grammar, words))


class Registry:
    """Canonical names and aliases (``container ls`` → ``ps``) to commands. Built explicitly, once."""

    def __init__(self, commands: Iterable[Command]) -> None:
        self.commands: dict[str, Command] = {}
        self._spellings: dict[tuple[str, ...], Command] = {}
        for command in commands:
            self.commands[command.name] = command
            for spelling in (command.name, *command.aliases):
                self._spellings[tuple(spelling.split())] = command

    def names(self) -> list[str]:
        return list(self.commands)

    def match(self, words: list[str]) -> tuple[Command, list[str]]:
        """Find the command the words start with (longest spelling first); return it and the rest."""
        for length in (3, 2, 1):
            key = tuple(words[:length])
            if len(key) == length and key in self._spellings:
                return self._spellings[key], words[length:]
        if not words:
            raise UsageError("no command given. Try `help`.")
        family = "network " if words[0] == "network" else ""
        attempted = " ".join(words[:2]) if family else words[0]
        raise UsageError(f"unknown command: `{attempted}`. Try `help` for the commands you may run.")
