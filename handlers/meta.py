"""Commands about chatdock itself: ``help`` (only what the caller may run)."""

from __future__ import annotations

from collections.abc import Callable

from bot.commands import Command, Context, did_you_mean
from bot.errors import UsageError
from bot.flags import Grammar, Parsed
from bot.models import HelpText, Request
from bot.pipeline import PREFIXES
from bot.policy import ANY, commands_for

HELP_USAGE = "help [COMMAND]"


class HelpRequest(Request):
    command = "help"
    topic: tuple[str, ...] = ()


def build_help(parsed: Parsed) -> HelpRequest:
    """The topic as the command would be typed: ``help /net ls``, ``help docker run`` and ``help net`` too."""
    words = list(parsed.positionals)
    if words[:1] == ["net"]:
        words[0] = "network"
    if words and words[0].lower() in PREFIXES:
        words = [*PREFIXES[words[0].lower()], *words[1:]]
    return HelpRequest(topic=tuple(words))


def run_help(ctx: Context, request: HelpRequest) -> HelpText:
    """Usage lines and examples, listing only the commands the caller's grants allow."""
    allowed, roles = commands_for(ctx.policy, ctx.actor)

    def may(name: str) -> bool:
        return ANY in allowed or name in allowed

    if len(request.topic) == 1 and request.topic[0] in ctx.registry.families():
        return _family_help(ctx, request.topic[0], may)
    if request.topic:
        try:
            command, rest = ctx.registry.match(list(request.topic))
        except UsageError:
            hint = did_you_mean(ctx.registry.suggest(list(request.topic)))
            raise UsageError(
                f"no help for `{' '.join(request.topic)}`: unknown command.{hint}", usage=HELP_USAGE
            ) from None
        if rest:
            raise UsageError(f"no help for `{' '.join(request.topic)}`", usage=HELP_USAGE)
        lines = [f"Usage: {command.grammar.usage}", "", command.summary]
        flags = command.grammar.flag_help()
        if flags:
            lines += ["", "Options:", *(f"  {line}" for line in flags)]
        if command.aliases:
            lines += ["", "Also spelled: " + ", ".join(command.aliases)]
        if command.examples:
            lines += ["", "Examples:", *(f"  {example}" for example in command.examples)]
        if not may(command.name):
            lines += ["", "You may not run this command here (no grant gives it to you)."]
        return HelpText(title=f"help {command.name}", lines=tuple(lines))
    lines = []
    for name, command in ctx.registry.commands.items():
        if may(name):
            lines.append(f"{command.grammar.usage}  —  {command.summary}")
    if not lines:
        lines.append("No grant lets you run any command here. Ask an admin to add you to the policy.")
    else:
        lines += [
            "",
            "`help COMMAND` for its options and examples. Commands that change something take "
            "`--dry-run` to show what they would send to Docker.",
        ]
    who = f"roles: {', '.join(sorted(set(roles)))}" if roles else "no roles"
    return HelpText(title=f"chatdock: what you may run ({who})", lines=tuple(lines))


def _family_help(ctx: Context, family: str, may: Callable[[str], bool]) -> HelpText:
    """``help network``: the family's commands (docker's management-command help), marking those not granted."""
    lines = []
    for spelling, command in ctx.registry.family(family):
        usage = command.grammar.usage
        if not usage.startswith(spelling):  # an alias: show it as typed (``container ls``, usage ``ps ...``)
            usage = spelling + usage.removeprefix(command.name)
        mark = "" if may(command.name) else "  (not granted to you)"
        lines.append(f"{usage}  —  {command.summary}{mark}")
    lines += ["", f"`help {family} COMMAND` for its options and examples."]
    return HelpText(title=f"help {family}", lines=tuple(lines))


COMMANDS = (
    Command(
        "help",
        Grammar(usage=HELP_USAGE),
        "show the commands you may run",
        build_help,
        run_help,
        examples=("help", "help run", "help network", "help network connect"),
    ),
)
