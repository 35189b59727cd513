"""``docker run``: grammar, request model, the Engine create body, and the handler.

Decisions worth knowing:
- Options stop at the image, as in docker. When the first word after the image is one of run's own options
  (``run nginx -p 9090:80 -d``), docker would hand it to the container as its command; chatdock refuses with the
  corrected order instead of starting something nobody meant.
- ``-it`` without ``-d`` asks for an interactive terminal, which chat cannot give: a usage error that suggests
  ``-dit`` and ``exec``. ``-dit`` is fine (it keeps a shell container alive, as people use it).
- ``--rm`` is the engine's ``AutoRemove``, foreground or not, as docker does it: the engine removes the
  container when it exits, whether chatdock is still running then or not. For a foreground run chatdock
  attaches to the output and registers its wait *before* the start (as the docker CLI does), so neither the
  output nor the exit code can be lost to the removal; a run that outlives the wait is still removed on exit.
- A failed start removes the created container: a failed ``run`` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from typing import Any

from bot.commands import Command, Context, EngineCall
from bot.engine import KILL_WAIT, MAX_STOP_TIMEOUT, REF_PATTERN
from bot.errors import ChatdockError, Denied, EngineError, EngineUnavailable, NotFound, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed, Refused
from bot.models import ContainerView, PullOutcome, Request, RunOutcome
from bot.parse_values import parse_cpus, parse_memory
from bot.policy import (
    MANAGED_LABEL,
    OWNER_LABEL,
    check_labels,
    may_pull,
    parse_image,
)
from bot.ports import PortBinding, parse_publish
from handlers.common import env_assignments, view_from_inspect
from handlers.images import pull_call, pull_image

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # docker's; any length, as bot.engine.REF_PATTERN
RESTART_PATTERN = re.compile(r"^(no|always|unless-stopped|on-failure(?::(\d+))?)$")
MIN_MEMORY = 6 * 1024 * 1024
OUTPUT_LINES = 1000
OUTPUT_BYTES = 256 * 1024

USAGE = "run [OPTIONS] IMAGE [COMMAND] [ARG...]"

_HOST_MOUNT = "host bind mounts and volumes would let a container read or change the host"
REFUSED = (
    Refused(("--privileged",), "never:privileged", "a privileged container is root on the host", takes_value=False),
    Refused(("-v", "--volume"), "never:host-mounts", _HOST_MOUNT),
    Refused(("--mount",), "never:host-mounts", _HOST_MOUNT),
    Refused(("--volumes-from",), "never:volumes-from", "it mounts another container's volumes"),
    Refused(("--device",), "never:devices", "it gives the container a host device"),
    Refused(("--device-cgroup-rule",), "never:devices", "it gives the container host devices"),
    Refused(("--gpus",), "never:devices", "it gives the container host devices"),
    Refused(("--cap-add",), "never:cap-add", "added capabilities weaken the container's confinement"),
    Refused(("--security-opt",), "never:security-opt", "security options can switch off the container's confinement"),
    Refused(("--pid",), "never:host-namespaces", "it shares a process namespace"),
    Refused(("--ipc",), "never:host-namespaces", "it shares an IPC namespace"),
    Refused(("--uts",), "never:host-namespaces", "it shares a UTS namespace"),
    Refused(("--userns",), "never:host-namespaces", "it changes user namespace isolation"),
    Refused(("--cgroupns",), "never:host-namespaces", "it shares a cgroup namespace"),
    Refused(("--sysctl",), "never:host-tuning", "it changes kernel parameters"),
    Refused(("--runtime",), "never:host-tuning", "it changes the container runtime"),
    Refused(("--cgroup-parent",), "never:host-tuning", "it changes the cgroup hierarchy"),
    Refused(("--use-api-socket",), "never:docker-socket", "it hands the Docker socket to the container", False),
    Refused(("--env-file",), "never:env-file", "it reads a file on chatdock's host"),
)

GRAMMAR = Grammar(
    usage=USAGE,
    positionals="stop",
    refused=REFUSED,
    flags=(
        Flag(("-d", "--detach"), "detach", help="run in the background and print the container ID"),
        Flag(("--name",), "name", Kind.VALUE, "NAME", "assign a name to the container"),
        Flag(("--rm",), "rm", help="remove the container when it exits"),
        Flag(("-p", "--publish"), "publish", Kind.LIST, "PORT", "publish a port: [[IP:]HOST:]CONTAINER[/PROTO]"),
        Flag(("-P", "--publish-all"), "publish_all", help="publish every exposed port on a random host port"),
        Flag(("-e", "--env"), "env", Kind.LIST, "KEY=VALUE", "set an environment variable"),
        Flag(("-l", "--label"), "label", Kind.LIST, "KEY=VALUE", "set a label"),
        Flag(("--network", "--net"), "network", Kind.VALUE, "NETWORK", "connect to a network"),
        Flag(("--network-alias", "--net-alias"), "alias", Kind.LIST, "ALIAS", "a DNS name on that network"),
        Flag(("--restart",), "restart", Kind.VALUE, "POLICY", "no | always | unless-stopped | on-failure[:N]"),
        Flag(("--stop-timeout",), "stop_timeout", Kind.VALUE, "SECONDS", "seconds `stop` waits before the kill"),
        Flag(("-m", "--memory"), "memory", Kind.VALUE, "BYTES", "memory limit (e.g. 256m)"),
        Flag(("--cpus",), "cpus", Kind.VALUE, "N", "number of CPUs (e.g. 0.5)"),
        Flag(("-h", "--hostname"), "hostname", Kind.VALUE, "NAME", "container host name"),
        Flag(("-w", "--workdir"), "workdir", Kind.VALUE, "DIR", "working directory inside the container"),
        Flag(("-u", "--user"), "user", Kind.VALUE, "USER", "user[:group] to run as"),
        Flag(("--entrypoint",), "entrypoint", Kind.VALUE, "CMD", "override the image's entrypoint"),
        Flag(("-i", "--interactive"), "interactive", help="keep STDIN open"),
        Flag(("-t", "--tty"), "tty", help="allocate a pseudo-TTY"),
        Flag(("--pull",), "pull", Kind.VALUE, "POLICY", "pull the image first: always | missing | never"),
        Flag(("--dry-run",), "dry_run", help="show the decision and the Engine request; do nothing"),
    ),
)
PULL_POLICIES = ("always", "missing", "never")


class RunRequest(Request):
    command = "run"
    mutating = True
    image: str
    args: tuple[str, ...] = ()
    detach: bool = False
    name: str | None = None
    rm: bool = False
    publish: tuple[PortBinding, ...] = ()
    publish_all: bool = False  # -P: HostConfig.PublishAllPorts; the policy's ports must list "random"
    env: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    network: str | None = None
    aliases: tuple[str, ...] = ()
    restart: str | None = None
    stop_timeout: int | None = None
    memory: int | None = None
    nano_cpus: int | None = None
    hostname: str | None = None
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    interactive: bool = False
    tty: bool = False
    pull: str = "missing"

    def network_refs(self) -> tuple[str, ...]:
        return (self.network,) if self.network and self.network not in ("bridge", "none", "default") else ()

    def dns_names(self) -> tuple[str, ...] | None:
        return tuple(n for n in (self.name, self.hostname, *self.aliases) if n)


def _labels(values: list[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        key, _, val = value.partition("=")
        if not key:
            raise UsageError(f"invalid label: {value!r} (expected KEY=VALUE)", usage=USAGE)
        pairs.append((key, val))
    reserved = check_labels(dict(pairs))
    if reserved is not None:
        raise Denied(reserved.reason, rule=reserved.rule)
    return tuple(pairs)


def _split_options(args: list[str]) -> tuple[list[str], list[str]]:
    """Separate run's own options (with their values) from the rest, to suggest the corrected order."""
    options: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        name = word.split("=", 1)[0] if word.startswith("--") else word[:2]
        flag = GRAMMAR.lookup(name) if word.startswith("-") and word != "-" else None
        if flag is None:
            rest.append(word)
            continue
        options.append(word)
        takes_value = flag.takes_value
        if takes_value and "=" not in word and (word.startswith("--") or len(word) == 2) and index < len(args):
            options.append(args[index])
            index += 1
    return options, rest


