"""Who may do what: a default-deny policy read from YAML, and pure functions that decide.

``decide(policy, actor, request)`` grants or refuses a command; ``check_engine_request`` reads the final Engine
API body a mutating command would send (the last word, whatever flags produced it); ``container_in_scope``
says whether an existing container may be touched. All are pure: same inputs, same answer, no I/O. Any
exception inside them is turned into a denial by the pipeline (fail closed).

Extensions to the documented file format (all optional):
- ``images`` may hold ``"@local"``: any image already present on the engine, never pulled.
- ``ports`` may hold ``"random"``: publishing to a host port the engine picks (``-p 80``).
- ``networks: {names: [globs], protect: [globs]}``: networks commands may touch besides chatdock's own.
- ``redact: [words]``: extra environment-name words whose values are masked in output.
- ``services: {labels, names, protect}``: swarm services commands may touch besides chatdock's own (as
  ``containers``); a task's container is in scope when its service is. ``limits.replicas``: the most replicas.
- ``teams`` on a grant: Slack workspaces (``T...``) besides the installing one whose people it admits.
- ``approve: [rules]``: requests that wait for other people's approval (:class:`ApprovalRule`, bot.approvals);
  checked after everything else, so they only ever hold back what would have run.

Lists never widen the policy. An empty list matches nothing (``users: []`` is nobody, ``channels: []`` no
channel, ``images: []`` no image); only ``"*"`` means anyone or anything; an omitted key keeps its documented
default (a grant without ``channels`` applies in every channel, without ``teams`` only to the installing
workspace's people). A grant that names nobody (no users, no groups) matches nobody. So removing an entry from
an allow-list never grants more than before. The documented exceptions are what only ever takes away:
``containers.protect`` and ``networks.protect`` are deny-lists (removing from them allows more, as meant),
``redact`` masks more when it lists more, and ``containers.labels`` is one selector a container must match in
full, as ``docker ps --filter label=...`` (removing a label from it selects more; ``{}`` selects nothing).
A YAML key left without a value (``users:``) is an empty list. ``chatdock policy check`` warns about every
empty list and every grant that names nobody (:func:`policy_warnings`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.errors import UsageError
from bot.models import Actor, ContainerFacts, Decision, NetworkFacts, Request
from bot.notify_routes import Route
from bot.parse_values import parse_memory

MANAGED_LABEL = "chatdock.managed"
OWNER_LABEL = "chatdock.owner"
RESERVED_LABEL_PREFIX = "chatdock."
PREDEFINED_NETWORKS = frozenset({"bridge", "host", "none"})
ANY = "*"


class PolicyError(Exception):
    """A policy file that cannot be used; ``problems`` are located, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class _Misplaced(ValueError):
    """A cross-reference problem found after the fields were read; ``path`` says where it stands in the file."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        """``users:`` with nothing under it is the emptied list the operator left, never "unset"."""
        if value is None and info.field_name in _LIST_FIELDS:
            return ()
        if value is None and info.field_name in _MAPPING_FIELDS:
            return {}
        if value is None and info.field_name == "hosts":  # a grant's list, the policy's per-host mapping
            return () if cls.__name__ in ("Grant", "ApprovalRule") else {}
        return value

    @field_validator("*")
    @classmethod
    def _no_blank_entries(cls, value: Any) -> Any:
        if isinstance(value, tuple) and any(isinstance(v, str) and not v.strip() for v in value):
            raise ValueError("an empty entry ('') is neither an ID nor a pattern; remove it")
        return value


_LIST_FIELDS = frozenset(
    {"commands", "include", "users", "groups", "channels", "teams", "names", "protect"}
    | {"grants", "images", "ports", "redact", "notify"}
)
_MAPPING_FIELDS = frozenset({"roles", "labels", "host_labels"})


class Role(_Strict):
    commands: tuple[str, ...] = ()
    include: tuple[str, ...] = ()


class Grant(_Strict):
    """Who gets a role: people named by Slack user ID (``"*"`` = anyone) or by user group, in ``channels``
    (omitted: every channel). People from other Slack workspaces (Slack Connect) match only when named by
    user ID, or when ``teams`` admits their workspace (``"*"``: every other workspace)."""

    role: str
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[str, ...] = (ANY,)
    teams: tuple[str, ...] = ()
    # Several hosts (CHATDOCK_HOSTS): the grant holds only on these hosts, by name or by labels. Absent: every
    # host; an empty list or mapping: no host (emptying a list never widens access).
    hosts: tuple[str, ...] | None = None
    host_labels: dict[str, str] | None = None

    def covers_host(self, host: str, labels: Mapping[str, str]) -> bool:
        if self.hosts is not None and ANY not in self.hosts and host not in self.hosts:
            return False
        if self.host_labels is not None:
            return bool(self.host_labels) and all(labels.get(k) == v for k, v in self.host_labels.items())
        return True

    def matches(self, actor: Actor) -> bool:
        if not actor.user:
            return False
        named = actor.user in self.users
        if not (named or ANY in self.users or set(self.groups) & set(actor.groups)):
            return False
        if actor.external and not named and not (ANY in self.teams or actor.user_team in self.teams):
            return False
        return ANY in self.channels or actor.channel in self.channels


class ContainerScope(_Strict):
    labels: dict[str, str] = Field(default_factory=dict)
    names: tuple[str, ...] = ()
    protect: tuple[str, ...] = ()


class NetworkScope(_Strict):
    names: tuple[str, ...] = ()
    protect: tuple[str, ...] = ()


class Limits(_Strict):
    memory: str | None = None
    cpus: float | None = None
    replicas: int | None = None  # the most replicas a swarm service may be scaled or updated to

    @field_validator("replicas")
    @classmethod
    def _replicas(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("replicas must be 0 or more (leave it out for no limit)")
        return value

    @field_validator("memory", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> Any:
        """``memory: 536870912`` is a YAML integer: bytes, as docker reads a bare number."""
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None and parse_memory_value(value) == 0:
            raise ValueError("memory must be greater than 0 (leave it out for no limit)")
        return value

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("cpus must be greater than 0")
        return value

    @property
    def memory_bytes(self) -> int | None:
        return parse_memory_value(self.memory) if self.memory else None

    @property
    def nano_cpus(self) -> int | None:
        return round(self.cpus * 1e9) if self.cpus else None


class HostScope(_Strict):
    """A host's own container, network and service scope (several hosts); what it leaves out is the policy's."""

    containers: ContainerScope | None = None
    networks: NetworkScope | None = None
    services: ContainerScope | None = None


# -- approvals (issue #13): `approve:` rules, checked after the ordinary policy (bot/approvals.py) ----------


class Approvers(_Strict):
    """Who may approve: people holding one of ``roles`` (through a grant), in one of ``groups``, or named in
    ``users`` (``"*"``: anyone). Empty lists match nobody."""

    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @field_validator("roles", mode="before")
    @classmethod
    def _roles_list(cls, value: Any) -> Any:
        return () if value is None or value == {} else value


class ApprovalRule(_Strict):
    """One ``approve:`` entry: requests for ``commands`` (on ``hosts`` / ``host_labels``; for ``run``, of
    ``images``) that the policy allows wait until ``count`` distinct eligible people approved them."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    commands: tuple[str, ...]
    hosts: tuple[str, ...] | None = None
    host_labels: dict[str, str] | None = None
    images: tuple[str, ...] | None = None
    count: int = Field(1, ge=1, le=10)
    approvers: Approvers
    allow_self: bool = Field(False, alias="self")
    ttl: float = 900.0
    reason: str = "optional"

    @field_validator("ttl", mode="before")
    @classmethod
    def _ttl(cls, value: Any) -> Any:
        """``15m``, ``1h``, ``90s`` or a number of seconds; from 1 s to 7 days."""
        seconds = parse_ttl(value)
        if not 1 <= seconds <= 7 * 86400:
            raise ValueError(f"ttl {value!r} is out of range (1s to 7d)")
        return seconds

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        if value not in ("required", "optional"):
            raise ValueError(f"reason must be 'required' or 'optional' (got {value!r})")
        return value

    def covers_host(self, host: str, labels: Mapping[str, str]) -> bool:
        if self.hosts is not None and ANY not in self.hosts and host not in self.hosts:
            return False
        if self.host_labels is not None:
            return bool(self.host_labels) and all(labels.get(k) == v for k, v in self.host_labels.items())
        return True


