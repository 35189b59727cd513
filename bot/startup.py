"""Checking the local settings before chatdock starts: every bad one at once, one line each.

``chatdock serve`` and ``chatdock shell`` both call :func:`read_settings` and :func:`check_local`, so the same
bad setting is named the same way by both. The checks need nothing from Slack and run before it is contacted:
the environment's values (each malformed variable, by its name), the HTTP port (valid and free; ``serve``
only), the policy file (every problem in it), the audit log (``CHATDOCK_DB`` opens), the hosts file
(``CHATDOCK_HOSTS``: its first problem), ``CHATDOCK_SELF_CONTAINER`` (names a container), and the Docker engine. An
engine that does not answer is a warning, not an error: chatdock starts, ``/healthz`` says 503, and commands
fail with a clear message until the engine is back (a malformed ``DOCKER_HOST`` is an error). Lines never hold a
secret: the values of token settings are never shown.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.audit import AuditStore
from bot.config import Settings
from bot.engine import Engine
from bot.errors import ChatdockError, EngineUnavailable
from bot.hosts import HostsError, load_hosts_file
from bot.own_container import SelfContainerError, find_own_container
from bot.policy import Policy, PolicyError, policy_warnings
from bot.wiring import SELF_LOOKUP_TIMEOUT, load_policy, open_store

SECRET_FIELDS = frozenset({"slack_bot_token", "slack_signing_secret", "slack_app_token"})
ENGINE_CHECK_TIMEOUT = 5.0  # seconds: an engine that has not answered by then is reported, not waited for


def env_name(field_name: str) -> str:
    """The environment variable a setting is read from (``workers`` → ``CHATDOCK_WORKERS``)."""
    if field_name.startswith("slack_") or field_name == "docker_host":
        return field_name.upper()
    return f"CHATDOCK_{field_name.upper()}"


def read_settings(**overrides: Any) -> tuple[Settings, list[str]]:
    """Settings from the environment, and one line per malformed variable. The malformed ones fall back to their
    defaults so that every other check can still run (the caller stops when there is any line)."""
    problems: list[str] = []
    try:
        settings = Settings()
    except ValidationError as exc:
        bad: set[str] = set()
        for error in exc.errors():
            field_name = _field_of(str(error["loc"][0])) if error["loc"] else ""
            bad.add(field_name)
            shown = "" if field_name in SECRET_FIELDS else f" (got {error.get('input')!r})"
            problems.append(f"bad setting {env_name(field_name) if field_name else 'a setting'}: {error['msg']}{shown}")
        defaults = {name: Settings.model_fields[name].get_default() for name in bad if name in Settings.model_fields}
        settings = Settings(**defaults)
    return (settings.model_copy(update=overrides) if overrides else settings), problems


def _field_of(loc: str) -> str:
    """pydantic names an aliased field by its alias (``DOCKER_HOST``): the field it belongs to."""
    lowered = loc.lower()
    for name in Settings.model_fields:
        if lowered in (name, f"chatdock_{name}"):
            return name
    return lowered


@dataclass
class LocalCheck:
    """What :func:`check_local` found, and what it opened for the caller to use (or :meth:`close`)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    policy: Policy | None = None
    policy_source: str = ""
    store: AuditStore | None = None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def check_local(
    settings: Settings, *, need_policy_file: bool, listen: tuple[str, int] | None = None, open_log: bool = True
) -> LocalCheck:
    """Check everything local, in a fixed order (port, policy, audit log, engine), collecting every problem.
    ``listen`` is ``serve``'s (host, port); ``open_log`` opens the audit log and hands it over in ``store``."""
    check = LocalCheck()
    if listen is not None:
        check.errors += port_problems(*listen)
    _check_policy(settings, check, need_policy_file=need_policy_file)
    if open_log:
        try:
            check.store = open_store(settings, check.policy or Policy())
        except SystemExit as exc:  # the wiring's one-line refusal, already naming the log
            check.errors.append(f"CHATDOCK_DB: {str(exc.code).removeprefix('chatdock: ')}")
    check.errors += hosts_problems(settings)
    engine_error, engine_warning = engine_problems(settings)
    check.errors += engine_error
    check.warnings += engine_warning
    if not engine_error:
        check.errors += self_container_problems(settings)
    return check


def hosts_problems(settings: Settings) -> list[str]:
    """``CHATDOCK_HOSTS``: the file's first problem, worded as the wiring would stop on it (no connection)."""
    if settings.hosts is None:
        return []
    try:
        load_hosts_file(settings.hosts)
    except HostsError as exc:
        return [exc.setting_line()]
    return []


def self_container_problems(settings: Settings) -> list[str]:
    """``CHATDOCK_SELF_CONTAINER`` that names no container is an error (an engine that does not answer is not:
    the name is then protected as given, with a warning when the pipeline is built)."""
    if not settings.self_container:
        return []
    engine = Engine(base_url=settings.docker_host, timeout=min(SELF_LOOKUP_TIMEOUT, settings.docker_timeout))
    try:
        find_own_container(engine=engine, setting=settings.self_container)
    except SelfContainerError as exc:
        return [str(exc)]
    finally:
        engine.close()
    return []


def port_problems(host: str, port: int) -> list[str]:
    """Is ``host:port`` valid and free? (``--port 0``: any free port.) Bound and released at once, the way
    waitress binds it (``SO_REUSEADDR``), so a port in TIME_WAIT is not reported."""
    if not 0 <= port <= 65535:
        return [f"--port {port}: not a TCP port (0-65535)"]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return [f"--host {host}: cannot listen there ({exc.strerror})"]
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return [f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})"]
    return []


def _check_policy(settings: Settings, check: LocalCheck, *, need_policy_file: bool) -> None:
    try:
        check.policy, check.policy_source = load_policy(settings, allow_builtin=not need_policy_file)
    except PolicyError as exc:
        check.errors += [f"CHATDOCK_POLICY {exc.source}: {problem}" for problem in exc.problems]
        return
    except SystemExit:  # no file, and serve needs one
        check.errors.append("CHATDOCK_POLICY is not set; `serve` needs a policy file (see policy.example.yml)")
        return
    if settings.policy is not None:
        text = Path(settings.policy).read_text(encoding="utf-8")
        check.warnings += [
            f"warning: CHATDOCK_POLICY {settings.policy}: {w}" for w in policy_warnings(text, check.policy)
        ]


def engine_problems(settings: Settings) -> tuple[list[str], list[str]]:
    """(errors, warnings) about the Docker engine: a ``DOCKER_HOST`` docker-py cannot use is an error; an engine
    that does not answer is a warning."""
    where = settings.docker_host or "the local socket (DOCKER_HOST is not set)"
    engine = Engine(base_url=settings.docker_host, timeout=min(settings.docker_timeout, ENGINE_CHECK_TIMEOUT))
    try:
        engine.read(lambda: engine.api.ping())  # noqa: PLW0108 (reaching .api may itself fail: inside read)
    except EngineUnavailable as exc:
        return [], [
            f"warning: the Docker engine at {where} does not answer ({exc.message}); commands fail until it does"
        ]
    except ChatdockError as exc:
        return [f"bad setting DOCKER_HOST: {exc.message}"], []
    finally:
        engine.close()
    return [], []
