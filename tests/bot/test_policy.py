"""bot.policy: loading (with located errors), grants, images, the final Engine body, and scope.

Everything here is pure: a policy document in, a Decision (allowed, rule, reason) out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.errors import UsageError
from bot.models import Actor, ContainerFacts, NetworkFacts
from bot.policy import (
    BUILTIN_POLICY_TEXT,
    ImageRef,
    Policy,
    PolicyError,
    builtin_policy,
    check_create_body,
    check_engine_calls,
    check_labels,
    check_network_body,
    commands_for,
    container_in_scope,
    decide,
    image_allowed,
    load_policy_file,
    load_policy_text,
    may_pull,
    may_run,
    network_in_scope,
    parse_image,
    parse_range,
    policy_warnings,
)
from handlers import build_registry
from handlers.containers import PsRequest, StopRequest
from handlers.run import RunRequest, create_body

# The documented example policy, line by line (line numbers matter for the located errors below).
EXAMPLE = """\
roles:
  viewer:   {commands: [ps, inspect, top, stats, port, logs, network ls, network inspect, history, help]}
  operator: {include: [viewer], commands: [start, stop, restart]}
  admin:    {include: [operator], commands: [run, rm, exec, network create, network connect, network disconnect, network rm]}
grants:
  - {role: admin, users: [U0123ADMIN]}
  - {role: operator, groups: [S0456OPS], channels: [C0789OPS]}
  - {role: viewer, users: ["*"]}
images: [nginx, "nginx:1.*", "local/*"]
containers:
  labels: {team: web}
  names: ["web-*"]
  protect: [chatdock]