def parse_ttl(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(value))
    if not match:
        raise ValueError(f"invalid ttl {value!r} (use 90s, 15m, 2h or 1d)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# -- end approvals ------------------------------------------------------------------------------------------


class Policy(_Strict):
    roles: dict[str, Role] = Field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    images: tuple[str, ...] = ()
    containers: ContainerScope = Field(default_factory=ContainerScope)
    networks: NetworkScope = Field(default_factory=NetworkScope)
    services: ContainerScope = Field(default_factory=ContainerScope)  # swarm services, as containers: labels, names
    ports: tuple[str, ...] = ()
    limits: Limits = Field(default_factory=Limits)
    redact: tuple[str, ...] = ()
    protected_ids: tuple[str, ...] = ()  # filled at start-up (chatdock's own container), not from the file
    hosts: dict[str, HostScope] = Field(default_factory=dict)  # per host (CHATDOCK_HOSTS names), replacing the above
    approve: tuple[ApprovalRule, ...] = ()  # approvals (issue #13): requests that wait for a second person
    notify: tuple[Route, ...] = ()  # incidents to channels (bot.notify_routes, bot.notify)

    def for_host(self, host: str) -> Policy:
        """The policy as it applies on ``host``: its own ``containers`` / ``networks`` / ``services`` scope where it
        has one."""
        scope = self.hosts.get(host)
        if scope is None:
            return self
        update: dict[str, Any] = {}
        if scope.containers is not None:
            update["containers"] = scope.containers
        if scope.networks is not None:
            update["networks"] = scope.networks
        if scope.services is not None:
            update["services"] = scope.services
        return self.model_copy(update=update)

    @field_validator("ports", mode="before")
    @classmethod
    def _port_numbers(cls, value: Any) -> Any:
        """``ports: [8080]`` is a YAML integer: read it as the port it plainly is."""
        if isinstance(value, list | tuple):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if entry != "random":
                parse_range(entry)
        return value

    @model_validator(mode="after")
    def _references(self) -> Policy:
        for name, role in self.roles.items():
            for included in role.include:
                if included not in self.roles:
                    raise _Misplaced(("roles", name, "include"), f"roles.{name}.include: unknown role '{included}'")
        for index, grant in enumerate(self.grants):
            if grant.role not in self.roles:
                raise _Misplaced(("grants", index, "role"), f"grants[{index}].role: unknown role '{grant.role}'")
        for index, rule in enumerate(self.approve):  # approvals (issue #13)
            for approver_role in rule.approvers.roles:
                if approver_role not in self.roles:
                    where = ("approve", index, "approvers", "roles")
                    raise _Misplaced(where, f"approve[{index}].approvers.roles: unknown role '{approver_role}'")
        for name in self.roles:
            self.role_commands(name)  # raises on include cycles
        return self

    def role_commands(self, name: str, _path: tuple[str, ...] = ()) -> frozenset[str]:
        if name in _path:
            raise _Misplaced(("roles", name, "include"), f"roles.{name}.include: cycle {' -> '.join((*_path, name))}")
        role = self.roles[name]
        commands = set(role.commands)
        for included in role.include:
            commands |= self.role_commands(included, (*_path, name))
        return frozenset(commands)

    def with_protected_ids(self, ids: Iterable[str]) -> Policy:
        return self.model_copy(update={"protected_ids": tuple(ids)})


# ------------------------------------------------------------------------------------------ loading


def parse_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,5})(?:-(\d{1,5}))?", text)
    if not match:
        raise ValueError(f"invalid port range '{text}' (use 8080 or 8000-9999)")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"invalid port range '{text}' (ports are 1-65535, low before high)")
    return low, high


