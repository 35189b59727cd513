"""``help``, and the usage lines it and every error show: they must offer only what the commands accept.

Help reads only the policy and the registry; the pipeline runs it as any other command (a real engine handle is
passed, never called).
"""

from __future__ import annotations

import re

import pytest

from bot.engine import Engine
from bot.flags import Flag, parse
from bot.models import Actor, HelpText
from bot.pipeline import Pipeline
from bot.policy import Policy
from handlers import build_registry
from tests.conftest import make_pipeline

VIEWER = Actor(user="UVIEW", channel="C1")
ADMIN = Actor(user="UADMIN", channel="C1")


@pytest.fixture
def team(engine: Engine, team_policy: Policy) -> Pipeline:
    return make_pipeline(engine, team_policy)


def helped(pipeline: Pipeline, text: str, actor: Actor = ADMIN) -> HelpText:
    outcome = pipeline.handle(text, actor)
    assert outcome.error is None, outcome.error
    assert isinstance(outcome.result, HelpText)
    return outcome.result


NETWORK_LINES = [
    "network ls [-q] [-f KEY=VALUE]  —  list networks",
    "network create [--driver bridge] [--internal] [-l KEY=VALUE] NAME  —  create a user-defined bridge network",
    "network connect [--alias ALIAS] NETWORK CONTAINER  —  connect a container to a network",
    "network disconnect [-f] NETWORK CONTAINER  —  disconnect a container from a network",
    "network inspect NETWORK  —  show a network and its containers",
    "network rm [-f] NETWORK [NETWORK...]  —  remove networks",
]


@pytest.mark.parametrize(
    "text", ["help network", "help /net", "help net", "/net help", "/net --help", "network -h", "help docker network"]
)
def test_help_for_a_family_lists_its_commands(team: Pipeline, text: str) -> None:
    shown = helped(team, text)
    assert shown.title == "help network"
    assert list(shown.lines[: len(NETWORK_LINES)]) == NETWORK_LINES
    assert shown.lines[-1] == "`help network COMMAND` for its options and examples."


def test_a_family_lists_what_you_may_not_run_as_such(team: Pipeline) -> None:
    lines = helped(team, "help network", VIEWER).lines
    assert lines[0] == "network ls [-q] [-f KEY=VALUE]  —  list networks"
    assert lines[1].endswith("create a user-defined bridge network  (not granted to you)")


def test_help_for_container_shows_the_container_spellings(team: Pipeline) -> None:
    lines = helped(team, "help container").lines
    assert "container ls [-a] [-q] [-n N] [-f KEY=VALUE]  —  list containers" in lines
    assert "container top CONTAINER  —  list a container's processes" in lines


@pytest.mark.parametrize(
    ("text", "title"),
    [("help /net ls", "help network ls"), ("help /docker run", "help run"), ("help docker ps", "help ps")],
)
def test_help_takes_the_command_as_typed_in_slack(team: Pipeline, text: str, title: str) -> None:
    assert helped(team, text).title == title


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("help rnu", "no help for `rnu`: unknown command. Did you mean `run`?"),
        ("help netwrok", "no help for `netwrok`: unknown command. Did you mean `network`?"),
        ("help /net lss", "no help for `network lss`: unknown command. Did you mean `network ls`?"),
        ("help kill", "no help for `kill`: unknown command."),
    ],
)
def test_help_for_a_typo_suggests(team: Pipeline, text: str, message: str) -> None:
    outcome = team.handle(text, ADMIN)
    assert outcome.error is not None
    assert (outcome.error.kind, outcome.error.message) == ("usage", message)


# ------------------------------------------------------------------------------------ usage lines vs grammar

_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
COMMANDS = list(build_registry().commands.values())


def _sample(flag: Flag) -> list[str]:
    return ["1"] if flag.takes_value else []


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_every_option_a_usage_line_shows_is_accepted(command: object) -> None:
    from bot.commands import Command

    assert isinstance(command, Command)
    usage = command.grammar.usage
    shown = _OPTION.findall(usage)
    for option in shown:
        names = [option] if option.startswith("--") else [f"-{letter}" for letter in option[1:]]  # -it = -i -t
        for name in names:
            found = command.grammar.lookup(name)
            assert isinstance(found, Flag), f"{usage!r} shows {name}, which `{command.name}` does not accept"
            parsed = parse(command.grammar, [name, *_sample(found)])
            assert found.dest in parsed.seen
    # a placeholder for options is offered only by a command that takes options, and only its own
    for placeholder in re.findall(r"\[([^\[\]]*OPTIONS)\]", usage):
        assert placeholder == "OPTIONS", f"{usage!r} offers {placeholder!r}, which chatdock does not take"
        assert [f for f in command.grammar.flags if not f.hidden], f"{usage!r} offers OPTIONS but takes none"
