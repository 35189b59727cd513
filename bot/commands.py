"""The shape of a command, and the registry that maps what people type to it.

A command is its grammar (flags, usage, examples), a builder from parsed words to a typed request, and the
handler that carries it out. ``plan`` (for mutating commands) returns the Engine API requests the command
would send: policy reads them, ``--dry-run`` shows them, and the handler sends exactly those.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.engine import Engine
from bot.errors import UsageError
from bot.flags import Grammar, Parsed, parse
from bot.hosts import DEFAULT_NAME, HostSet
from bot.models import Actor, ContainerFacts, ImageFacts, NetworkFacts, Progress, Request, Result
from bot.policy import Policy
from bot.redact import SecretSink


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
    # the inspect documents the containers were resolved with, by container ID (see :meth:`inspected`)
    documents: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    networks: Mapping[str, NetworkFacts] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)
    in_scope: Callable[[ContainerFacts], bool] = lambda _c: False
    run_timeout: float = 60.0
    exec_timeout: float = 30.0
    history: Callable[..., list[dict[str, Any]]] | None = None
    # Secrets of the containers this request reads or creates; the pipeline masks them in the reply. A handler
    # that creates a container (or reads one the pipeline did not resolve) adds its inspect document here.
    secrets: SecretSink = field(default_factory=SecretSink)
    images: Mapping[str, ImageFacts] = field(default_factory=dict)
    missing_images: Mapping[str, str] = field(default_factory=dict)
    progress: Callable[[Progress], None] = lambda _p: None
    """Where a long handler (a pull) reports how far it has come; each front door shows it its own way."""
    hosts: HostSet | None = None  # every configured host (``context ls``); ``engine`` is the chosen one's
    host: str = DEFAULT_NAME
    # another host's policy and scope test (a read across every host runs each host's share with its own)
    scope_on: Callable[[str], tuple[Policy, Callable[[ContainerFacts], bool]]] | None = None
    approvals: Any = None  # the pending approvals (bot.approvals.Approvals), for the `approvals` command

    def inspected(self, facts: ContainerFacts) -> dict[str, Any]:
        """``GET /containers/{id}/json`` of a resolved target: the document it was resolved with a moment ago
        in this request (one engine round trip less, which counts over SSH), else a fresh read."""
        document = self.documents.get(facts.id)
        if document is not None:
            return document
        data: dict[str, Any] = self.engine.read(self.engine.api.inspect_container, facts.id)
        return data


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
    preview: Callable[[Context, Any], tuple[str, ...]] | None = None
    """For ``--dry-run``: what the command would do, in words (beyond the Engine requests)."""

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

    def families(self) -> list[str]:
        """The words that only start commands (``network``, ``container``), as docker's management commands."""
        singles = {spelling[0] for spelling in self._spellings if len(spelling) == 1}
        return sorted({spelling[0] for spelling in self._spellings if len(spelling) > 1} - singles)

    def family(self, word: str) -> list[tuple[str, Command]]:
        """``(spelling, command)`` for each command spelled ``WORD SUBCOMMAND``, in registration order, one
        spelling per command (``network`` → network ls, network create, ...)."""
        found: dict[str, str] = {}
        for spelling, command in self._spellings.items():
            if len(spelling) == 2 and spelling[0] == word:
                found.setdefault(command.name, " ".join(spelling))
        return [(found[name], command) for name, command in self.commands.items() if name in found]

    def match(self, words: list[str]) -> tuple[Command, list[str]]:
        """Find the command the words start with (longest spelling first); return it and the rest.

        An unknown command is an error that offers the closest spellings (``rnu`` → ``run``, ``netwrok ls`` →
        ``network ls``), found with difflib as git and docker's own CLI suggest commands."""
        for length in (3, 2, 1):
            key = tuple(words[:length])
            if len(key) == length and key in self._spellings:
                return self._spellings[key], words[length:]
        if not words:
            raise UsageError("no command given. Try `help`.")
        if words[0] in self.families() and len(words) == 1:
            subcommands = ", ".join(f"`{spelling}`" for spelling, _ in self.family(words[0]))
            raise UsageError(f"`{words[0]}` needs a command: {subcommands}. See `help {words[0]}`.")
        family = words[0] in self.families()
        attempted = " ".join(words[:2]) if family else words[0]
        hint = did_you_mean(self.suggest(words))
        raise UsageError(f"unknown command: `{attempted}`.{hint} Try `help` for the commands you may run.")

    def suggest(self, words: list[str], *, limit: int = 3) -> list[str]:
        """The spellings closest to what ``words`` start with (a typo of a command or of a family's command).

        Swapped letters come first (``sp`` → ``ps``, which difflib's ratio ranks low in short words), then
        difflib's close matches; a family whose command is typed exactly wins (``net ls`` → ``network ls``)."""
        if not words:
            return []
        families = self.families()
        singles = sorted({s[0] for s in self._spellings if len(s) == 1})
        first = words[0].lower()
        heads = [first] if first in families else _close(first, [*singles, *families], limit)
        typed = words[1].lower() if len(words) > 1 else ""
        exact: list[str] = []
        found: list[str] = []
        for head in heads:
            if head not in families or not typed:
                found.append(head)
                continue
            seconds = sorted({s[1] for s in self._spellings if len(s) == 2 and s[0] == head})
            if typed in seconds:
                exact.append(f"{head} {typed}")
            else:
                found += [f"{head} {second}" for second in _close(typed, seconds, limit)]
        return (exact or found)[:limit]


def _close(word: str, candidates: list[str], limit: int) -> list[str]:
    swapped = [c for c in candidates if c != word and sorted(c) == sorted(word)]
    near = difflib.get_close_matches(word, candidates, n=limit, cutoff=0.6)
    return list(dict.fromkeys([*swapped, *near]))[:limit]


def did_you_mean(suggestions: list[str]) -> str:
    """`` Did you mean `run`?`` (with a leading space), or nothing."""
    if not suggestions:
        return ""
    if len(suggestions) == 1:
        return f" Did you mean `{suggestions[0]}`?"
    return " Did you mean one of " + ", ".join(f"`{s}`" for s in suggestions) + "?"