def parse_memory_value(text: str) -> int:
    """docker's RAMInBytes (``512m``, ``1g``); a ValueError so pydantic reports it where it stands."""
    try:
        return parse_memory(text)
    except UsageError as exc:
        raise ValueError(exc.message) from None


def _locate(document: str, path: tuple[str | int, ...]) -> str:
    """Line number of ``path`` in the YAML text, for located error messages."""
    try:
        node: Any = yaml.compose(document)
    except yaml.YAMLError:
        return ""
    line = node.start_mark.line + 1 if node is not None else 0
    for key in path:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == key), None)
            if found is None:
                break
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        line = node.start_mark.line + 1
    return f"line {line}: " if line else ""


def _line_of(problem: str) -> int:
    match = re.match(r"line (\d+): ", problem)
    return int(match.group(1)) if match else 0


def load_policy_text(text: str, *, source: str = "policy", known_commands: Iterable[str] = ()) -> Policy:
    """Parse and validate a policy document. Every problem is reported at once, each with where it is, in
    the order of the file: field errors, references to roles that do not exist, include cycles and unknown
    commands are all looked for, even when other parts of the file are wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise PolicyError(source, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise PolicyError(source, ["line 1: the policy must be a mapping with roles, grants, images, ..."])
    problems: list[str] = []
    misplaced: list[str] = []
    policy: Policy | None = None
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors():
            found = (error.get("ctx") or {}).get("error")
            if isinstance(found, _Misplaced):  # references are checked below on the raw document, whatever else
                misplaced.append(f"{_locate(text, found.path)}{found}")  # is wrong; this is only a fallback
                continue
            path = tuple(error["loc"])
            dotted = _dotted(path) or "policy"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            elif error["type"] in ("tuple_type", "list_type"):
                found_value = error.get("input")
                message = (
                    f'must be a list (write ["{found_value}"])' if isinstance(found_value, str) else "must be a list"
                )
            elif error["type"] == "dict_type":
                message = "must be a mapping (write {key: value})"
            problems.append(f"{_locate(text, path)}{dotted}: {message}")
    problems += [f"{_locate(text, path)}{message}" for path, message in _reference_problems(raw, set(known_commands))]
    if problems or policy is None:
        raise PolicyError(source, sorted(problems or misplaced, key=_line_of))
    return policy


_EMPTY_MEANS = {
    "labels": "empty, so it selects no container",
    "roles": "empty, so no role exists to grant",
    "teams": "empty list, so it admits no other workspace",
    "protect": "empty list, so it protects nothing",
    "redact": "empty list, so it adds no secret words",
    "host_labels": "empty mapping, so it matches no host",
}


def _dotted(path: tuple[Any, ...]) -> str:
    """``("grants", 0, "users")`` → ``grants[0].users``, as every message about a policy names a place."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


# Entries matched as exact Slack IDs (``"*"`` alone: anyone), never as patterns.
_ID_FIELDS = frozenset({"users", "groups", "channels", "teams"})


