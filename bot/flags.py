"""A docker-compatible flag parser (the grammar of docker/cli's cobra + pflag), driven by declared flags.

What docker users rely on, and so what this accepts:
- ``--flag value`` and ``--flag=value``; long flags never abbreviate.
- short bools bundle (``-dit``); a value-taking short flag may end a bundle (``-itp 9090:80``) or carry its
  value attached (``-p9090:80``, ``-p=9090:80``).
- scalar flags: the last one wins; list flags accumulate.
- ``--`` ends the options; for commands that run something (``run``, ``exec``) options also stop at the first
  positional word, so everything after the image is the container's command.
Unknown flags are errors, never passed through. Flags docker has but chatdock must never honour are declared
as ``refused`` so the user learns the rule that forbids them rather than "unknown flag".

Dashes as phones, macOS and Slack's clients type them (:func:`plain_dashes`): every word that starts with
typographic dashes is read as the ASCII option it stands for, and from then on is that option (a refused one
is refused, one after the image is "an option after the image"), so a look-alike can never slip through as an
image or a container's command. Autocorrect makes an em dash of ``--`` and an en dash of ``-``, and some
keyboards an en dash of ``--``; so:

* an em dash (— ― ﹘ ⸺ ⸻), or two dashes of any kind (``–-``, ``-–``, ``——``), is ``--``; followed by a single
  character it is ``-`` (no long option is one letter): ``—all`` → ``--all``, ``—-all`` → ``--all``, ``—a`` → ``-a``;
* one en dash or hyphen look-alike (– ‐ ‑ ‒ − ﹣ － ˗ ⁃ ➖) is ``--`` when the command has that long option and ``-``
  otherwise: ``–rm`` → ``--rm``, ``–name web`` → ``--name web``, ``–all`` → ``--all``, ``–a`` → ``-a``,
  ``–dit`` → ``-dit``, ``exec web ls –la`` → ``ls -la``;
* alone, ``—`` is ``--`` and ``–`` is ``-``.
Any other dash character (〜, ゠, ...) at the start of a word is refused: it only looks like ``-``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from bot.errors import Denied, UsageError

# What each typographic dash at the start of an option word counts for, in ASCII hyphens.
_DASH_WEIGHT = {
    "-": 1,
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2212\ufe63\uff0d\u02d7\u2043\u2796", 1),  # hyphens, en dash, minus
    **dict.fromkeys("\u2014\u2015\ufe58\u2e3a\u2e3b", 2),  # em dashes: what autocorrect makes of "--"
}
_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


class Kind(Enum):
    BOOL = "bool"
    VALUE = "value"
    LIST = "list"


@dataclass(frozen=True)
class Flag:
    """One option: its spellings, where its value goes, and a short help text."""

    names: tuple[str, ...]
    dest: str
    kind: Kind = Kind.BOOL
    metavar: str = ""
    help: str = ""
    hidden: bool = False

    @property
    def takes_value(self) -> bool:
        return self.kind is not Kind.BOOL


@dataclass(frozen=True)
class Refused:
    """A docker flag chatdock recognises only to refuse it, always, whatever the policy says."""

    names: tuple[str, ...]
    rule: str
    reason: str
    takes_value: bool = True


@dataclass(frozen=True)
class Grammar:
    """The options and positional shape of one command."""

    usage: str
    flags: tuple[Flag, ...] = ()
    refused: tuple[Refused, ...] = ()
    positionals: Literal["interspersed", "stop"] = "interspersed"

    def lookup(self, name: str) -> Flag | Refused | None:
        for flag in self.flags:
            if name in flag.names:
                return flag
        for refused in self.refused:
            if name in refused.names:
                return refused
        return None

    def flag_help(self) -> list[str]:
        lines = []
        for flag in self.flags:
            if flag.hidden:
                continue
            names = ", ".join(flag.names)
            value = f" {flag.metavar}" if flag.metavar else ""
            lines.append(f"{names}{value}  {flag.help}".rstrip())
        return lines


@dataclass
class Parsed:
    """Flag values by ``dest`` (bool, str or list of str) and the positional words in order."""

    values: dict[str, bool | str | list[str]] = field(default_factory=dict)
    positionals: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def flag(self, dest: str) -> bool:
        value = self.values.get(dest, False)
        return value if isinstance(value, bool) else bool(value)

    def value(self, dest: str) -> str | None:
        value = self.values.get(dest)
        return value if isinstance(value, str) else None

    def many(self, dest: str) -> list[str]:
        value = self.values.get(dest)
        return list(value) if isinstance(value, list) else []


def _bool_value(flag_name: str, raw: str, usage: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f'invalid argument "{raw}" for "{flag_name}" flag: expected true or false', usage=usage)


def _refuse(refused: Refused, shown: str, value: str | None) -> Denied:
    spelled = shown if value is None else f"{shown} {value}"
    return Denied(f"`{spelled}` is never allowed: {refused.reason}", rule=refused.rule)


def _lookalike_dash(word: str) -> str | None:
    """The first character of ``word`` if it is a dash chatdock does not read as ``-`` (〜, ゠, ...)."""
    first = word[:1]
    if first and first not in _DASH_WEIGHT and unicodedata.category(first) == "Pd":
        return first
    return None


def _lookalike_error(word: str, dash: str, usage: str) -> UsageError:
    return UsageError(
        f"`{word}` starts with U+{ord(dash):04X} ({unicodedata.name(dash, 'a dash')}), which only looks like '-'; "
        "retype it with a plain '-'",
        usage=usage,
    )


def plain_dash(grammar: Grammar, word: str) -> str:
    """``word`` with typographic dashes at its start read as the ASCII option they stand for (see the module
    docstring); any other word as it is. A dash character chatdock does not read is a usage error."""
    run = 0
    while run < len(word) and word[run] in _DASH_WEIGHT:
        run += 1
    leading, rest = word[:run], word[run:]
    odd = _lookalike_dash(rest)
    if odd is not None:
        raise _lookalike_error(word, odd, grammar.usage)
    if leading == "-" * run:  # plain ASCII, or no dash at all
        return word
    weight = sum(_DASH_WEIGHT[char] for char in leading)
    if not rest:
        return "--" if weight >= 2 else "-"
    if weight >= 2:
        return "--" + rest if len(rest) > 1 else "-" + rest
    name = "--" + rest.partition("=")[0]
    return ("--" if len(rest) > 1 and grammar.lookup(name) is not None else "-") + rest


def plain_dashes(grammar: Grammar, words: list[str]) -> list[str]:
    """:func:`plain_dash` for each word: what the parser, policy and the echoed command then all read."""
    return [plain_dash(grammar, word) for word in words]


class _Parser:
    def __init__(self, grammar: Grammar, words: list[str]) -> None:
        self.grammar = grammar
        self.words = words
        self.index = 0
        self.result = Parsed()

    def fail(self, message: str) -> UsageError:
        return UsageError(message, usage=self.grammar.usage)

    def next_value(self, shown: str) -> str:
        if self.index >= len(self.words):
            raise self.fail(f"flag needs an argument: {shown}")
        value = self.words[self.index]
        self.index += 1
        return value

    def store(self, flag: Flag, shown: str, value: str | None) -> None:
        self.result.seen.append(flag.dest)
        if flag.kind is Kind.BOOL:
            self.result.values[flag.dest] = True if value is None else _bool_value(shown, value, self.grammar.usage)
            return
        if value is None:
            value = self.next_value(shown)
        if flag.kind is Kind.LIST:
            existing = self.result.values.setdefault(flag.dest, [])
            assert isinstance(existing, list)
            existing.append(value)
        else:
            self.result.values[flag.dest] = value

    def long(self, word: str) -> None:
        name, has_value, inline = word.partition("=")
        found = self.grammar.lookup(name)
        if found is None:
            raise self.fail(f"unknown flag: {name}")
        if isinstance(found, Refused):
            value = inline if has_value else (self.next_value(name) if found.takes_value else None)
            raise _refuse(found, name, value)
        self.store(found, name, inline if has_value else None)

    def short(self, word: str) -> None:
        letters = word[1:]
        position = 0
        while position < len(letters):
            letter = letters[position]
            name = "-" + letter
            found = self.grammar.lookup(name)
            if found is None:
                raise self.fail(f"unknown shorthand flag: '{letter}' in {word}")
            rest = letters[position + 1 :]
            if isinstance(found, Refused):
                value = None
                if found.takes_value:
                    value = rest.removeprefix("=") if rest else self.next_value(name)
                raise _refuse(found, name, value)
            if found.takes_value:
                self.store(found, name, rest.removeprefix("=") if rest else None)
                return
            if rest.startswith("="):
                self.store(found, name, rest[1:])
                return
            self.store(found, name, None)
            position += 1

    def run(self) -> Parsed:
        while self.index < len(self.words):
            word = self.words[self.index]
            self.index += 1
            if word == "--":
                self.result.positionals.extend(self.words[self.index :])
                break
            if word.startswith("--"):
                self.long(word)
            elif word.startswith("-") and word != "-":
                self.short(word)
            else:
                self.result.positionals.append(word)
                if self.grammar.positionals == "stop":
                    self.result.positionals.extend(self.words[self.index :])
                    break
        return self.result


def parse(grammar: Grammar, words: list[str]) -> Parsed:
    """Parse ``words`` (the text after the command name) against ``grammar``, typographic dashes read first."""
    return _Parser(grammar, plain_dashes(grammar, words)).run()