ports: ["8000-9999"]
limits: {memory: 512m, cpus: 1.0}
"""
KNOWN = [*build_registry().names(), "history"]
MIB = 1024 * 1024

ADMIN = Actor(user="U0123ADMIN", channel="C1")
OPS_IN_OPS = Actor(user="U0OPS", channel="C0789OPS", groups=("S0456OPS",))
OPS_ELSEWHERE = Actor(user="U0OPS", channel="C1", groups=("S0456OPS",))
STRANGER_IN_OPS = Actor(user="U0STRANGER", channel="C0789OPS")
STRANGER = Actor(user="U0STRANGER", channel="C1")
NO_CHANNEL = Actor(user="U0STRANGER")


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy_text(EXAMPLE, source="example", known_commands=KNOWN)


def problems_of(text: str, **kwargs: Any) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy_text(text, **kwargs)
    return caught.value.problems


# ========================================================================================== loading


def test_example_loads_as_written(policy: Policy) -> None:
    assert set(policy.roles) == {"viewer", "operator", "admin"}
    assert policy.roles["operator"].include == ("viewer",)
    assert [(g.role, g.users, g.groups, g.channels, g.teams) for g in policy.grants] == [
        ("admin", ("U0123ADMIN",), (), ("*",), ()),  # no channels listed: every channel
        ("operator", (), ("S0456OPS",), ("C0789OPS",), ()),
        ("viewer", ("*",), (), ("*",), ()),  # no teams listed: the installing workspace's people only
    ]
    assert policy.images == ("nginx", "nginx:1.*", "local/*")
    assert policy.containers.labels == {"team": "web"}
    assert policy.containers.names == ("web-*",)
    assert policy.containers.protect == ("chatdock",)
    assert policy.networks.names == () and policy.networks.protect == ()
    assert policy.ports == ("8000-9999",)
    assert policy.limits.memory == "512m"
    assert policy.limits.memory_bytes == 512 * MIB
    assert policy.limits.cpus == 1.0
    assert policy.limits.nano_cpus == 1_000_000_000
    assert policy.redact == ()
    assert policy.protected_ids == ()


def test_roles_include_transitively(policy: Policy) -> None:
    viewer = {"ps", "inspect", "top", "stats", "port", "logs", "network ls", "network inspect", "history", "help"}
    operator = viewer | {"start", "stop", "restart"}
    admin = operator | {"run", "rm", "exec", "network create", "network connect", "network disconnect", "network rm"}
    assert policy.role_commands("viewer") == viewer
    assert policy.role_commands("operator") == operator
    assert policy.role_commands("admin") == admin


def test_empty_document_is_an_empty_policy() -> None:
    empty = load_policy_text("")
    assert empty == Policy()
    assert may_run(empty, STRANGER, "ps").rule == "default-deny"


def test_integer_ports_read_as_ports() -> None:
    assert load_policy_text("ports: [8080, 9000-9100, random]").ports == ("8080", "9000-9100", "random")


@pytest.mark.parametrize(
    ("text", "known", "problems"),
    [
        # references are located where they stand
        (
            EXAMPLE.replace("{role: admin, users", "{role: boss, users"),
            (),
            ["line 6: grants[0].role: unknown role 'boss'"],
        ),
        (
            EXAMPLE.replace('{role: viewer, users: ["*"]}', '{role: viewers, users: ["*"]}'),
            (),
            ["line 8: grants[2].role: unknown role 'viewers'"],
        ),
        (
            EXAMPLE.replace("include: [viewer]", "include: [nobody]"),
            (),
            ["line 3: roles.operator.include: unknown role 'nobody'"],
        ),
        (
            EXAMPLE.replace("include: [viewer], ", "include: [admin], "),
            (),
            ["line 3: roles.operator.include: cycle operator -> admin -> operator"],
        ),
        ("roles:\n  viewer: {include: [viewer]}\n", (), ["line 2: roles.viewer.include: cycle viewer -> viewer"]),
        (
            "roles:\n  a: {include: [b]}\n  b: {include: [c]}\n  c: {include: [a]}\n",
            (),
            ["line 2: roles.a.include: cycle a -> b -> c -> a"],
        ),
        # unknown keys, at every level
        (EXAMPLE + "colour: red\n", (), ["line 16: colour: unknown key"]),
        (
            EXAMPLE.replace("{role: admin, users: [U0123ADMIN]}", "{role: admin, user: [U0123ADMIN]}"),
            (),
            ["line 6: grants[0].user: unknown key"],
        ),
        (
            EXAMPLE.replace("  operator: {include", "  operator: {inherit: [x], include"),
            (),
            ["line 3: roles.operator.inherit: unknown key"],
        ),
        (
            EXAMPLE.replace("  protect: [chatdock]", "  protected: [chatdock]"),
            (),
            ["line 13: containers.protected: unknown key"],
        ),
        # unknown commands, when the caller says which exist
        (
            EXAMPLE.replace("[start, stop, restart]", "[start, stop, reboot]"),
            KNOWN,
            ["line 3: roles.operator.commands: unknown command 'reboot'"],
        ),
        (
            EXAMPLE.replace("network rm]}", "network remove, kill]}"),
            KNOWN,
            [
                "line 4: roles.admin.commands: unknown command 'network remove'",
                "line 4: roles.admin.commands: unknown command 'kill'",
            ],
        ),
        (
            "roles:\n  viewer:\n    commands:\n      - ps\n      - lls\n",
            KNOWN,
            ["line 5: roles.viewer.commands: unknown command 'lls'"],
        ),
        # port ranges
        (
            EXAMPLE.replace('ports: ["8000-9999"]', 'ports: ["9999-8000"]'),
            (),
            ["line 14: ports: invalid port range '9999-8000' (ports are 1-65535, low before high)"],
        ),
        (
            EXAMPLE.replace('ports: ["8000-9999"]', 'ports: ["0-100"]'),
            (),
            ["line 14: ports: invalid port range '0-100' (ports are 1-65535, low before high)"],
        ),
        (
            EXAMPLE.replace('ports: ["8000-9999"]', "ports: [70000]"),
            (),
            ["line 14: ports: invalid port range '70000' (ports are 1-65535, low before high)"],
        ),
        (
            EXAMPLE.replace('ports: ["8000-9999"]', "ports: [high]"),
            (),
            ["line 14: ports: invalid port range 'high' (use 8080 or 8000-9999)"],
        ),
        (
            EXAMPLE.replace('ports: ["8000-9999"]', 'ports: ["8000:9999"]'),
            (),
            ["line 14: ports: invalid port range '8000:9999' (use 8080 or 8000-9999)"],
        ),
        # limits
        (
            EXAMPLE.replace("memory: 512m", "memory: lots"),
            (),
            ["line 15: limits.memory: invalid size: 'lots'"],
        ),
        (EXAMPLE.replace("cpus: 1.0", "cpus: 0"), (), ["line 15: limits.cpus: cpus must be greater than 0"]),
        # types
        (
            'grants:\n  - {role: a, users: "*"}\nroles: {a: {}}\n',
            (),
            ['line 2: grants[0].users: must be a list (write ["*"])'],
        ),
        ("images: nginx\n", (), ['line 1: images: must be a list (write ["nginx"])']),
        # several problems are all reported at once
        (
            "roles: {a: {}}\ngrants:\n  - {role: a, when: now}\nports: [x]\ncolour: red\n",
            (),
            [
                "line 3: grants[0].when: unknown key",
                "line 4: ports: invalid port range 'x' (use 8080 or 8000-9999)",
                "line 5: colour: unknown key",
            ],
        ),
        # not YAML, or not a mapping
        ("roles: {a: {commands: [ps]}\n", (), ["line 2: not valid YAML (expected ',' or '}', but got '<stream end>')"]),
        ("roles:\n\tviewer: {}\n", (), ["line 2: not valid YAML (found character '\\t' that cannot start any token)"]),
        ("- a\n- b\n", (), ["line 1: the policy must be a mapping with roles, grants, images, ..."]),
        ("42\n", (), ["line 1: the policy must be a mapping with roles, grants, images, ..."]),
    ],
)
def test_located_errors(text: str, known: tuple[str, ...], problems: list[str]) -> None:
    assert problems_of(text, known_commands=known) == problems


def test_policy_error_names_its_source() -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy_text("ports: [x]\ncolour: red\n", source="team.yml")
    assert caught.value.source == "team.yml"
    assert str(caught.value) == (
        "team.yml: line 1: ports: invalid port range 'x' (use 8080 or 8000-9999); line 2: colour: unknown key"
    )


def test_known_commands_accept_the_wildcard() -> None:
    policy = load_policy_text("roles: {root: {commands: ['*']}}\n", known_commands=KNOWN)
    assert policy.role_commands("root") == {"*"}


def test_load_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert load_policy_file(path, known_commands=KNOWN) == load_policy_text(EXAMPLE)
    path.write_text("colour: red\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == ["line 1: colour: unknown key"]


def test_load_policy_file_that_is_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(PolicyError) as caught:
        load_policy_file(missing)
    assert caught.value.source == str(missing)
    assert caught.value.problems == ["cannot read the file (No such file or directory)"]


@pytest.mark.parametrize(
    ("text", "bounds"),
    [("8080", (8080, 8080)), ("8000-9999", (8000, 9999)), ("1-65535", (1, 65535)), ("80-80", (80, 80))],
)
def test_parse_range(text: str, bounds: tuple[int, int]) -> None:
    assert parse_range(text) == bounds


@pytest.mark.parametrize("text", ["", "0", "65536", "9-8", "a", "80-", "-80", " 80", "80 - 90", "123456"])
def test_parse_range_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"^invalid port range"):
        parse_range(text)


# ========================================================================================== grants


@pytest.mark.parametrize(
    ("actor", "command", "allowed", "rule", "reason"),
    [
        # the admin, anywhere
        (ADMIN, "run", True, "grants[0]", "role admin may run `run`"),
        (ADMIN, "network rm", True, "grants[0]", "role admin may run `network rm`"),
        (ADMIN, "stop", True, "grants[0]", "role admin may run `stop`"),  # through operator
        (ADMIN, "ps", True, "grants[0]", "role admin may run `ps`"),  # through operator → viewer
        # an operator, only in the ops channel
        (OPS_IN_OPS, "stop", True, "grants[1]", "role operator may run `stop`"),
        (OPS_IN_OPS, "restart", True, "grants[1]", "role operator may run `restart`"),
        (OPS_IN_OPS, "logs", True, "grants[1]", "role operator may run `logs`"),
        (OPS_IN_OPS, "run", False, "default-deny", "no grant lets U0OPS in channel C0789OPS run `run`"),
        (OPS_IN_OPS, "rm", False, "default-deny", "no grant lets U0OPS in channel C0789OPS run `rm`"),
        (OPS_ELSEWHERE, "stop", False, "default-deny", "no grant lets U0OPS in channel C1 run `stop`"),
        (OPS_ELSEWHERE, "ps", True, "grants[2]", "role viewer may run `ps`"),
        # being in the ops channel is not enough without the group
        (STRANGER_IN_OPS, "stop", False, "default-deny", "no grant lets U0STRANGER in channel C0789OPS run `stop`"),
        (STRANGER_IN_OPS, "ps", True, "grants[2]", "role viewer may run `ps`"),
        # everyone else is a viewer through "*"
        (STRANGER, "ps", True, "grants[2]", "role viewer may run `ps`"),
        (STRANGER, "network inspect", True, "grants[2]", "role viewer may run `network inspect`"),
        (STRANGER, "history", True, "grants[2]", "role viewer may run `history`"),
        (STRANGER, "help", True, "grants[2]", "role viewer may run `help`"),
        (STRANGER, "stop", False, "default-deny", "no grant lets U0STRANGER in channel C1 run `stop`"),
        (STRANGER, "exec", False, "default-deny", "no grant lets U0STRANGER in channel C1 run `exec`"),
        (
            STRANGER,
            "network create",
            False,
            "default-deny",
            "no grant lets U0STRANGER in channel C1 run `network create`",
        ),
        (NO_CHANNEL, "stop", False, "default-deny", "no grant lets U0STRANGER run `stop`"),
        # a command nobody has
        (ADMIN, "reboot", False, "default-deny", "no grant lets U0123ADMIN in channel C1 run `reboot`"),
    ],
)
def test_may_run(policy: Policy, actor: Actor, command: str, allowed: bool, rule: str, reason: str) -> None:
    decision = may_run(policy, actor, command)
    assert (decision.allowed, decision.rule, decision.reason) == (allowed, rule, reason)


def test_decide_reads_the_requests_command(policy: Policy) -> None:
    assert decide(policy, STRANGER, PsRequest()).allowed is True
    stop = decide(policy, STRANGER, StopRequest(targets=("web-1",)))
    assert (stop.allowed, stop.rule) == (False, "default-deny")
    run = decide(policy, ADMIN, RunRequest(image="nginx"))
    assert (run.allowed, run.rule, run.reason) == (True, "grants[0]", "role admin may run `run`")


def test_without_the_star_grant_strangers_get_nothing() -> None:
    strict = load_policy_text(EXAMPLE.replace('  - {role: viewer, users: ["*"]}\n', ""))
    decision = may_run(strict, STRANGER, "ps")
    assert (decision.allowed, decision.rule, decision.reason) == (
        False,
        "default-deny",
        "no grant lets U0STRANGER in channel C1 run `ps`",
    )
    assert may_run(strict, ADMIN, "ps").rule == "grants[0]"
    assert commands_for(strict, STRANGER) == (frozenset(), [])


@pytest.mark.parametrize(
    ("grant", "actor", "matches"),
    [
        ("{role: r, users: [U1]}", Actor(user="U1"), True),
        ("{role: r, users: [U1]}", Actor(user="U2"), False),
        ("{role: r, users: ['*']}", Actor(user="U2", channel="C9"), True),
        ("{role: r, groups: [S1]}", Actor(user="U2", groups=("S0", "S1")), True),
        ("{role: r, groups: [S1]}", Actor(user="U2", groups=("S0",)), False),
        ("{role: r, users: [U1], groups: [S1]}", Actor(user="U9", groups=("S1",)), True),  # either one
        ("{role: r, users: [U1], channels: [C1]}", Actor(user="U1", channel="C1"), True),
        ("{role: r, users: [U1], channels: [C1]}", Actor(user="U1", channel="C2"), False),
        ("{role: r, users: [U1], channels: [C1]}", Actor(user="U1"), False),
        ("{role: r, users: [U1], channels: ['*']}", Actor(user="U1", channel="C2"), True),
        # a grant that names nobody matches nobody (it used to mean "everyone in that channel")
        ("{role: r, channels: [C1]}", Actor(user="U7", channel="C1"), False),
        ("{role: r, users: ['*'], channels: [C1]}", Actor(user="U7", channel="C1"), True),  # everyone there
        ("{role: r, users: ['*'], channels: [C1]}", Actor(user="U7", channel="C2"), False),
    ],
)
def test_grant_matching(grant: str, actor: Actor, matches: bool) -> None:
    policy = load_policy_text(f"roles: {{r: {{commands: [ps]}}}}\ngrants: [{grant}]\n")
    assert policy.grants[0].matches(actor) is matches
    assert may_run(policy, actor, "ps").allowed is matches


OUTSIDER = Actor(user="U0EXT", channel="C1", user_team="T0PARTNER", external=True)


@pytest.mark.parametrize(
    ("grant", "actor", "matches"),
    [
        # Slack Connect: people of another organisation are not "anyone"
        ("{role: r, users: ['*']}", OUTSIDER, False),
        ("{role: r, users: ['*'], channels: ['*']}", OUTSIDER, False),
        ("{role: r, users: [U0EXT]}", OUTSIDER, True),  # named by user ID
        ("{role: r, users: ['*'], teams: [T0PARTNER]}", OUTSIDER, True),  # their workspace admitted
        ("{role: r, users: ['*'], teams: ['*']}", OUTSIDER, True),
        ("{role: r, users: ['*'], teams: [T0OTHER]}", OUTSIDER, False),
        ("{role: r, users: ['*'], teams: []}", OUTSIDER, False),
        ("{role: r, users: [U0EXT], teams: []}", OUTSIDER, True),  # naming them is enough
        ("{role: r, users: [U0EXT], channels: [C2]}", OUTSIDER, False),  # channels still apply
        ("{role: r, groups: [S1], teams: [T0PARTNER]}", OUTSIDER.model_copy(update={"groups": ("S1",)}), True),
        # the home workspace's people are unaffected by teams
        ("{role: r, users: ['*'], teams: [T0PARTNER]}", Actor(user="U1", user_team="T0HOME"), True),
        ("{role: r, users: ['*']}", Actor(user="U1", user_team="T0HOME"), True),
        # emptied lists match nothing; only "*" means anyone or any channel
        ("{role: r, users: []}", Actor(user="U1"), False),
        ("{role: r, users: [], groups: []}", Actor(user="U1", groups=("S1",)), False),
        ("{role: r, users: ['*'], channels: []}", Actor(user="U1", channel="C1"), False),
        ("{role: r, users: ['*'], channels: []}", Actor(user="U1"), False),
        ("{role: r, users: ['*'], channels:}", Actor(user="U1", channel="C1"), False),  # key left without value
        ("{role: r, users:}", Actor(user="U1"), False),
        ("{role: r}", Actor(user="U1"), False),  # names nobody
        ("{role: r, users: ['*']}", Actor(user=""), False),  # a request without a user ID is nobody
    ],
)
def test_grant_matching_never_widens(grant: str, actor: Actor, matches: bool) -> None:
    policy = load_policy_text(f"roles: {{r: {{commands: [ps]}}}}\ngrants: [{grant}]\n")
    assert policy.grants[0].matches(actor) is matches
    assert may_run(policy, actor, "ps").allowed is matches


def test_an_emptied_list_anywhere_matches_nothing() -> None:
    emptied = load_policy_text(
        "roles: {r: {commands: []}, s: {include: [], commands: ['*']}}\n"
        "grants: [{role: r, users: ['*']}, {role: s, users: ['*'], channels: []}]\n"
        "images: []\nports: []\ncontainers: {names: [], labels: {}}\nnetworks: {names: []}\n"
    )
    assert commands_for(emptied, STRANGER) == (frozenset(), ["r"])
    assert image_allowed(emptied, parse_image("nginx")).allowed is False
    assert check_create_body(emptied, {"Image": "nginx", "HostConfig": {}}).rule == "images"
    assert container_in_scope(emptied, facts("web-1", {"team": "web"})).rule == "containers.scope"
    assert network_in_scope(emptied, network("app")).rule == "networks.scope"
    nulls = load_policy_text("images:\nports:\ncontainers: {names:, labels:}\nnetworks: {names:}\n")
    assert nulls == Policy()  # a key left without a value is the empty list it looks like


def test_blank_entries_and_a_zero_memory_limit_are_refused() -> None:
    assert problems_of("grants: [{role: r, users: ['']}]\nroles: {r: {}}\n") == [
        "line 1: grants[0].users: an empty entry ('') is neither an ID nor a pattern; remove it"
    ]
    assert problems_of("images: [' ']\n") == [
        "line 1: images: an empty entry ('') is neither an ID nor a pattern; remove it"
    ]
    assert problems_of("limits: {memory: 0}\n") == [
        "line 1: limits.memory: memory must be greater than 0 (leave it out for no limit)"
    ]


def test_every_kind_of_problem_is_reported_at_once() -> None:
    text = (
        "roles:\n"
        "  viewer: {commands: [ps, teleport], include: [ghost]}\n"
        "  a: {include: [b]}\n"
        "  b: {include: [a]}\n"
        "grants:\n"
        "  - {role: boss, users: ['*']}\n"
        "  - {role: viewer, user: [U1]}\n"
        "ports: [x]\n"
    )
    assert problems_of(text, known_commands=KNOWN) == [
        "line 2: roles.viewer.include: unknown role 'ghost'",
        "line 2: roles.viewer.commands: unknown command 'teleport'",
        "line 3: roles.a.include: cycle a -> b -> a",
        "line 6: grants[0].role: unknown role 'boss'",
        "line 7: grants[1].user: unknown key",
        "line 8: ports: invalid port range 'x' (use 8080 or 8000-9999)",
    ]


def test_policy_check_warns_about_every_empty_list() -> None:
    text = (
        "roles:\n"
        "  r: {commands: []}\n"
        "grants:\n"
        "  - {role: r, users: []}\n"
        "  - {role: r, channels: [C1]}\n"
        "  - role: r\n"
        "    users: [U1]\n"
        "    channels:\n"
        "    teams: []\n"
        "images: []\n"
        "containers: {labels: {}, protect: []}\n"
        "ports: [80]\n"
    )
    assert policy_warnings(text, load_policy_text(text)) == [
        "line 2: roles.r.commands: empty list, so it matches nothing",
        "line 4: grants[0].users: empty list, so it matches nothing",
        "line 4: grants[0]: names nobody (no users, no groups), so it matches nobody",
        "line 5: grants[1]: names nobody (no users, no groups), so it matches nobody",
        "line 8: grants[2].channels: empty list, so it matches nothing",
        "line 9: grants[2].teams: empty list, so it admits no other workspace",
        "line 10: images: empty list, so it matches nothing",
        "line 11: containers.labels: empty, so it selects no container",
        "line 11: containers.protect: empty list, so it protects nothing",
    ]
    assert policy_warnings(EXAMPLE, load_policy_text(EXAMPLE)) == []


def test_id_lists_warn_about_patterns_and_spaces_and_mappings_say_mapping() -> None:
    """users/groups/channels/teams match exact IDs only: ``U*`` or ``" * "`` match no one; ``{}`` is a mapping."""
    text = (
        "roles: {r: {}}\n"
        "grants:\n"
        "  - role: r\n"
        "    users: ['U*', ' * ', '*', U1]\n"
        "    channels: ['C?']\n"
        "    host_labels: {}\n"
    )
    assert policy_warnings(text, load_policy_text(text)) == [
        "line 4: grants[0].users[0]: 'U*' looks like a pattern, but only exact IDs are matched (\"*\" alone means any)",
        "line 4: grants[0].users[1]: ' * ' has spaces around it, so it matches nothing; write \"*\"",
        "line 5: grants[0].channels[0]: 'C?' looks like a pattern, but only exact IDs are matched "
        '("*" alone means any)',
        "line 6: grants[0].host_labels: empty mapping, so it matches no host",
    ]
    assert problems_of("roles: {r: {}}\ngrants: [{role: r, users: [U1], host_labels: [a]}]\n") == [
        "line 2: grants[0].host_labels: must be a mapping (write {key: value})"
    ]


def test_commands_for(policy: Policy) -> None:
    commands, roles = commands_for(policy, OPS_IN_OPS)
    assert roles == ["operator", "viewer"]
    assert commands == policy.role_commands("operator")
    commands, roles = commands_for(policy, ADMIN)
    assert roles == ["admin", "viewer"]
    assert "network disconnect" in commands and "run" in commands
    assert commands_for(policy, STRANGER) == (policy.role_commands("viewer"), ["viewer"])


# ========================================================================================== images


@pytest.mark.parametrize(
    ("text", "repository", "tag", "digest"),
    [
        ("nginx", "nginx", None, None),
        ("nginx:1.25", "nginx", "1.25", None),
        ("nginx:latest", "nginx", "latest", None),
        ("nginx:1.25-alpine", "nginx", "1.25-alpine", None),
        ("nginx:_x", "nginx", "_x", None),
        # Docker Hub spellings normalise to the short name
        ("library/nginx", "nginx", None, None),
        ("library/nginx:1", "nginx", "1", None),
        ("docker.io/library/nginx", "nginx", None, None),
        ("docker.io/nginx", "nginx", None, None),
        ("index.docker.io/library/nginx:1", "nginx", "1", None),
        ("registry-1.docker.io/library/nginx", "nginx", None, None),
        ("docker.io/bitnami/redis:7", "bitnami/redis", "7", None),
        ("docker.io/library/a/b", "library/a/b", None, None),
        # registry hosts stay
        ("evil.com/nginx", "evil.com/nginx", None, None),
        ("ghcr.io/org/app:1.0", "ghcr.io/org/app", "1.0", None),
        ("localhost/foo", "localhost/foo", None, None),
        ("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar", "v1", None),
        ("registry:5000/app", "registry:5000/app", None, None),
        ("Registry.Example.COM/app", "Registry.Example.COM/app", None, None),  # host names are not case-bound
        # without a dot, colon or "localhost" the first part is a path, not a host
        ("local/busybox:test", "local/busybox", "test", None),
        ("my_app", "my_app", None, None),
        ("a__b", "a__b", None, None),
        ("a---b", "a---b", None, None),
        ("a.b/c.d", "a.b/c.d", None, None),
        # digests
        ("nginx@sha256:" + "a" * 64, "nginx", None, "@sha256:" + "a" * 64),
        ("nginx:1.25@sha256:" + "b" * 64, "nginx", "1.25", "@sha256:" + "b" * 64),
        ("ghcr.io/o/a@sha512:" + "c" * 128, "ghcr.io/o/a", None, "@sha512:" + "c" * 128),
    ],
)
def test_parse_image(text: str, repository: str, tag: str | None, digest: str | None) -> None:
    assert parse_image(text) == ImageRef(repository=repository, tag=tag, digest=digest)


def test_image_ref_spellings() -> None:
    assert parse_image("nginx").with_tag == "nginx:latest"
    assert parse_image("nginx").original == "nginx"
    assert parse_image("docker.io/library/nginx:1.25").original == "nginx:1.25"
    assert parse_image("nginx@sha256:" + "a" * 64).with_tag == "nginx:latest"
    assert parse_image("nginx:1@sha256:" + "a" * 64).original == "nginx:1@sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Nginx", "invalid reference format: repository name 'Nginx' must be lowercase"),
        ("NGINX:1.25", "invalid reference format: repository name 'NGINX' must be lowercase"),
        ("evil.com/Nginx", "invalid reference format: repository name 'evil.com/Nginx' must be lowercase"),
        ("", "invalid reference format: '' is not a valid image name"),
        ("a" * 256, f"invalid reference format: '{'a' * 256}' is not a valid image name"),
        ("nginx:", "invalid reference format: 'nginx:' is not a valid image name"),
        (":1.25", "invalid reference format: ':1.25' is not a valid image name"),
        ("nginx:-x", "invalid reference format: 'nginx:-x' is not a valid image name"),
        ("nginx:" + "x" * 129, f"invalid reference format: 'nginx:{'x' * 129}' is not a valid image name"),
        ("nginx/", "invalid reference format: 'nginx/' is not a valid image name"),
        ("/nginx", "invalid reference format: '/nginx' is not a valid image name"),
        ("a//b", "invalid reference format: 'a//b' is not a valid image name"),
        ("ngi nx", "invalid reference format: 'ngi nx' is not a valid image name"),
        ("foo..bar", "invalid reference format: 'foo..bar' is not a valid image name"),
        ("_app", "invalid reference format: '_app' is not a valid image name"),
        ("app-", "invalid reference format: 'app-' is not a valid image name"),
        ("my-.app", "invalid reference format: 'my-.app' is not a valid image name"),
        ("nginx@sha256:abc", "invalid reference format: 'nginx@sha256:abc' is not a valid image name"),
        ("nginx@latest", "invalid reference format: 'nginx@latest' is not a valid image name"),
        ("-bad.com/app", "invalid reference format: '-bad.com/app' is not a valid image name"),
        ("$(id)", "invalid reference format: '$(id)' is not a valid image name"),
        ("../etc", "invalid reference format: '../etc' is not a valid image name"),
    ],
)
def test_parse_image_refuses(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_image(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("image", "allowed", "rule"),
    [
        ("nginx", True, "images[nginx]"),
        ("nginx:1.25", True, "images[nginx]"),  # a bare repository pattern allows every tag
        ("nginx:2", True, "images[nginx]"),
        ("docker.io/library/nginx:1.25", True, "images[nginx]"),
        ("library/nginx", True, "images[nginx]"),
        ("nginx@sha256:" + "a" * 64, True, "images[nginx]"),
        ("local/busybox:test", True, "images[local/*]"),
        ("local/x", True, "images[local/*]"),
        ("evil.com/nginx", False, "images"),
        ("docker.io/evil/nginx", False, "images"),
        ("nginx2", False, "images"),
        ("localx/y", False, "images"),
        ("redis", False, "images"),
        ("evil.com/local/x", False, "images"),
    ],
)
def test_image_allowed(policy: Policy, image: str, allowed: bool, rule: str) -> None:
    decision = image_allowed(policy, parse_image(image))
    assert (decision.allowed, decision.rule) == (allowed, rule)


def test_image_decision_reasons(policy: Policy) -> None:
    assert image_allowed(policy, parse_image("docker.io/library/nginx:1.25")).reason == "nginx:1.25 matches 'nginx'"
    assert (
        image_allowed(policy, parse_image("evil.com/nginx")).reason == "Image evil.com/nginx is not allowed by policy"
    )


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("nginx:1.25", True),
        ("nginx:1.0", True),
        ("docker.io/library/nginx:1.25", True),
        ("nginx:2", False),
        ("nginx:10.1", False),
        ("nginx", False),  # means nginx:latest
        ("nginx:latest", False),
        ("nginx@sha256:" + "a" * 64, False),  # a tag pattern says nothing about a digest
        ("nginx:1.25@sha256:" + "a" * 64, True),
        ("evil.com/nginx:1.25", False),
    ],
)
def test_tag_patterns(image: str, allowed: bool) -> None:
    tags_only = load_policy_text('images: ["nginx:1.*"]')
    decision = image_allowed(tags_only, parse_image(image))
    assert decision.allowed is allowed
    assert decision.rule == ("images[nginx:1.*]" if allowed else "images")


def test_local_images() -> None:
    local = load_policy_text('images: ["@local"]')
    decision = image_allowed(local, parse_image("evil.com/anything:1"))
    assert (decision.allowed, decision.rule, decision.reason) == (
        True,
        "images[@local]",
        "evil.com/anything:1 may run if it is already on this host",
    )
    assert may_pull(local, parse_image("nginx")) is False


def test_may_pull(policy: Policy) -> None:
    assert may_pull(policy, parse_image("nginx:1.25")) is True
    assert may_pull(policy, parse_image("local/busybox:test")) is True
    assert may_pull(policy, parse_image("redis")) is False


def test_a_pattern_naming_the_image_wins_over_local_wherever_it_stands() -> None:
    # removing "@local" from this list must never start allowing a pull: nginx may be pulled with it too
    both = load_policy_text('images: ["@local", nginx]')
    assert image_allowed(both, parse_image("nginx")).rule == "images[nginx]"
    assert may_pull(both, parse_image("nginx")) is True
    assert image_allowed(both, parse_image("redis")).rule == "images[@local]"
    assert may_pull(both, parse_image("redis")) is False


def test_no_images_no_runs() -> None:
    decision = image_allowed(Policy(), parse_image("nginx"))
    assert (decision.allowed, decision.rule) == (False, "images")


# ========================================================================================== Engine bodies


def body(image: str = "nginx", **host: Any) -> dict[str, Any]:
    """A create body within the example policy's limits, plus ``host`` HostConfig fields."""
    return {"Image": image, "HostConfig": {"Memory": 256 * MIB, "NanoCpus": 500_000_000, **host}}