def _id_entry_warning(entry: str) -> str | None:
    if entry != entry.strip():
        fixed = entry.strip()
        return f"'{entry}' has spaces around it, so it matches nothing; write \"{fixed}\""
    if entry != ANY and any(c in entry for c in "*?["):
        return f"'{entry}' looks like a pattern, but only exact IDs are matched (\"*\" alone means any)"
    return None


def policy_warnings(text: str, policy: Policy) -> list[str]:
    """What ``chatdock policy check`` warns about in a valid policy, located like errors: every list (or
    mapping) written empty, which matches nothing; every grant that names nobody; and entries of ID lists
    (``users``, ``groups``, ``channels``, ``teams``) that look like patterns (``U*``) or carry spaces (``" * "``),
    since those lists match exact IDs only."""
    warnings: list[str] = []

    def empty(path: tuple[str | int, ...], what: str) -> None:
        warnings.append(f"{_locate(text, path)}{_dotted(path)}: {what}")

    def walk(model: BaseModel, path: tuple[str | int, ...]) -> None:
        for name in sorted(model.model_fields_set, key=list(type(model).model_fields).index):
            value = getattr(model, name)
            here = (*path, name)
            if isinstance(value, dict) and not value:
                empty(here, _EMPTY_MEANS.get(name, "empty mapping, so it matches nothing"))
            elif isinstance(value, tuple) and not value:
                empty(here, _EMPTY_MEANS.get(name, "empty list, so it matches nothing"))
            elif name in _ID_FIELDS and isinstance(value, tuple):
                for index, entry in enumerate(value):
                    problem = _id_entry_warning(entry) if isinstance(entry, str) else None
                    if problem:
                        empty((*here, index), problem)
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, BaseModel):
                        walk(item, (*here, key))
            elif isinstance(value, tuple):
                for index, item in enumerate(value):
                    if isinstance(item, BaseModel):
                        walk(item, (*here, index))
            elif isinstance(value, BaseModel):
                walk(value, here)

    walk(policy, ())
    for index, grant in enumerate(policy.grants):
        if not grant.users and not grant.groups:
            empty(("grants", index), "names nobody (no users, no groups), so it matches nobody")
    return sorted(warnings, key=_line_of)


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _reference_problems(raw: dict[str, Any], known: set[str]) -> list[tuple[tuple[str | int, ...], str]]:
    """Unknown roles (in grants and includes), include cycles and unknown commands, read from the document as
    written, so they are reported together with any field errors."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    roles = _mapping(raw.get("roles"))
    includes: dict[str, list[str]] = {}
    for name, written in roles.items():
        body = _mapping(written)
        includes[str(name)] = [str(i) for i in _sequence(body.get("include")) if isinstance(i, str)]
        for included in includes[str(name)]:
            if included not in roles:
                found.append((("roles", name, "include"), f"roles.{name}.include: unknown role '{included}'"))
        for index, command in enumerate(_sequence(body.get("commands"))):
            if known and isinstance(command, str) and command != ANY and command not in known:
                message = f"roles.{name}.commands: unknown command '{command}'"
                found.append((("roles", name, "commands", index), message))
    for index, grant in enumerate(_sequence(raw.get("grants"))):
        role = _mapping(grant).get("role")
        if isinstance(role, str) and role not in roles:
            found.append((("grants", index, "role"), f"grants[{index}].role: unknown role '{role}'"))
    for index, rule in enumerate(_sequence(raw.get("approve"))):  # approvals (issue #13)
        body = _mapping(rule)
        for position, command in enumerate(_sequence(body.get("commands"))):
            if known and isinstance(command, str) and command != ANY and command not in known:
                message = f"approve[{index}].commands: unknown command '{command}'"
                found.append((("approve", index, "commands", position), message))
        for role in _sequence(_mapping(body.get("approvers")).get("roles")):
            if isinstance(role, str) and role not in roles:
                path: tuple[str | int, ...] = ("approve", index, "approvers", "roles")
                found.append((path, f"approve[{index}].approvers.roles: unknown role '{role}'"))
    reported: set[frozenset[str]] = set()

    def walk(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            cycle = path[path.index(name) :]
            if frozenset(cycle) not in reported:
                reported.add(frozenset(cycle))
                shown = " -> ".join((*cycle, name))
                found.append((("roles", name, "include"), f"roles.{name}.include: cycle {shown}"))
            return
        for included in includes.get(name, []):
            walk(included, (*path, name))

    for name in includes:
        walk(name, ())
    return found


def load_policy_file(path: Path, *, known_commands: Iterable[str] = ()) -> Policy:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read the file ({exc.strerror})"]) from None
    return load_policy_text(text, source=str(path), known_commands=known_commands)


BUILTIN_POLICY_TEXT = """\
# chatdock's built-in policy, used by `chatdock shell` when CHATDOCK_POLICY is not set: the person at the
# terminal already controls this engine, so they may run every command on every container, with images that
# are already present on the host (nothing is pulled). The hard refusals (--privileged, host mounts, ...)
# still apply: they are not part of any policy.
roles:
  admin: {commands: ["*"]}