def _reject_misplaced_options(image: str, args: list[str], parsed: Parsed) -> None:
    if not args or not args[0].startswith("-") or args[0] == "-":
        return
    name = args[0].split("=", 1)[0]
    if not name.startswith("--") and len(name) > 2:
        name = name[:2]
    if GRAMMAR.lookup(name) is None:
        return
    options, command = _split_options(args)
    before = " ".join(["run", *options, image, *command])
    raise UsageError(
        f"`{args[0]}` comes after the image `{image}`, so docker would pass it to the container as its command "
        f"instead of reading it as an option. Options go before the image: `{before}`",
        usage=USAGE,
    )


def build(parsed: Parsed) -> RunRequest:
    if not parsed.positionals:
        raise UsageError('"run" requires at least 1 argument: the image', usage=USAGE)
    image, *args = parsed.positionals
    parse_image(image)
    _reject_misplaced_options(image, args, parsed)
    detach = parsed.flag("detach")
    interactive, tty = parsed.flag("interactive"), parsed.flag("tty")
    if interactive and tty and not detach:
        raise UsageError(
            "`-it` asks for an interactive terminal, which a chat message cannot give. "
            f"Start it in the background with `run -dit {image}` and then run one command at a time "
            "with `exec NAME COMMAND`.",
            usage=USAGE,
        )
    name = parsed.value("name")
    if name is not None and not NAME_PATTERN.match(name):
        raise UsageError(f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", usage=USAGE)
    network = parsed.value("network")
    if network is not None and (network == "host" or network.startswith("container:")):
        raise Denied(
            f"`--network {network}` is never allowed: it shares the host's or another container's network stack",
            rule="never:network-host",
        )
    aliases = tuple(parsed.many("alias"))
    for alias in aliases:
        if not REF_PATTERN.match(alias):
            raise UsageError(f"invalid alias: {alias!r} (letters, digits, '_', '.', '-')", usage=USAGE)
    if aliases and network in (None, "bridge", "default", "none"):
        raise UsageError(
            "network-scoped aliases are supported only for containers in user-defined networks: add `--network NAME`",
            usage=USAGE,
        )
    restart = parsed.value("restart")
    if restart is not None:
        if not RESTART_PATTERN.match(restart):
            raise UsageError(
                f"invalid restart policy: {restart} (no, always, unless-stopped, on-failure[:N])", usage=USAGE
            )
        if parsed.flag("rm") and restart != "no":
            raise UsageError("conflicting options: cannot specify both --restart and --rm", usage=USAGE)
    stop_text = parsed.value("stop_timeout")
    stop_timeout = None
    if stop_text is not None:
        if not re.fullmatch(r"[0-9]+", stop_text, re.ASCII) or int(stop_text) > MAX_STOP_TIMEOUT:
            raise UsageError(
                f'invalid argument "{stop_text}" for "--stop-timeout" flag: '
                f"expected seconds from 0 to {MAX_STOP_TIMEOUT} (chat does not wait longer)",
                usage=USAGE,
            )
        stop_timeout = int(stop_text)
    memory_text = parsed.value("memory")
    memory = parse_memory(memory_text) if memory_text is not None else None
    if memory is not None and memory < MIN_MEMORY:
        raise UsageError("Minimum memory limit allowed is 6MB", usage=USAGE)
    cpus_text = parsed.value("cpus")
    pull = parsed.value("pull") or "missing"
    if pull not in PULL_POLICIES:
        raise UsageError(f'invalid pull option: "{pull}": must be one of "always", "missing" or "never"', usage=USAGE)
    ports: list[PortBinding] = []
    for spec in parsed.many("publish"):
        ports.extend(parse_publish(spec))
    return RunRequest(
        image=image,
        args=tuple(args),
        detach=detach,
        name=name,
        rm=parsed.flag("rm"),
        publish=tuple(ports),
        publish_all=parsed.flag("publish_all"),
        env=env_assignments(parsed.many("env")),
        labels=_labels(parsed.many("label")),
        network=network,
        aliases=aliases,
        restart=restart,
        stop_timeout=stop_timeout,
        memory=memory,
        nano_cpus=parse_cpus(cpus_text) if cpus_text is not None else None,
        hostname=parsed.value("hostname"),
        workdir=parsed.value("workdir"),
        user=parsed.value("user"),
        entrypoint=parsed.value("entrypoint"),
        interactive=interactive,
        tty=tty,
        pull=pull,
        dry_run=parsed.flag("dry_run"),
    )


def create_body(
    request: RunRequest, *, owner: str, memory_default: int | None, cpus_default: int | None
) -> dict[str, Any]:
    """The exact ``POST /containers/create`` body, with Engine field names."""
    labels = dict(request.labels)
    labels[MANAGED_LABEL] = "true"
    labels[OWNER_LABEL] = owner
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in request.publish:
        exposed[port.key] = {}
        bindings.setdefault(port.key, []).append({"HostIp": port.host_ip, "HostPort": port.host_port})
    host: dict[str, Any] = {
        "PortBindings": bindings,
        "AutoRemove": request.rm,
        "NetworkMode": request.network or "default",
    }
    if request.publish_all:
        host["PublishAllPorts"] = True  # the image's EXPOSE ports and -p's, each on a port the engine picks
    if request.restart:
        policy_name, _, count = request.restart.partition(":")
        host["RestartPolicy"] = {"Name": policy_name, "MaximumRetryCount": int(count or 0)}
    memory = request.memory if request.memory is not None else memory_default
    if memory:
        host["Memory"] = memory
    cpus = request.nano_cpus if request.nano_cpus is not None else cpus_default
    if cpus:
        host["NanoCpus"] = cpus
    body: dict[str, Any] = {
        "Image": request.image,
        "Cmd": list(request.args) or None,
        "Env": list(request.env),
        "Labels": labels,
        "ExposedPorts": exposed,
        "Tty": request.tty,
        "OpenStdin": request.interactive,
        "StdinOnce": False,
        "AttachStdin": False,
        "AttachStdout": not request.detach,
        "AttachStderr": not request.detach,
        "HostConfig": host,
    }
    for key, value in (
        ("Hostname", request.hostname),
        ("WorkingDir", request.workdir),
        ("User", request.user),
    ):
        if value is not None:
            body[key] = value
    if request.stop_timeout is not None:
        body["StopTimeout"] = request.stop_timeout
    if request.entrypoint is not None:
        body["Entrypoint"] = [request.entrypoint] if request.entrypoint else [""]
    if request.network and request.network not in ("default",):
        body["NetworkingConfig"] = {"EndpointsConfig": {request.network: {"Aliases": list(request.aliases)}}}
    return body


def plan(ctx: Context, request: RunRequest) -> list[EngineCall]:
    body = create_body(
        request,
        owner=ctx.actor.user,
        memory_default=ctx.policy.limits.memory_bytes,
        cpus_default=ctx.policy.limits.nano_cpus,
    )
    params = {"name": request.name} if request.name else {}
    pull = [pull_call(parse_image(request.image))] if request.pull == "always" else []
    return [
        *pull,
        EngineCall("POST", "/containers/create", params, body),
        EngineCall("POST", "/containers/{id}/start"),
    ]


def _ensure_image(ctx: Context, request: RunRequest) -> PullOutcome | None:
    """``--pull missing`` (docker's default) pulls only an image that is not here, ``always`` every time (the
    policy already allowed that pull in the plan), ``never`` not at all. Progress goes to the front door."""
    ref = parse_image(request.image)
    if request.pull != "always":
        try:
            ctx.secrets.add_inspect(ctx.engine.read(ctx.engine.api.inspect_image, request.image))  # its ENV secrets
            return None
        except NotFound:
            pass
        if request.pull == "never":
            raise NotFound(f"Image {request.image} is not on this host, and `--pull never` was given")
        if not may_pull(ctx.policy, ref):
            raise NotFound(f"Image {request.image} is not on this host, and the policy allows only local images")
    try:
        pulled = pull_image(ctx, ref)
    except (NotFound, EngineError, EngineUnavailable) as exc:
        raise type(exc)(f"Image {request.image} could not be pulled: {exc.message}") from exc
    with contextlib.suppress(ChatdockError):
        ctx.secrets.add_inspect(ctx.engine.read(ctx.engine.api.inspect_image, request.image))
    return pulled


def _remove_quietly(ctx: Context, container_id: str) -> None:
    """Remove a container a failed run created. With ``--rm`` (AutoRemove) the engine removes it itself when
    the start fails, so finding it gone, or its removal already under way, is the goal reached: no warning."""
    try:
        params = {"force": True, "v": False}
        ctx.engine.write(ctx.engine.post_waiting, "/containers/{0}", container_id, params=params, waits=KILL_WAIT)
    except NotFound:
        return
    except ChatdockError as exc:
        if "already in progress" in exc.message:
            return
        log.warning("could not remove container %s: %s", container_id[:12], exc.message)


class _Watch:
    """A foreground run's output and exit, both registered with the engine before the container starts.

    ``POST /containers/{id}/attach`` (stdout, stderr, stream) and ``POST /containers/{id}/wait`` are opened
    first, as the docker CLI opens them: with ``--rm`` the engine removes the container right after the exit,
    so neither ``logs`` nor ``wait`` could be asked afterwards. The wait's condition is ``removed`` with
    ``--rm`` (it answers once the container is gone), else ``next-exit``.
    """

    def __init__(self, ctx: Context, container_id: str, *, rm: bool) -> None:
        api = ctx.engine.api
        self._chunks: list[bytes] = []
        self._size = 0
        self._trimmed = False
        condition = "removed" if rm else "next-exit"

        self._wait = ctx.engine.open_wait(container_id, condition=condition, timeout=ctx.run_timeout)
        try:
            self._output = ctx.engine.write(api.attach, container_id, stdout=True, stderr=True, stream=True, logs=False)
        except ChatdockError:
            self._wait.close()
            raise
        self._reader = threading.Thread(target=self._read, name=f"run-{container_id[:12]}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for chunk in self._output:
                self._chunks.append(chunk)
                self._size += len(chunk)
                while self._size > 2 * OUTPUT_BYTES and len(self._chunks) > 1:
                    self._size -= len(self._chunks.pop(0))
                    self._trimmed = True
        except Exception:  # the stream was closed (gave up waiting) or the engine went away
            log.debug("output stream of a foreground run ended early", exc_info=True)

    def exit_code(self) -> int | None:
        """The exit code, or None when the run outlived the wait (``CHATDOCK_RUN_TIMEOUT``)."""
        return self._wait.exit_code()

    def output(self, *, wait: float) -> tuple[str, bool]:
        """The output so far (the end of it when long), once the stream ended or ``wait`` seconds passed."""
        self._reader.join(wait)
        if self._reader.is_alive():
            self.close()
        text = b"".join(self._chunks).decode("utf-8", "replace")
        lines = text.splitlines()
        truncated = self._trimmed or len(lines) > OUTPUT_LINES or len(text) > OUTPUT_BYTES
        return "\n".join(lines[-OUTPUT_LINES:])[-OUTPUT_BYTES:], truncated

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._wait.close()
        with contextlib.suppress(Exception):
            self._output.close()  # docker-py's CancellableStream: ends the reader


def execute(ctx: Context, request: RunRequest) -> RunOutcome:
    """Similar to the ``docker run`` command."""
    pulled = _ensure_image(ctx, request)
    *_pull, create, _start = plan(ctx, request)
    api = ctx.engine.api
    created = ctx.engine.write(api.create_container_from_config, dict(create.body or {}), request.name)
    container_id = created["Id"]
    watch: _Watch | None = None
    try:
        data = ctx.engine.read(api.inspect_container, container_id)
        ctx.secrets.add_inspect(data)  # its whole environment: the image's ENV and -e values
        view = view_from_inspect(data)
        if not request.detach:
            watch = _Watch(ctx, container_id, rm=request.rm)
        ctx.engine.write(api.start, container_id)
    except ChatdockError as exc:
        if watch is not None:
            watch.close()
        _remove_quietly(ctx, container_id)
        if isinstance(exc, UsageError):  # the engine's 400 for a command it cannot start: not the user's syntax
            raise EngineError(exc.message) from exc
        raise
    if request.detach:
        try:
            data = ctx.engine.read(api.inspect_container, container_id)
        except NotFound:  # --rm -d and it already exited
            return RunOutcome(container=_gone_view(container_id, request), detached=True, removed=True, pulled=pulled)
        ctx.secrets.add_inspect(data)
        return RunOutcome(container=view_from_inspect(data), detached=True, pulled=pulled)
    assert watch is not None
    return _foreground(ctx, request, view, watch).model_copy(update={"pulled": pulled})


def _gone_view(container_id: str, request: RunRequest) -> ContainerView:
    return ContainerView(
        id=container_id,
        name=request.name or container_id[:12],
        image=request.image,
        status="Removed",
        state="removed",
    )


def _foreground(ctx: Context, request: RunRequest, created: ContainerView, watch: _Watch) -> RunOutcome:
    started = time.monotonic()
    exit_code = watch.exit_code()
    waited = time.monotonic() - started
    if exit_code is None and not ctx.engine.ping():
        watch.close()
        raise EngineUnavailable("Docker engine unreachable while waiting for the container")
    output, truncated = watch.output(wait=5.0 if exit_code is not None else 0.0)
    removed = exit_code is not None and request.rm
    if removed:
        view = created.model_copy(update={"status": f"Exited ({exit_code})", "state": "removed"})
    else:
        view = view_from_inspect(ctx.engine.read(ctx.engine.api.inspect_container, created.id))
    return RunOutcome(
        container=view,
        detached=False,
        exit_code=exit_code,
        output=output,
        output_truncated=truncated,
        still_running=exit_code is None,
        removed=removed,
        remove_on_exit=exit_code is None and request.rm,
        waited_seconds=round(waited, 2),
    )


COMMAND = Command(
    name="run",
    aliases=("container run",),
    grammar=GRAMMAR,
    summary="create and start a new container from an image",
    build=build,
    execute=execute,
    plan=plan,
    slow=True,
    examples=(
        "run -d -p 9090:80 --name webhost nginx",
        "run --rm local/busybox:test echo hello",
        "run -d --net app --net-alias search --name es local/busybox:test",
    ),
)