def test_a_plain_body_is_allowed(policy: Policy) -> None:
    decision = check_create_body(policy, body())
    assert (decision.allowed, decision.rule, decision.reason) == (True, "images[nginx]", "nginx matches 'nginx'")


@pytest.mark.parametrize(
    ("host", "rule", "reason"),
    [
        ({"Privileged": True}, "never:privileged", "privileged containers are never allowed"),
        ({"Binds": ["/:/host"]}, "never:host-mounts", "host bind mounts are never allowed"),
        (
            {"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]},
            "never:host-mounts",
            "host bind mounts are never allowed",
        ),
        ({"Binds": ["data:/data"]}, "never:host-mounts", "host bind mounts are never allowed"),
        (
            {"Mounts": [{"Type": "bind", "Source": "/", "Target": "/host"}]},
            "never:host-mounts",
            "host bind mounts are never allowed",
        ),
        (
            {"Mounts": [{"Type": "tmpfs", "Target": "/t"}, {"Type": "bind", "Source": "/etc", "Target": "/e"}]},
            "never:host-mounts",
            "host bind mounts are never allowed",
        ),
        (
            {"Mounts": [{"Type": "npipe", "Source": r"\\.\pipe\docker_engine", "Target": "/p"}]},
            "never:host-mounts",
            "host bind mounts are never allowed",
        ),
        (
            # a "volume" whose local driver options bind-mount a host directory
            {
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "etc",
                        "Target": "/e",
                        "VolumeOptions": {
                            "DriverConfig": {
                                "Name": "local",
                                "Options": {"type": "none", "o": "bind", "device": "/etc"},
                            }
                        },
                    }
                ]
            },
            "never:host-mounts",
            "host bind mounts are never allowed",
        ),
        ({"VolumesFrom": ["db"]}, "never:volumes-from", "--volumes-from is never allowed"),
        (
            {"Devices": [{"PathOnHost": "/dev/sda", "PathInContainer": "/dev/sda", "CgroupPermissions": "rwm"}]},
            "never:devices",
            "host devices are never allowed",
        ),
        (
            {"DeviceRequests": [{"Count": -1, "Capabilities": [["gpu"]]}]},
            "never:devices",
            "host devices are never allowed",
        ),
        ({"DeviceCgroupRules": ["c 1:3 mr"]}, "never:devices", "host devices are never allowed"),
        ({"CapAdd": ["SYS_ADMIN"]}, "never:cap-add", "adding capabilities is never allowed"),
        ({"CapAdd": ["NET_BIND_SERVICE"]}, "never:cap-add", "adding capabilities is never allowed"),
        (
            {"SecurityOpt": ["seccomp=unconfined"]},
            "never:security-opt",
            "security option 'seccomp=unconfined' is never allowed",
        ),
        (
            {"SecurityOpt": ["seccomp:unconfined"]},
            "never:security-opt",
            "security option 'seccomp:unconfined' is never allowed",
        ),
        (
            {"SecurityOpt": ["apparmor=unconfined"]},
            "never:security-opt",
            "security option 'apparmor=unconfined' is never allowed",
        ),
        ({"SecurityOpt": ["label=disable"]}, "never:security-opt", "security option 'label=disable' is never allowed"),
        (
            {"SecurityOpt": ["systempaths=unconfined"]},
            "never:security-opt",
            "security option 'systempaths=unconfined' is never allowed",
        ),
        (
            {"SecurityOpt": ["no-new-privileges", "seccomp=/tmp/profile.json"]},
            "never:security-opt",
            "security option 'seccomp=/tmp/profile.json' is never allowed",
        ),
        ({"PidMode": "host"}, "never:host-namespaces", "PidMode host shares a namespace and is never allowed"),
        (
            {"PidMode": "container:db"},
            "never:host-namespaces",
            "PidMode container:db shares a namespace and is never allowed",
        ),
        ({"IpcMode": "host"}, "never:host-namespaces", "IpcMode host shares a namespace and is never allowed"),
        ({"UTSMode": "host"}, "never:host-namespaces", "UTSMode host shares a namespace and is never allowed"),
        ({"UsernsMode": "host"}, "never:host-namespaces", "UsernsMode host shares a namespace and is never allowed"),
        (
            {"CgroupnsMode": "host"},
            "never:host-namespaces",
            "CgroupnsMode host shares a namespace and is never allowed",
        ),
        ({"NetworkMode": "host"}, "never:network-host", "network host is never allowed"),
        ({"NetworkMode": "container:db"}, "never:network-host", "network container:db is never allowed"),
        (
            {"Sysctls": {"net.ipv4.ip_forward": "1"}},
            "never:host-tuning",
            "sysctls, runtimes and cgroup parents are never allowed",
        ),
        ({"Runtime": "runc"}, "never:host-tuning", "sysctls, runtimes and cgroup parents are never allowed"),
        ({"CgroupParent": "/"}, "never:host-tuning", "sysctls, runtimes and cgroup parents are never allowed"),
        # the first rule that applies decides
        (
            {"Privileged": True, "Binds": ["/:/h"], "NetworkMode": "host"},
            "never:privileged",
            "privileged containers are never allowed",
        ),
    ],
)
def test_never_rules(policy: Policy, host: dict[str, Any], rule: str, reason: str) -> None:
    decision = check_create_body(policy, body(**host))
    assert (decision.allowed, decision.rule, decision.reason) == (False, rule, reason)
    # no policy can lift them
    assert check_create_body(builtin_policy(), body("local/x", **host)).rule == rule