grants:
  - {role: admin, users: ["*"]}
images: ["@local"]
containers: {names: ["*"]}
networks: {names: ["*"]}
services: {names: ["*"]}
ports: ["1-65535", "random"]
"""


def builtin_policy() -> Policy:
    return load_policy_text(BUILTIN_POLICY_TEXT, source="built-in policy")


# ------------------------------------------------------------------------------------------ deciding


def allow(rule: str, reason: str) -> Decision:
    return Decision(allowed=True, rule=rule, reason=reason)


def deny(rule: str, reason: str) -> Decision:
    return Decision(allowed=False, rule=rule, reason=reason)


def commands_for(policy: Policy, actor: Actor) -> tuple[frozenset[str], list[str]]:
    """Every command ``actor`` may run, and the roles that give them."""
    commands: set[str] = set()
    roles: list[str] = []
    for grant in policy.grants:
        if grant.matches(actor):
            commands |= policy.role_commands(grant.role)
            roles.append(grant.role)
    return frozenset(commands), roles


def may_run(policy: Policy, actor: Actor, command: str, host: HostRef | None = None) -> Decision:
    """``host``: the configured host the command is for (several hosts); grants limited to hosts must cover it."""
    for index, grant in enumerate(policy.grants):
        if grant.matches(actor) and (host is None or grant.covers_host(host.name, host.labels)):
            granted = policy.role_commands(grant.role)
            if command in granted or ANY in granted:
                on = f" on host {host.name}" if host is not None and host.shown else ""
                return allow(f"grants[{index}]", f"role {grant.role} may run `{command}`{on}")
    where = f" in channel {actor.channel}" if actor.channel else ""
    on = f" on host {host.name}" if host is not None and host.shown else ""
    return deny("default-deny", f"no grant lets {actor.user}{where} run `{command}`{on}")


@dataclass(frozen=True)
class HostRef:
    """The host a request is for, as policy sees it: its name and labels (``shown``: named in reasons)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    shown: bool = True


def decide(policy: Policy, actor: Actor, request: Request, host: HostRef | None = None) -> Decision:
    """May ``actor`` run this command at all (on ``host``)? (Targets and engine bodies are checked separately.)"""
    return may_run(policy, actor, request.command, host)


def _glob_any(value: str, patterns: Iterable[str]) -> str | None:
    for pattern in patterns:
        if fnmatch.fnmatchcase(value, pattern):
            return pattern
    return None


def container_in_scope(policy: Policy, container: ContainerFacts) -> Decision:
    """May commands touch this existing container? chatdock's own, or listed by label or name; never protected."""
    if any(container.id.startswith(pid) or pid.startswith(container.id) for pid in policy.protected_ids):
        return deny("containers.protect", f"{container.name} is chatdock's own container")
    protected = _glob_any(container.name, policy.containers.protect)
    if protected:
        return deny("containers.protect", f"{container.name} is protected (matches '{protected}')")
    if container.labels.get(MANAGED_LABEL) == "true":
        return allow("containers.managed", f"{container.name} was started by chatdock")
    wanted = policy.containers.labels
    if wanted and all(container.labels.get(k) == v for k, v in wanted.items()):
        return allow("containers.labels", f"{container.name} carries the labels {wanted}")
    named = _glob_any(container.name, policy.containers.names)
    if named:
        return allow("containers.names", f"{container.name} matches '{named}'")
    service = container.labels.get(SERVICE_NAME_LABEL)
    if service:  # a swarm task's container is in scope when its service is
        task_of = service_in_scope(policy, service, container.labels)
        if task_of.allowed:
            return allow(task_of.rule, f"{container.name} is a task of service {service} ({task_of.reason})")
    return deny("containers.scope", f"{container.name} was not started by chatdock and the policy does not list it")


def network_in_scope(policy: Policy, network: NetworkFacts, *, for_removal: bool = False) -> Decision:
    if for_removal and network.name in PREDEFINED_NETWORKS:
        return deny("networks.predefined", f"{network.name} is one of docker's predefined networks")
    if network.name == "host" or network.driver == "host":
        return deny("never:network-host", "containers may not join the host's network")
    protected = _glob_any(network.name, policy.networks.protect)
    if protected:
        return deny("networks.protect", f"network {network.name} is protected (matches '{protected}')")
    if network.labels.get(MANAGED_LABEL) == "true":
        return allow("networks.managed", f"network {network.name} was created by chatdock")
    if not for_removal and network.name in ("bridge", "none"):
        return allow("networks.default", f"{network.name} is docker's default network")
    named = _glob_any(network.name, policy.networks.names)
    if named:
        return allow("networks.names", f"network {network.name} matches '{named}'")
    return deny(
        "networks.scope",
        f"network {network.name} was not created by chatdock and the policy does not list it",
    )


