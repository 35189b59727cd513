"""bot.flags: the docker-compatible flag parser, on small grammars of its own and on ``run``'s refusals."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import Denied, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed, Refused, parse, plain_dash
from handlers import run as run_handler

_FLAGS = (
    Flag(("-d", "--detach"), "detach", help="in the background"),
    Flag(("-i", "--interactive"), "interactive"),
    Flag(("-t", "--tty"), "tty"),
    Flag(("--rm",), "rm"),
    Flag(("-p", "--publish"), "publish", Kind.LIST, "PORT", "publish a port"),
    Flag(("-e", "--env"), "env", Kind.LIST, "KEY=VALUE"),
    Flag(("--name",), "name", Kind.VALUE, "NAME", "a name"),
    Flag(("-m", "--memory"), "memory", Kind.VALUE, "BYTES"),
    Flag(("--network", "--net"), "network", Kind.VALUE, "NETWORK"),
    Flag(("--debug",), "debug", help="hidden", hidden=True),
)
_REFUSED = (
    Refused(("--privileged",), "never:privileged", "root on the host", takes_value=False),
    Refused(("-v", "--volume"), "never:host-mounts", "host mounts"),
)
# options stop at the first positional (run, exec) ...
STOP = Grammar(usage="stop-style [OPTIONS] IMAGE [ARG...]", flags=_FLAGS, refused=_REFUSED, positionals="stop")
# ... or may come anywhere (rm, stop, ps)
INTER = Grammar(usage="inter-style [OPTIONS] NAME...", flags=_FLAGS, refused=_REFUSED)


def values(grammar: Grammar, line: str) -> tuple[dict[str, Any], list[str]]:
    parsed = parse(grammar, line.split())
    return parsed.values, parsed.positionals


# --------------------------------------------------------------------------------------- spellings


@pytest.mark.parametrize(
    ("line", "expected_values", "expected_positionals"),
    [
        ("", {}, []),
        ("nginx", {}, ["nginx"]),
        # long and short, separate and attached values
        ("--detach nginx", {"detach": True}, ["nginx"]),
        ("-d nginx", {"detach": True}, ["nginx"]),
        ("--name web nginx", {"name": "web"}, ["nginx"]),
        ("--name=web nginx", {"name": "web"}, ["nginx"]),
        ("--name= nginx", {"name": ""}, ["nginx"]),
        ("--name=a=b nginx", {"name": "a=b"}, ["nginx"]),
        ("-m 256m nginx", {"memory": "256m"}, ["nginx"]),
        ("-m256m nginx", {"memory": "256m"}, ["nginx"]),
        ("-m=256m nginx", {"memory": "256m"}, ["nginx"]),
        ("--memory=256m nginx", {"memory": "256m"}, ["nginx"]),
        ("-p 9090:80 nginx", {"publish": ["9090:80"]}, ["nginx"]),
        ("-p9090:80 nginx", {"publish": ["9090:80"]}, ["nginx"]),
        ("-p=9090:80 nginx", {"publish": ["9090:80"]}, ["nginx"]),
        ("--publish=9090:80 nginx", {"publish": ["9090:80"]}, ["nginx"]),
        ("-p= nginx", {"publish": [""]}, ["nginx"]),
        # aliases land in the same place
        ("--net app nginx", {"network": "app"}, ["nginx"]),
        ("--network=app nginx", {"network": "app"}, ["nginx"]),
        # bundles of short bools
        ("-dit nginx", {"detach": True, "interactive": True, "tty": True}, ["nginx"]),
        ("-it nginx", {"interactive": True, "tty": True}, ["nginx"]),
        ("-ddd nginx", {"detach": True}, ["nginx"]),
        # a value-taking short flag ends a bundle: next word, or the rest of the bundle
        ("-itp 9090:80 nginx", {"interactive": True, "tty": True, "publish": ["9090:80"]}, ["nginx"]),
        ("-dp9090:80 nginx", {"detach": True, "publish": ["9090:80"]}, ["nginx"]),
        ("-dp=9090:80 nginx", {"detach": True, "publish": ["9090:80"]}, ["nginx"]),
        ("-dm 1g nginx", {"detach": True, "memory": "1g"}, ["nginx"]),
        ("-pd nginx", {"publish": ["d"]}, ["nginx"]),
        # booleans take explicit values only when attached with "="
        ("--rm=false nginx", {"rm": False}, ["nginx"]),
        ("--rm=true nginx", {"rm": True}, ["nginx"]),
        ("--rm=FALSE nginx", {"rm": False}, ["nginx"]),
        ("--rm=0 nginx", {"rm": False}, ["nginx"]),
        ("--rm=1 nginx", {"rm": True}, ["nginx"]),
        ("--rm=t nginx", {"rm": True}, ["nginx"]),
        ("--rm=f nginx", {"rm": False}, ["nginx"]),
        ("--rm=yes nginx", {"rm": True}, ["nginx"]),
        ("--rm=no nginx", {"rm": False}, ["nginx"]),
        ("-d=false nginx", {"detach": False}, ["nginx"]),
        ("-id=false nginx", {"interactive": True, "detach": False}, ["nginx"]),
        ("--rm false", {"rm": True}, ["false"]),
        # scalars: the last one wins
        ("--name a --name b nginx", {"name": "b"}, ["nginx"]),
        ("--name=a --name b nginx", {"name": "b"}, ["nginx"]),
        ("-m 1g -m 2g nginx", {"memory": "2g"}, ["nginx"]),
        ("--rm --rm=false nginx", {"rm": False}, ["nginx"]),
        ("--rm=false --rm nginx", {"rm": True}, ["nginx"]),
        # lists accumulate, in order, whatever the spelling
        (
            "-p 1:1 --publish 2:2 -p3:3 -p=4:4 --publish=5:5 nginx",
            {"publish": ["1:1", "2:2", "3:3", "4:4", "5:5"]},
            ["nginx"],
        ),
        ("-e A=1 -e A=2 nginx", {"env": ["A=1", "A=2"]}, ["nginx"]),
        # a value may look like a flag: it is still the value
        ("--name --rm nginx", {"name": "--rm"}, ["nginx"]),
        ("-m -1 nginx", {"memory": "-1"}, ["nginx"]),
        ("-p -- nginx", {"publish": ["--"]}, ["nginx"]),
        # hidden flags parse like any other
        ("--debug nginx", {"debug": True}, ["nginx"]),
        # "-" alone is a positional
        ("- x", {}, ["-", "x"]),
    ],
)
def test_spellings(line: str, expected_values: dict[str, Any], expected_positionals: list[str]) -> None:
    assert values(STOP, line) == (expected_values, expected_positionals)
    assert values(INTER, line)[0] == expected_values


# --------------------------------------------------------------------------------------- positionals


@pytest.mark.parametrize(
    ("grammar", "line", "expected_values", "expected_positionals"),
    [
        # "stop": everything after the first positional is the container's command, flags included
        (STOP, "-d nginx -p 80 --rm", {"detach": True}, ["nginx", "-p", "80", "--rm"]),
        (STOP, "nginx sh -c 'x'", {}, ["nginx", "sh", "-c", "'x'"]),
        (STOP, "nginx --privileged", {}, ["nginx", "--privileged"]),
        (STOP, "nginx --unknown", {}, ["nginx", "--unknown"]),
        (STOP, "nginx -- x", {}, ["nginx", "--", "x"]),
        # "interspersed": flags anywhere
        (INTER, "a -d b --name x c", {"detach": True, "name": "x"}, ["a", "b", "c"]),
        (INTER, "a b -p 1:1 c -p 2:2", {"publish": ["1:1", "2:2"]}, ["a", "b", "c"]),
        # "--" ends the options in both modes; later words are positionals, even "--"
        (STOP, "-d -- -p 80", {"detach": True}, ["-p", "80"]),
        (STOP, "-- nginx -d", {}, ["nginx", "-d"]),
        (INTER, "a -- -d --name x --", {}, ["a", "-d", "--name", "x", "--"]),
        (INTER, "--", {}, []),
    ],
)
def test_positionals(
    grammar: Grammar, line: str, expected_values: dict[str, Any], expected_positionals: list[str]
) -> None:
    assert values(grammar, line) == (expected_values, expected_positionals)


def test_seen_records_every_occurrence_in_order() -> None:
    parsed = parse(INTER, ["-dit", "--name", "a", "-p", "1:1", "--name", "b"])
    assert parsed.seen == ["detach", "interactive", "tty", "name", "publish", "name"]


def test_parsed_accessors() -> None:
    parsed = parse(INTER, ["-d", "--name", "web", "-p", "1:1", "-p", "2:2", "x"])
    assert parsed.flag("detach") is True
    assert parsed.flag("rm") is False
    assert parsed.flag("name") is True  # a value counts as "given"
    assert parsed.value("name") == "web"
    assert parsed.value("memory") is None
    assert parsed.value("publish") is None  # a list is not a scalar
    assert parsed.value("detach") is None
    assert parsed.many("publish") == ["1:1", "2:2"]
    assert parsed.many("env") == []
    assert parsed.many("name") == []
    # many() hands out a copy
    parsed.many("publish").append("3:3")
    assert parsed.many("publish") == ["1:1", "2:2"]
    assert Parsed().values == {} and Parsed().positionals == [] and Parsed().seen == []


# --------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("line", "message"),
    [
        # unknown flags are errors, never passed through; long flags never abbreviate
        ("--foo nginx", "unknown flag: --foo"),
        ("--foo=bar nginx", "unknown flag: --foo"),
        ("--nam web nginx", "unknown flag: --nam"),
        ("--detached nginx", "unknown flag: --detached"),
        ("---d nginx", "unknown flag: ---d"),
        ("--NAME x nginx", "unknown flag: --NAME"),
        ("-z nginx", "unknown shorthand flag: 'z' in -z"),
        ("-dz nginx", "unknown shorthand flag: 'z' in -dz"),
        ("-diZt nginx", "unknown shorthand flag: 'Z' in -diZt"),
        ("-D nginx", "unknown shorthand flag: 'D' in -D"),
        # a long name with one dash is a bundle of shorts
        ("-name web nginx", "unknown shorthand flag: 'n' in -name"),
        # missing values
        ("--name", "flag needs an argument: --name"),
        ("-d --memory", "flag needs an argument: --memory"),
        ("-p", "flag needs an argument: -p"),
        ("-dp", "flag needs an argument: -p"),
        ("-itm", "flag needs an argument: -m"),
        # bad booleans
        ("--rm=maybe nginx", 'invalid argument "maybe" for "--rm" flag: expected true or false'),
        ("--rm= nginx", 'invalid argument "" for "--rm" flag: expected true or false'),
        ("-d=2 nginx", 'invalid argument "2" for "-d" flag: expected true or false'),
        ("--detach=on nginx", 'invalid argument "on" for "--detach" flag: expected true or false'),
    ],
)
@pytest.mark.parametrize("grammar", [STOP, INTER], ids=["stop", "interspersed"])
def test_usage_errors(grammar: Grammar, line: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(grammar, line.split())
    assert caught.value.message == message
    assert caught.value.usage == grammar.usage


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("--privileged nginx", "`--privileged`"),
        ("--privileged=true nginx", "`--privileged true`"),
        ("--privileged=false nginx", "`--privileged false`"),  # refused in any form, not interpreted
        ("-v /:/host nginx", "`-v /:/host`"),
        ("-v/:/host nginx", "`-v /:/host`"),
        ("-v=/:/host nginx", "`-v /:/host`"),
        ("--volume /:/host nginx", "`--volume /:/host`"),
        ("--volume=/:/host nginx", "`--volume /:/host`"),
        ("-dv /:/host nginx", "`-v /:/host`"),
        ("-itv/:/host nginx", "`-v /:/host`"),
        ("-dv=/:/host nginx", "`-v /:/host`"),
        ("--name web -d --privileged nginx", "`--privileged`"),
    ],
)
def test_refused_flags_name_their_rule(line: str, shown: str) -> None:
    with pytest.raises(Denied) as caught:
        parse(INTER, line.split())
    rule, reason = (
        ("never:privileged", "root on the host") if "privileged" in line else ("never:host-mounts", "host mounts")
    )
    assert caught.value.message == f"{shown} is never allowed: {reason}"
    assert caught.value.rule == rule


def test_refused_flag_without_its_value_is_a_usage_error() -> None:
    # "-v" needs a value even to be refused; pflag would say the same
    with pytest.raises(UsageError) as caught:
        parse(INTER, ["-v"])
    assert caught.value.message == "flag needs an argument: -v"


def test_refusal_after_the_image_is_only_the_containers_command() -> None:
    # with positionals="stop", "--privileged" after the image is an argument, not an option
    assert values(STOP, "nginx --privileged") == ({}, ["nginx", "--privileged"])


# --------------------------------------------------------------------------------------- grammar helpers


def test_lookup() -> None:
    assert STOP.lookup("--net") is _FLAGS[8]
    assert STOP.lookup("--network") is _FLAGS[8]
    assert STOP.lookup("-d") is _FLAGS[0]
    assert STOP.lookup("-v") is _REFUSED[1]
    assert STOP.lookup("--privileged") is _REFUSED[0]
    assert STOP.lookup("--nope") is None
    assert STOP.lookup("d") is None


def test_flag_help_lists_visible_flags_with_metavars() -> None:
    assert STOP.flag_help() == [
        "-d, --detach  in the background",
        "-i, --interactive",
        "-t, --tty",
        "--rm",
        "-p, --publish PORT  publish a port",
        "-e, --env KEY=VALUE",
        "--name NAME  a name",
        "-m, --memory BYTES",
        "--network, --net NETWORK",
    ]


def test_takes_value() -> None:
    assert Flag(("-d",), "d").takes_value is False
    assert Flag(("-n",), "n", Kind.VALUE).takes_value is True
    assert Flag(("-p",), "p", Kind.LIST).takes_value is True


# --------------------------------------------------------------------------------------- run's refusals


_RUN_REFUSALS = [
    # (spelling, rule, shown)
    ("--privileged", "never:privileged", "`--privileged`"),
    ("--privileged=true", "never:privileged", "`--privileged true`"),
    ("--privileged=1", "never:privileged", "`--privileged 1`"),
    ("-v /:/host", "never:host-mounts", "`-v /:/host`"),
    ("-v/var/run/docker.sock:/s", "never:host-mounts", "`-v /var/run/docker.sock:/s`"),
    ("-dv /:/host", "never:host-mounts", "`-v /:/host`"),
    ("-itdv=/:/host", "never:host-mounts", "`-v /:/host`"),
    ("--volume /:/host", "never:host-mounts", "`--volume /:/host`"),
    ("--volume=data:/data", "never:host-mounts", "`--volume data:/data`"),
    ("--mount type=bind,src=/,dst=/h", "never:host-mounts", "`--mount type=bind,src=/,dst=/h`"),
    ("--mount=type=volume,dst=/d", "never:host-mounts", "`--mount type=volume,dst=/d`"),
    ("--volumes-from db", "never:volumes-from", "`--volumes-from db`"),
    ("--device /dev/sda", "never:devices", "`--device /dev/sda`"),
    ("--device-cgroup-rule=a", "never:devices", "`--device-cgroup-rule a`"),
    ("--gpus all", "never:devices", "`--gpus all`"),
    ("--cap-add SYS_ADMIN", "never:cap-add", "`--cap-add SYS_ADMIN`"),
    ("--cap-add=ALL", "never:cap-add", "`--cap-add ALL`"),
    ("--security-opt seccomp=unconfined", "never:security-opt", "`--security-opt seccomp=unconfined`"),
    ("--security-opt=no-new-privileges", "never:security-opt", "`--security-opt no-new-privileges`"),
    ("--pid host", "never:host-namespaces", "`--pid host`"),
    ("--pid=host", "never:host-namespaces", "`--pid host`"),
    ("--ipc=host", "never:host-namespaces", "`--ipc host`"),
    ("--uts host", "never:host-namespaces", "`--uts host`"),
    ("--userns=host", "never:host-namespaces", "`--userns host`"),
    ("--cgroupns host", "never:host-namespaces", "`--cgroupns host`"),
    ("--sysctl net.ipv4.ip_forward=1", "never:host-tuning", "`--sysctl net.ipv4.ip_forward=1`"),
    ("--runtime=runc", "never:host-tuning", "`--runtime runc`"),
    ("--cgroup-parent /", "never:host-tuning", "`--cgroup-parent /`"),
    ("--use-api-socket", "never:docker-socket", "`--use-api-socket`"),
    ("--env-file /etc/passwd", "never:env-file", "`--env-file /etc/passwd`"),
]


@pytest.mark.parametrize(("spelling", "rule", "shown"), _RUN_REFUSALS)
def test_run_grammar_refusals(spelling: str, rule: str, shown: str) -> None:
    words = ["-d", "--name", "web", *spelling.split(), "nginx"]
    with pytest.raises(Denied) as caught:
        parse(run_handler.GRAMMAR, words)
    assert caught.value.rule == rule
    assert caught.value.message.startswith(f"{shown} is never allowed: ")


def test_every_run_refusal_is_covered() -> None:
    covered = {spelling.split()[0].split("=")[0] for spelling, _, _ in _RUN_REFUSALS}
    covered = {"-v" if word.startswith(("-dv", "-itdv", "-v")) else word for word in covered}
    declared = {name for refused in run_handler.REFUSED for name in refused.names}
    assert declared == covered


# --------------------------------------------------------------------------------------- typographic dashes

EN, EM = "\u2013", "\u2014"


@pytest.mark.parametrize(
    ("word", "read"),
    [
        # an em dash, or two dashes of any kind, is "--" (autocorrect makes "—" of "--")
        (f"{EM}rm", "--rm"),
        (f"{EM}name=web", "--name=web"),
        (f"{EM}-rm", "--rm"),
        (f"{EN}-rm", "--rm"),
        (f"-{EN}rm", "--rm"),
        (f"{EN}{EN}rm", "--rm"),
        (f"{EM}{EM}rm", "--rm"),
        ("\u2010\u2010rm", "--rm"),
        ("\u2212\u2212rm", "--rm"),
        ("\uff0d\uff0drm", "--rm"),
        (f"{EM}unknown", "--unknown"),
        # ... but before one letter it is "-": no long option is one letter
        (f"{EM}d", "-d"),
        # one en dash or hyphen look-alike is "--" before one of the command's long options, "-" otherwise
        (f"{EN}rm", "--rm"),
        (f"{EN}name", "--name"),
        (f"{EN}name=web", "--name=web"),
        (f"{EN}network=app", "--network=app"),
        (f"{EN}d", "-d"),
        (f"{EN}dit", "-dit"),
        (f"{EN}p8080:80", "-p8080:80"),
        (f"{EN}la", "-la"),
        ("\u2010d", "-d"),
        ("\u2011d", "-d"),
        ("\u2012d", "-d"),
        ("\u2212v", "-v"),
        ("\ufe63d", "-d"),
        ("\u02d7d", "-d"),
        ("\u2043d", "-d"),
        ("\u2796d", "-d"),
        ("\u2015rm", "--rm"),
        ("\ufe58rm", "--rm"),
        ("\u2e3arm", "--rm"),
        # alone: em dash "--", en dash "-"
        (EM, "--"),
        (EN, "-"),
        (f"{EN}{EN}", "--"),
        # anything else is left alone
        ("-d", "-d"),
        ("--rm", "--rm"),
        ("web", "web"),
        (f"a{EM}b", f"a{EM}b"),
        ("", ""),
    ],
)
def test_typographic_dashes_are_read_as_the_option_meant(word: str, read: str) -> None:
    assert plain_dash(STOP, word) == read


@pytest.mark.parametrize(
    ("line", "expected_values", "expected_positionals"),
    [
        (f"{EN}d {EM}name web {EN}rm nginx", {"detach": True, "name": "web", "rm": True}, ["nginx"]),
        (f"{EN}dit nginx", {"detach": True, "interactive": True, "tty": True}, ["nginx"]),
        (f"{EN}p 80 {EM}-publish=81 nginx", {"publish": ["80", "81"]}, ["nginx"]),
        # after the image the words are the container's, read as the person meant them
        (f"nginx ls {EN}la {EM}all", {}, ["nginx", "ls", "-la", "--all"]),
        (f"nginx echo a {EN} b {EM} c", {}, ["nginx", "echo", "a", "-", "b", "--", "c"]),
    ],
)
def test_options_typed_with_typographic_dashes(
    line: str, expected_values: dict[str, Any], expected_positionals: list[str]
) -> None:
    assert values(STOP, line) == (expected_values, expected_positionals)


@pytest.mark.parametrize(
    "line",
    [f"{EM}privileged nginx", "\u2010\u2010privileged nginx", f"{EN}privileged nginx", "\u2212\u2212privileged=1 x"],
)
def test_a_refused_flag_with_typographic_dashes_is_still_refused(line: str) -> None:
    with pytest.raises(Denied) as caught:
        parse(STOP, line.split())
    assert caught.value.rule == "never:privileged"


@pytest.mark.parametrize("line", ["\u2212v /:/h nginx", f"{EM}volume=/:/h nginx", f"{EN}v /:/h x", f"{EN}dv /:/h x"])
def test_a_refused_short_flag_with_typographic_dashes_is_still_refused(line: str) -> None:
    with pytest.raises(Denied) as caught:
        parse(INTER, line.split())
    assert caught.value.rule == "never:host-mounts"


@pytest.mark.parametrize(
    ("word", "code"),
    [("\u301cprivileged", "301C"), ("\u30a0d", "30A0"), (f"{EN}\u301cd", "301C"), ("-\u2e40x", "2E40")],
)
def test_other_dash_characters_are_refused_wherever_they_are(word: str, code: str) -> None:
    for grammar in (STOP, INTER):
        with pytest.raises(UsageError) as caught:
            parse(grammar, ["nginx", word])
        assert f"starts with U+{code}" in caught.value.message and "only looks like '-'" in caught.value.message
        assert caught.value.usage == grammar.usage