@pytest.mark.parametrize(
    "host",
    [
        {"Privileged": False},
        {"Binds": []},
        {"Mounts": [{"Type": "volume", "Source": "data", "Target": "/data"}]},
        {"Mounts": [{"Type": "volume", "Target": "/d", "VolumeOptions": {"DriverConfig": {"Name": "local"}}}]},
        {"Mounts": [{"Type": "tmpfs", "Target": "/run"}]},
        {"CapDrop": ["ALL"]},
        {"SecurityOpt": ["no-new-privileges"]},
        {"SecurityOpt": ["no-new-privileges:true"]},
        {"PidMode": "", "IpcMode": "private", "UTSMode": "", "CgroupnsMode": "private"},
        {"IpcMode": "shareable"},
        {"NetworkMode": "default"},
        {"NetworkMode": "bridge"},
        {"NetworkMode": "app"},
        {"NetworkMode": "none"},
        {"Sysctls": {}},
        {"AutoRemove": True, "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}},
    ],
)
def test_harmless_host_config(policy: Policy, host: dict[str, Any]) -> None:
    assert check_create_body(policy, body(**host)).allowed is True


@pytest.mark.parametrize(
    ("bindings", "allowed", "reason"),
    [
        ({}, True, ""),
        ({"80/tcp": [{"HostIp": "", "HostPort": "9090"}]}, True, ""),
        ({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8000"}]}, True, ""),
        ({"80/tcp": [{"HostIp": "", "HostPort": "9999"}]}, True, ""),
        ({"80/tcp": [{"HostIp": "", "HostPort": "8000-8005"}]}, True, ""),
        ({"80/tcp": None}, True, ""),  # exposed, not published
        ({"80/tcp": []}, True, ""),
        (
            {"80/tcp": [{"HostIp": "", "HostPort": "7999"}]},
            False,
            "host port 7999 is not allowed by policy (allowed: 8000-9999)",
        ),
        (
            {"80/tcp": [{"HostIp": "", "HostPort": "10000"}]},
            False,
            "host port 10000 is not allowed by policy (allowed: 8000-9999)",
        ),
        (
            {"80/tcp": [{"HostIp": "", "HostPort": "22"}]},
            False,
            "host port 22 is not allowed by policy (allowed: 8000-9999)",
        ),
        # a host range must lie entirely inside an allowed range
        (
            {"80/tcp": [{"HostIp": "", "HostPort": "9995-10005"}]},
            False,
            "host port 9995-10005 is not allowed by policy (allowed: 8000-9999)",
        ),
        (
            {"80/tcp": [{"HostIp": "", "HostPort": "7990-8005"}]},
            False,
            "host port 7990-8005 is not allowed by policy (allowed: 8000-9999)",
        ),
        # random host ports need "random"
        ({"80/tcp": [{"HostIp": "", "HostPort": ""}]}, False, "publishing 80/tcp on a random host port is not allowed"),
        (
            {"53/udp": [{"HostIp": "", "HostPort": "0"}]},
            False,
            "publishing 53/udp on a random host port is not allowed",
        ),
        ({"80/tcp": [{"HostIp": ""}]}, False, "publishing 80/tcp on a random host port is not allowed"),
        # every binding is checked
        (
            {"80/tcp": [{"HostIp": "", "HostPort": "9090"}], "81/tcp": [{"HostIp": "", "HostPort": "81"}]},
            False,
            "host port 81 is not allowed by policy (allowed: 8000-9999)",
        ),
        (
            {"80/tcp": [{"HostIp": "", "HostPort": "9090"}, {"HostIp": "::1", "HostPort": "80"}]},
            False,
            "host port 80 is not allowed by policy (allowed: 8000-9999)",
        ),
    ],
)
def test_ports(policy: Policy, bindings: dict[str, Any], allowed: bool, reason: str) -> None:
    decision = check_create_body(policy, body(PortBindings=bindings))
    assert decision.allowed is allowed
    if not allowed:
        assert (decision.rule, decision.reason) == ("ports", reason)


def test_ports_with_random_and_several_ranges() -> None:
    policy = load_policy_text('images: [nginx]\nports: ["80", "8000-8999", random]\n')
    for port in ("80", "8000", "8999", "", "0", "8100-8200"):
        assert check_create_body(policy, body(PortBindings={"80/tcp": [{"HostPort": port}]})).allowed, port
    refused = check_create_body(policy, body(PortBindings={"80/tcp": [{"HostPort": "81"}]}))
    assert (refused.rule, refused.reason) == (
        "ports",
        "host port 81 is not allowed by policy (allowed: 80, 8000-8999, random)",
    )


def test_no_ports_in_the_policy_means_no_publishing() -> None:
    policy = load_policy_text("images: [nginx]\n")
    decision = check_create_body(policy, body(PortBindings={"80/tcp": [{"HostPort": "8080"}]}))
    assert (decision.allowed, decision.rule, decision.reason) == (
        False,
        "ports",
        "host port 8080 is not allowed by policy (allowed: none)",
    )
    assert check_create_body(policy, body(PortBindings={"80/tcp": None})).allowed is True


def test_publish_all_needs_random_ports(policy: Policy) -> None:
    decision = check_create_body(policy, body(PublishAllPorts=True))
    assert (decision.allowed, decision.rule, decision.reason) == (
        False,
        "ports",
        "publishing every exposed port on random host ports (-P) is not allowed",
    )
    with_random = load_policy_text('images: [nginx]\nports: ["8000-9999", random]\n')
    assert check_create_body(with_random, body(PublishAllPorts=True)).allowed is True
    assert check_create_body(policy, body(PublishAllPorts=False)).allowed is True


@pytest.mark.parametrize(
    ("host", "allowed", "rule", "reason"),
    [
        ({"Memory": 512 * MIB, "NanoCpus": 1_000_000_000}, True, "images[nginx]", "nginx matches 'nginx'"),
        ({"Memory": 6 * MIB, "NanoCpus": 1}, True, "images[nginx]", "nginx matches 'nginx'"),
        ({"Memory": 512 * MIB + 1}, False, "limits.memory", "memory above the policy's limit of 512m"),
        ({"Memory": 1024 * MIB}, False, "limits.memory", "memory above the policy's limit of 512m"),
        # no memory limit at all is "unlimited": above any cap (the run handler always fills the default)
        ({"Memory": None}, False, "limits.memory", "memory above the policy's limit of 512m"),
        ({"Memory": 0}, False, "limits.memory", "memory above the policy's limit of 512m"),
        ({"NanoCpus": 1_000_000_001}, False, "limits.cpus", "more than the policy's limit of 1 CPUs"),
        ({"NanoCpus": 2_000_000_000}, False, "limits.cpus", "more than the policy's limit of 1 CPUs"),
        ({"NanoCpus": 0}, False, "limits.cpus", "more than the policy's limit of 1 CPUs"),
        ({"NanoCpus": None}, False, "limits.cpus", "more than the policy's limit of 1 CPUs"),
    ],
)
def test_limits(policy: Policy, host: dict[str, Any], allowed: bool, rule: str, reason: str) -> None:
    decision = check_create_body(policy, body(**host))
    assert (decision.allowed, decision.rule, decision.reason) == (allowed, rule, reason)


def test_a_body_without_host_config_has_no_limits(policy: Policy) -> None:
    decision = check_create_body(policy, {"Image": "nginx"})
    assert (decision.allowed, decision.rule) == (False, "limits.memory")
    assert check_create_body(load_policy_text("images: [nginx]"), {"Image": "nginx", "HostConfig": None}).allowed


def test_fractional_cpu_limit() -> None:
    policy = load_policy_text("images: [nginx]\nlimits: {cpus: 0.5}\n")
    assert policy.limits.nano_cpus == 500_000_000
    refused = check_create_body(policy, {"Image": "nginx", "HostConfig": {"NanoCpus": 750_000_000}})
    assert (refused.rule, refused.reason) == ("limits.cpus", "more than the policy's limit of 0.5 CPUs")


def test_the_run_handler_fills_the_policy_defaults(policy: Policy) -> None:
    filled = create_body(
        RunRequest(image="nginx", detach=True),
        owner="U0123ADMIN",
        memory_default=policy.limits.memory_bytes,
        cpus_default=policy.limits.nano_cpus,
    )
    assert filled["HostConfig"]["Memory"] == 512 * MIB
    assert filled["HostConfig"]["NanoCpus"] == 1_000_000_000
    assert check_create_body(policy, filled).allowed is True
    bigger = create_body(
        RunRequest(image="nginx", memory=1024 * MIB),
        owner="U0123ADMIN",
        memory_default=policy.limits.memory_bytes,
        cpus_default=policy.limits.nano_cpus,
    )
    assert check_create_body(policy, bigger).rule == "limits.memory"


def test_the_image_is_checked_in_the_body(policy: Policy) -> None:
    decision = check_create_body(policy, body("evil.com/nginx"))
    assert (decision.allowed, decision.rule, decision.reason) == (
        False,
        "images",
        "Image evil.com/nginx is not allowed by policy",
    )
    with pytest.raises(UsageError, match="invalid reference format"):
        check_create_body(policy, body("Bad"))


def test_labels_and_network_bodies() -> None:
    assert check_labels({"team": "web", "chatdockx": "1"}) is None
    reserved = check_labels({"team": "web", "chatdock.owner": "U1"})
    assert reserved is not None
    assert (reserved.allowed, reserved.rule, reserved.reason) == (
        False,
        "never:reserved-label",
        "labels starting with 'chatdock.' are chatdock's own",
    )
    assert check_network_body({"Name": "app", "Driver": "bridge"}) is None
    assert check_network_body({"Name": "app"}) is None
    overlay = check_network_body({"Name": "app", "Driver": "overlay"})
    assert overlay is not None
    assert (overlay.rule, overlay.reason) == (
        "never:network-driver",
        "only bridge networks may be created from chat (not overlay)",
    )


def test_check_engine_calls(policy: Policy) -> None:
    fine = [
        ("POST", "/containers/create", body()),
        ("POST", "/containers/{id}/start", None),
        ("POST", "/networks/create", {"Name": "app", "Driver": "bridge"}),
        ("DELETE", "/containers/abc", None),
    ]
    assert check_engine_calls(policy, fine) is None
    refused = check_engine_calls(policy, [*fine, ("POST", "/containers/create", body(Privileged=True))])
    assert refused is not None and refused.rule == "never:privileged"
    macvlan = check_engine_calls(policy, [("POST", "/networks/create", {"Name": "x", "Driver": "macvlan"})])
    assert macvlan is not None and macvlan.rule == "never:network-driver"


# ========================================================================================== scope


def facts(name: str, labels: dict[str, str] | None = None, cid: str = "f" * 64) -> ContainerFacts:
    return ContainerFacts(id=cid, name=name, labels=labels or {})


@pytest.mark.parametrize(
    ("container", "allowed", "rule", "reason"),
    [
        (facts("db", {"chatdock.managed": "true"}), True, "containers.managed", "db was started by chatdock"),
        (facts("db", {"team": "web"}), True, "containers.labels", "db carries the labels {'team': 'web'}"),
        (facts("db", {"team": "web", "x": "y"}), True, "containers.labels", "db carries the labels {'team': 'web'}"),
        (facts("web-1"), True, "containers.names", "web-1 matches 'web-*'"),
        (facts("web-"), True, "containers.names", "web- matches 'web-*'"),
        # protected wins over everything, including chatdock's own label
        (
            facts("chatdock", {"chatdock.managed": "true", "team": "web"}),
            False,
            "containers.protect",
            "chatdock is protected (matches 'chatdock')",
        ),
        # near misses
        (
            facts("db", {"team": "ops"}),
            False,
            "containers.scope",
            "db was not started by chatdock and the policy does not list it",
        ),
        (
            facts("db", {"chatdock.managed": "false"}),
            False,
            "containers.scope",
            "db was not started by chatdock and the policy does not list it",
        ),
        (
            facts("db", {"Team": "web"}),
            False,
            "containers.scope",
            "db was not started by chatdock and the policy does not list it",
        ),
        (
            facts("webserver"),
            False,
            "containers.scope",
            "webserver was not started by chatdock and the policy does not list it",
        ),
        (
            facts("Web-1"),
            False,
            "containers.scope",
            "Web-1 was not started by chatdock and the policy does not list it",
        ),
        (
            facts("chatdock-2"),
            False,
            "containers.scope",
            "chatdock-2 was not started by chatdock and the policy does not list it",
        ),
    ],
)
def test_container_in_scope(policy: Policy, container: ContainerFacts, allowed: bool, rule: str, reason: str) -> None:
    decision = container_in_scope(policy, container)
    assert (decision.allowed, decision.rule, decision.reason) == (allowed, rule, reason)


def test_chatdocks_own_container_is_protected(policy: Policy) -> None:
    own = "abc123" + "0" * 58
    guarded = policy.with_protected_ids([own])
    assert guarded.protected_ids == (own,)
    assert policy.protected_ids == ()  # the original is untouched
    for container in (
        facts("web-1", {"chatdock.managed": "true"}, cid=own),  # same ID
        facts("bot", cid="abc123"),  # an ID prefix of it
    ):
        decision = container_in_scope(guarded, container)
        assert (decision.allowed, decision.rule, decision.reason) == (
            False,
            "containers.protect",
            f"{container.name} is chatdock's own container",
        )
    assert container_in_scope(guarded, facts("web-1", cid="abc124" + "0" * 58)).allowed is True
    # a short protected ID protects the full one
    short = policy.with_protected_ids(["abc123"])
    assert container_in_scope(short, facts("web-1", cid=own)).rule == "containers.protect"


def test_labels_scope_needs_every_label() -> None:
    policy = load_policy_text("containers: {labels: {team: web, env: prod}}\n")
    assert container_in_scope(policy, facts("a", {"team": "web", "env": "prod"})).rule == "containers.labels"
    assert container_in_scope(policy, facts("a", {"team": "web"})).rule == "containers.scope"
    # no labels listed means the label rule never applies
    assert container_in_scope(Policy(), facts("a", {"team": "web"})).rule == "containers.scope"


def network(name: str, driver: str = "bridge", labels: dict[str, str] | None = None) -> NetworkFacts:
    return NetworkFacts(id="n" * 64, name=name, driver=driver, labels=labels or {})


@pytest.mark.parametrize(
    ("net", "for_removal", "allowed", "rule", "reason"),
    [
        (
            network("app", labels={"chatdock.managed": "true"}),
            False,
            True,
            "networks.managed",
            "network app was created by chatdock",
        ),
        (
            network("app", labels={"chatdock.managed": "true"}),
            True,
            True,
            "networks.managed",
            "network app was created by chatdock",
        ),
        (network("bridge"), False, True, "networks.default", "bridge is docker's default network"),
        (network("none", driver="null"), False, True, "networks.default", "none is docker's default network"),
        (network("bridge"), True, False, "networks.predefined", "bridge is one of docker's predefined networks"),
        (
            network("none", driver="null"),
            True,
            False,
            "networks.predefined",
            "none is one of docker's predefined networks",
        ),
        (
            network("host", driver="host"),
            True,
            False,
            "networks.predefined",
            "host is one of docker's predefined networks",
        ),
        (
            network("host", driver="host"),
            False,
            False,
            "never:network-host",
            "containers may not join the host's network",
        ),
        (
            network("myhost", driver="host"),
            False,
            False,
            "never:network-host",
            "containers may not join the host's network",
        ),
        (
            network("other"),
            False,
            False,
            "networks.scope",
            "network other was not created by chatdock and the policy does not list it",
        ),
        (
            network("other"),
            True,
            False,
            "networks.scope",
            "network other was not created by chatdock and the policy does not list it",
        ),
    ],
)
def test_network_in_scope(
    policy: Policy, net: NetworkFacts, for_removal: bool, allowed: bool, rule: str, reason: str
) -> None:
    decision = network_in_scope(policy, net, for_removal=for_removal)
    assert (decision.allowed, decision.rule, decision.reason) == (allowed, rule, reason)


def test_network_names_and_protect() -> None:
    policy = load_policy_text('networks: {names: ["team-*"], protect: ["team-prod"]}\n')
    named = network_in_scope(policy, network("team-dev"))
    assert (named.allowed, named.rule, named.reason) == (True, "networks.names", "network team-dev matches 'team-*'")
    guarded = network_in_scope(policy, network("team-prod", labels={"chatdock.managed": "true"}))
    assert (guarded.allowed, guarded.rule, guarded.reason) == (
        False,
        "networks.protect",
        "network team-prod is protected (matches 'team-prod')",
    )
    assert network_in_scope(policy, network("prod")).rule == "networks.scope"


# ========================================================================================== built-in policy


def test_builtin_policy() -> None:
    policy = builtin_policy()
    assert policy == load_policy_text(BUILTIN_POLICY_TEXT, known_commands=KNOWN)
    anyone = Actor(user="local", channel="shell")
    for command in [*KNOWN, "anything"]:
        decision = may_run(policy, anyone, command)
        assert (decision.allowed, decision.rule, decision.reason) == (
            True,
            "grants[0]",
            f"role admin may run `{command}`",
        )
    # any image already present, never pulled
    assert image_allowed(policy, parse_image("evil.com/x:1")).rule == "images[@local]"
    assert may_pull(policy, parse_image("nginx")) is False
    # every container and network, but chatdock's own is still protected
    assert container_in_scope(policy, facts("anything")).rule == "containers.names"
    assert container_in_scope(policy.with_protected_ids(["f" * 12]), facts("anything")).rule == "containers.protect"
    assert network_in_scope(policy, network("anything")).rule == "networks.names"
    assert network_in_scope(policy, network("bridge"), for_removal=True).rule == "networks.predefined"
    # every port, random ones too, and no limits
    ports = {"80/tcp": [{"HostPort": "80"}], "81/tcp": [{"HostPort": ""}], "82/tcp": [{"HostPort": "65535"}]}
    unlimited = {"Image": "local/x", "HostConfig": {"PortBindings": ports}}
    assert check_create_body(policy, unlimited).allowed is True
    assert policy.limits.memory_bytes is None and policy.limits.nano_cpus is None
    # the hard refusals still apply
    assert (
        check_create_body(policy, {"Image": "local/x", "HostConfig": {"Privileged": True}}).rule == "never:privileged"
    )


def test_policy_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    path = tmp_path / "policy.yml"
    path.write_text("roles: {r: {commands: [ps]}}\ngrants:\n  - {role: r, users: []}\nimages: []\n")
    assert main(["policy", "check", str(path)]) == 0  # warnings only: still usable
    out, err = capsys.readouterr()
    assert out == f"{path}: ok (1 roles, 1 grants, 0 image rules)\n"
    assert err.splitlines() == [
        f"{path}: warning: line 3: grants[0].users: empty list, so it matches nothing",
        f"{path}: warning: line 3: grants[0]: names nobody (no users, no groups), so it matches nobody",
        f"{path}: warning: line 4: images: empty list, so it matches nothing",
    ]
    path.write_text("roles: {r: {commands: [ps, teleport]}}\ngrants:\n  - {role: boss}\ncolour: red\n")
    assert main(["policy", "check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [  # every problem, whatever stage finds it
        f"{path}: line 1: roles.r.commands: unknown command 'teleport'",
        f"{path}: line 3: grants[0].role: unknown role 'boss'",
        f"{path}: line 4: colour: unknown key",
    ]