def dns_key(name: str, network: str) -> str:
    """A DNS name as docker's embedded resolver compares it: case-insensitive, without a trailing dot, and
    ``NAME.NETWORK`` is the same as ``NAME`` (docker answers both)."""
    key, suffix = name.rstrip(".").lower(), "." + network.lower()
    return key[: -len(suffix)] if key.endswith(suffix) and len(key) > len(suffix) else key


def impersonation(
    policy: Policy,
    *,
    network: str,
    claimed: Iterable[str],
    members: Iterable[tuple[ContainerFacts, Iterable[str]]],
) -> Decision | None:
    """Refuse a DNS name on ``network`` that already leads to a container the caller may not touch.

    On a user-defined network docker's DNS answers a container's name, its aliases and its host name; a second
    container answering to the same name gets part of its traffic. ``members`` are the other containers on the
    network with the names they answer to there. ``None`` when nothing clashes.
    """
    wanted = {dns_key(name, network): name for name in claimed if name}
    for member, names in members:
        taken = {dns_key(name, network) for name in (member.name, *names) if name}
        clash = sorted(wanted[key] for key in wanted.keys() & taken)
        if not clash:
            continue
        scope = container_in_scope(policy, member)
        if scope.allowed:
            continue
        return deny(
            "networks.impersonation",
            f"`{clash[0]}` already leads to {member.name} on network {network}, which you may not touch "
            f"({scope.reason}); a second container answering to it would take part of its traffic",
        )
    return None


# ------------------------------------------------------------------------------------------ images


_DIGEST = re.compile(r"@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9-]+)*(?::\d+)?$")


class ImageRef(BaseModel):
    """A parsed image reference, normalised the way Docker Hub names are (``docker.io/library/`` dropped)."""

    model_config = ConfigDict(frozen=True)
    repository: str
    tag: str | None
    digest: str | None

    @property
    def with_tag(self) -> str:
        return f"{self.repository}:{self.tag or 'latest'}"

    @property
    def original(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += self.digest
        return text


def parse_image(text: str) -> ImageRef:
    """Validate an image reference with the distribution/reference grammar; docker's own error wording."""
    invalid = UsageError(f"invalid reference format: {text!r} is not a valid image name")
    if not text or len(text) > 255:
        raise invalid
    digest = None
    match = _DIGEST.search(text)
    if match:
        digest = match.group(0)
        text = text[: match.start()]
    tag = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.match(tag):
            raise invalid
    parts = text.split("/")
    domain = None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain = parts.pop(0)
        if not _DOMAIN.match(domain):
            raise invalid
    if not parts or not all(_PATH_COMPONENT.match(p) for p in parts):
        if any(p != p.lower() for p in parts):
            raise UsageError(f"invalid reference format: repository name {text!r} must be lowercase")
        raise invalid
    if domain in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        domain = None
    if domain is None and len(parts) == 2 and parts[0] == "library":
        parts = parts[1:]
    repository = "/".join(([domain] if domain else []) + parts)
    return ImageRef(repository=repository, tag=tag, digest=digest)


def _image_pattern(policy: Policy, image: ImageRef) -> str | None:
    """The first glob in ``images`` that names ``image`` (``@local`` names none)."""
    for pattern in policy.images:
        if pattern == "@local":
            continue
        tagged = ":" in pattern.rsplit("/", 1)[-1]
        if tagged and image.digest and not image.tag:
            continue  # a tag pattern says nothing about a digest
        if fnmatch.fnmatchcase(image.with_tag if tagged else image.repository, pattern):
            return pattern
    return None


def image_allowed(policy: Policy, image: ImageRef) -> Decision:
    """Check an image against ``images`` (globs on repository or repository:tag) before anything is pulled.
    A pattern that names the image wins over ``"@local"``, wherever each stands: it also allows pulling, so
    removing ``"@local"`` from the list can never start allowing a pull."""
    named = _image_pattern(policy, image)
    if named is not None:
        return allow(f"images[{named}]", f"{image.original} matches '{named}'")
    if "@local" in policy.images:
        return allow("images[@local]", f"{image.original} may run if it is already on this host")
    return deny("images", f"Image {image.original} is not allowed by policy")


def pull_allowed(policy: Policy, image: ImageRef) -> Decision:
    """May ``image`` be fetched from its registry? Only a glob in ``images`` says so: ``@local`` never pulls.
    Decided on the reference as typed, before anything is fetched."""
    named = _image_pattern(policy, image)
    if named is not None:
        return allow(f"images[{named}]", f"{image.original} matches '{named}'")
    if "@local" in policy.images:
        return deny(
            "images[@local]",
            f"Image {image.original} may not be pulled: the policy allows only images already on this host",
        )
    return deny("images", f"Image {image.original} is not allowed by policy")


def may_pull(policy: Policy, image: ImageRef) -> bool:
    return pull_allowed(policy, image).allowed


def image_removable(policy: Policy, names: Iterable[str]) -> Decision:
    """May ``rmi`` / ``image prune`` remove an image with these names (its repo:tags, or the name typed)?

    The images a policy lets people use are the images they may clean up: every name must be allowed by
    ``images`` (removing by ID removes every tag). An untagged image has no name for a glob to match: only a
    policy with ``@local`` or ``"*"`` (everything already on the host) covers it.
    """
    shown = [name for name in names if name and not name.startswith("<none>")]
    if not shown:
        if "@local" in policy.images or ANY in policy.images:
            return allow("images[@local]" if "@local" in policy.images else "images[*]", "an untagged image")
        return deny("images", "an untagged image is covered only by a policy with '@local' or '*' in images")
    decision = allow("images", "")
    for name in shown:
        try:
            ref = parse_image(name)
        except UsageError:
            return deny("images", f"Image {name} is not allowed by policy")
        decision = image_allowed(policy, ref)
        if not decision.allowed:
            return decision
    return decision


# ------------------------------------------------------------------------------------------ engine bodies

_DANGEROUS_CONFINEMENT = re.compile(r"(seccomp|apparmor|systempaths)[=:]unconfined|label[=:]disable", re.I)


def check_create_body(policy: Policy, body: dict[str, Any]) -> Decision:
    """Read a ``POST /containers/create`` body as the engine would, refusing what chat must never start."""
    host = body.get("HostConfig") or {}
    if host.get("Privileged"):
        return deny("never:privileged", "privileged containers are never allowed")
    if host.get("Binds") or any(_mounts_host(m or {}) for m in host.get("Mounts") or []):
        return deny("never:host-mounts", "host bind mounts are never allowed")
    if host.get("VolumesFrom"):
        return deny("never:volumes-from", "--volumes-from is never allowed")
    if host.get("Devices") or host.get("DeviceRequests") or host.get("DeviceCgroupRules"):
        return deny("never:devices", "host devices are never allowed")
    if host.get("CapAdd"):
        return deny("never:cap-add", "adding capabilities is never allowed")
    if host.get("MaskedPaths") is not None or host.get("ReadonlyPaths") is not None:  # [] unmasks /proc, /sys
        return deny("never:security-opt", "changing the masked and read-only /proc and /sys paths is never allowed")
    for option in host.get("SecurityOpt") or []:
        if _DANGEROUS_CONFINEMENT.search(str(option)) or not str(option).startswith("no-new-privileges"):
            return deny("never:security-opt", f"security option {option!r} is never allowed")
    for mode in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"):
        value = str(host.get(mode) or "")
        if value == "host" or value.startswith("container:"):
            return deny("never:host-namespaces", f"{mode} {value} shares a namespace and is never allowed")
    network_mode = str(host.get("NetworkMode") or "")
    if network_mode == "host" or network_mode.startswith("container:"):
        return deny("never:network-host", f"network {network_mode} is never allowed")
    if host.get("Sysctls") or host.get("Runtime") or host.get("CgroupParent"):
        return deny("never:host-tuning", "sysctls, runtimes and cgroup parents are never allowed")
    image_decision = image_allowed(policy, parse_image(str(body.get("Image", ""))))
    if not image_decision.allowed:
        return image_decision
    ports = _check_ports(policy, host)
    if ports is not None:
        return ports
    limits = _check_limits(policy, host)
    if limits is not None:
        return limits
    return allow(image_decision.rule, image_decision.reason)


def _mounts_host(mount: dict[str, Any]) -> bool:
    """A bind (or named pipe) mount, or a volume whose driver options can point it at a host path
    (``volume-opt=type=none,o=bind,device=/etc``)."""
    if mount.get("Type") in ("bind", "npipe"):
        return True
    return bool(((mount.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options"))


def _check_ports(policy: Policy, host: dict[str, Any]) -> Decision | None:
    if host.get("PublishAllPorts") and "random" not in policy.ports:
        return deny("ports", "publishing every exposed port on random host ports (-P) is not allowed")
    bindings: dict[str, list[dict[str, str]] | None] = host.get("PortBindings") or {}
    ranges = [parse_range(entry) for entry in policy.ports if entry != "random"]
    for container_port, hosts in bindings.items():
        for binding in hosts or []:
            host_port = binding.get("HostPort", "")
            if host_port in ("", "0"):
                if "random" not in policy.ports:
                    return deny("ports", f"publishing {container_port} on a random host port is not allowed")
                continue
            low, high = parse_range(host_port)
            if not any(lo <= low and high <= hi for lo, hi in ranges):
                allowed = ", ".join(policy.ports) or "none"
                return deny("ports", f"host port {host_port} is not allowed by policy (allowed: {allowed})")
    return None


def _check_limits(policy: Policy, host: dict[str, Any]) -> Decision | None:
    memory_cap = policy.limits.memory_bytes
    memory = int(host.get("Memory") or 0)
    if memory_cap and (memory == 0 or memory > memory_cap):
        return deny("limits.memory", f"memory above the policy's limit of {policy.limits.memory}")
    cpu_cap = policy.limits.nano_cpus
    cpus = int(host.get("NanoCpus") or 0)
    if cpu_cap and (cpus == 0 or cpus > cpu_cap):
        return deny("limits.cpus", f"more than the policy's limit of {policy.limits.cpus:g} CPUs")
    return None


def check_labels(labels: dict[str, str]) -> Decision | None:
    for key in labels:
        if key.startswith(RESERVED_LABEL_PREFIX):
            return deny("never:reserved-label", f"labels starting with '{RESERVED_LABEL_PREFIX}' are chatdock's own")
    return None


def check_network_body(body: dict[str, Any]) -> Decision | None:
    driver = str(body.get("Driver") or "bridge")
    if driver != "bridge":
        return deny("never:network-driver", f"only bridge networks may be created from chat (not {driver})")
    return None


EngineCallView = tuple[str, str, dict[str, Any] | None] | tuple[str, str, dict[str, Any] | None, dict[str, Any]]


def check_engine_calls(policy: Policy, calls: Iterable[EngineCallView]) -> Decision | None:
    """Policy's last word on the Engine requests a command would send, whatever flags produced them:
    ``(method, path, body[, query params])``."""
    for call in calls:
        method, path, body = call[0], call[1], call[2]
        params: dict[str, Any] = call[3] if len(call) > 3 else {}
        if method == "POST" and path == "/images/create":
            reference = str(params.get("fromImage", ""))
            tag = str(params.get("tag") or "")
            if tag:
                reference += ("@" if ":" in tag else ":") + tag  # a digest is sent as the tag
            decision = pull_allowed(policy, parse_image(reference))
            if not decision.allowed:
                return decision
        elif method == "POST" and path == "/containers/create":
            decision = check_create_body(policy, body or {})
            if not decision.allowed:
                return decision
        elif method == "POST" and path.endswith("/exec") and (body or {}).get("Privileged"):
            return deny("never:privileged", "privileged exec is never allowed")
        elif method == "POST" and path == "/networks/create":
            refused = check_network_body(body or {})
            if refused is not None:
                return refused
        elif method == "POST" and _SERVICE_WRITE.fullmatch(path):
            refused = check_service_spec(policy, body or {})
            if refused is not None:
                return refused
    return None


# ------------------------------------------------------------------------------------------ swarm services

SERVICE_NAME_LABEL = "com.docker.swarm.service.name"  # the engine sets it on every task's container
_SERVICE_WRITE = re.compile(r"/services/create|/services/[A-Za-z0-9_.-]+/update")


def service_in_scope(policy: Policy, name: str, labels: Mapping[str, str]) -> Decision:
    """May commands touch this swarm service? As containers: never a protected one; chatdock's own, the ones
    carrying every label of ``services.labels``, or named by ``services.names``."""
    protected = _glob_any(name, policy.services.protect)
    if protected:
        return deny("services.protect", f"service {name} is protected (matches '{protected}')")
    if labels.get(MANAGED_LABEL) == "true":
        return allow("services.managed", f"service {name} was created by chatdock")
    wanted = policy.services.labels
    if wanted and all(labels.get(k) == v for k, v in wanted.items()):
        return allow("services.labels", f"service {name} carries the labels {wanted}")
    named = _glob_any(name, policy.services.names)
    if named:
        return allow("services.names", f"service {name} matches '{named}'")
    return deny("services.scope", f"service {name} is not listed by the policy")


def check_service_spec(
    policy: Policy, spec: Mapping[str, Any], *, host_networks: Iterable[str] = ("host",)
) -> Decision | None:
    """The hard refusals, read from a service spec (``POST /services/create``, ``/services/{id}/update``) wherever
    they stand in its TaskTemplate, and the most replicas ``limits`` allows. ``host_networks``: the names and
    IDs of the engine's host network (a spec read back from the engine names networks by ID)."""
    task = spec.get("TaskTemplate") or {}
    container = task.get("ContainerSpec") or {}
    if any(_mounts_host(mount or {}) for mount in container.get("Mounts") or []):
        return deny("never:host-mounts", "host bind mounts (the Docker socket among them) are never allowed")
    if container.get("CapabilityAdd"):
        return deny("never:cap-add", "adding capabilities is never allowed")
    privileges = container.get("Privileges") or {}
    if ((privileges.get("SELinuxContext") or {}).get("Disable")
            or (privileges.get("Seccomp") or {}).get("Mode") == "unconfined"
            or (privileges.get("AppArmor") or {}).get("Mode") == "disabled"):  # fmt: skip
        return deny("never:security-opt", "disabling the container's confinement is never allowed")
    if container.get("Sysctls") or (task.get("Runtime") not in (None, "", "container")):
        return deny("never:host-tuning", "sysctls and other runtimes are never allowed")
    hosts = set(host_networks)
    for network in [*(task.get("Networks") or []), *(spec.get("Networks") or [])]:
        if str((network or {}).get("Target", "")) in hosts:
            return deny("never:network-host", "services may not join the host's network")
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
    cap = policy.limits.replicas
    if cap is not None and replicas is not None and int(replicas) > cap:
        return deny("limits.replicas", f"{replicas} replicas is more than the policy's limit of {cap}")
    return None
