"""Swarm services, as ``/docker service SUB`` on a swarm manager host: ``ls``, ``ps``, ``inspect``, ``logs``, ``scale``,
``update``, ``rollback``, and ``node ls``.

Services are in scope as containers are (policy ``services``: chatdock's own, by labels, by name; never a protected
one); a service out of scope is missing from ``service ls`` and refused by every other command. A change is sent as
``docker service update`` sends it: the whole spec, at the version read, to ``POST /services/{id}/update`` (a
rollback adds ``rollback=previous``; its plan carries the previous spec, which is what the engine applies), so the
policy reads the spec that will run: the hard refusals (host mounts, the Docker socket, host networking, added
capabilities, unconfined security) wherever they stand in the task template, the most replicas
(``limits.replicas``), and ``images`` for a new image. A service whose spec holds a bind mount made outside chatdock
is therefore refused by every change, ``scale`` included: chatdock would send that mount back to the engine.
Differences from docker's CLI: the image is not pinned to a registry digest (``--no-resolve-image``), and one
request watches its rollout to the end (as ``docker service update`` without ``--detach``), up to
:data:`WATCH_TIMEOUT` seconds, showing it in one message edited in place.
"""

from __future__ import annotations

import copy
import datetime
import logging
import re
import time
from typing import Any

from bot import humanize
from bot.commands import Command, Context, EngineCall
from bot.engine import check_ref
from bot.errors import ChatdockError, Conflict, Denied, NotFound, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed
from bot.models import Progress, Request, TextOutput
from bot.policy import OWNER_LABEL, check_service_spec, image_allowed, parse_image, service_in_scope
from bot.redact import redact_document, redact_env
from bot.services import ServiceChange, ServiceInspection, ServiceState, assess, desired_replicas, short_image
from handlers.common import env_assignments, logs_output, one_target, split_targets

log = logging.getLogger(__name__)
WATCH_TIMEOUT = 180.0  # the longest one request follows a rollout before it reports where it stands
POLL = 1.0
LOG_LINES_DEFAULT = 1000
DRY_RUN = Flag(("--dry-run",), "dry_run", help="show the decision and the Engine requests; do nothing")


# --------------------------------------------------------------------------------------------- shared


def _inspect(ctx: Context, ref: str) -> dict[str, Any]:
    check_ref(ref, "service")
    try:
        data: dict[str, Any] = ctx.engine.read(ctx.engine.api.inspect_service, ref)
    except NotFound:
        raise NotFound(f"No such service: {ref}") from None
    ctx.secrets.add_env(_container_spec(data).get("Env"))
    return data


def _container_spec(data: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = ((data.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
    return spec


def _name(data: dict[str, Any]) -> str:
    return str((data.get("Spec") or {}).get("Name", ""))


def _in_scope(ctx: Context, data: dict[str, Any], command: str) -> dict[str, Any]:
    spec = data.get("Spec") or {}
    scope = service_in_scope(ctx.policy, _name(data), spec.get("Labels") or {})
    if not scope.allowed:
        raise Denied(f"{scope.reason}: `{command}` may not touch it", rule=scope.rule)
    return data


def _service(ctx: Context, ref: str, command: str) -> dict[str, Any]:
    """The service ``ref`` names (ID, name or unique ID prefix, as the engine resolves them), if in scope."""
    return _in_scope(ctx, _inspect(ctx, ref), command)


def _host_networks(ctx: Context) -> tuple[str, ...]:
    """The host network's name and ID: a spec read back from the engine names its networks by ID."""
    try:
        found = ctx.engine.read(ctx.engine.api.networks, names=["host"])
    except ChatdockError:
        return ("host",)
    return ("host", *(str(n.get("Id", "")) for n in found if n.get("Name") == "host"))


def _checked(ctx: Context, spec: dict[str, Any]) -> dict[str, Any]:
    refused = check_service_spec(ctx.policy, spec, host_networks=_host_networks(ctx))
    if refused is not None:
        raise Denied(refused.reason, rule=refused.rule)
    return spec


def _update_call(data: dict[str, Any], spec: dict[str, Any], *, rollback: bool = False) -> EngineCall:
    params: dict[str, Any] = {"version": int((data.get("Version") or {}).get("Index", 0))}
    if rollback:
        params["rollback"] = "previous"
    return EngineCall("POST", f"/services/{data['ID']}/update", params=params, body=spec)


def _send(ctx: Context, call: EngineCall) -> None:
    service_id = call.path.split("/")[2]
    ctx.engine.update_service(
        service_id,
        version=int(call.params["version"]),
        spec=dict(call.body or {}),
        rollback=call.params.get("rollback") == "previous",
    )


def _engine_now(ctx: Context) -> str:
    """Now on the engine's clock (``GET /info``'s SystemTime, to the second), as the engine writes times: whatever
    it stamps after the change sorts after it, however far the host's clock is from chatdock's."""
    try:
        stamp = str(ctx.engine.read(ctx.engine.api.info).get("SystemTime", ""))
    except ChatdockError:
        stamp = ""
    if re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", stamp):
        return stamp[:19]
    then = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    return then.strftime("%Y-%m-%dT%H:%M:%S")


def _tasks(ctx: Context, service_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ctx.engine.read(ctx.engine.api.tasks, filters={"service": service_id})
    return found


def _watch(ctx: Context, action: str, calls: list[tuple[str, EngineCall]]) -> ServiceChange:
    """Send the changes, then follow each service until it converges, pauses, or :data:`WATCH_TIMEOUT` passes,
    reporting where they stand (``Context.progress``) as they go."""
    since = _engine_now(ctx)
    started = time.monotonic()
    states: dict[str, ServiceState] = {}
    sent: list[tuple[str, str]] = []
    for target, call in calls:
        try:
            _send(ctx, call)
            sent.append((target, call.path.split("/")[2]))
        except ChatdockError as exc:
            states[target] = ServiceState(target=target, ok=False, error=exc.message)
    while sent:
        elapsed = time.monotonic() - started
        for target, service_id in sent:
            try:
                data = ctx.engine.read(ctx.engine.api.inspect_service, service_id)
                states[target] = assess(target, data, _tasks(ctx, service_id), since=since, waited=elapsed)
            except ChatdockError as exc:
                states[target] = ServiceState(target=target, ok=False, error=exc.message, waited=elapsed)
        watching = [s for s in (states[t] for t, _ in sent) if s.ok and not s.converged and not s.paused]
        if not watching or elapsed >= WATCH_TIMEOUT:
            break
        _report(ctx, _progress(action, [states[t] for t, _ in sent], elapsed))
        time.sleep(POLL)
    items = tuple(_final(states[target]) for target, _ in calls)
    if sent:
        _report(ctx, _progress(action, [states[t] for t, _ in sent], time.monotonic() - started, done=True))
    return ServiceChange(action=action, items=items, host=ctx.host if ctx.hosts and ctx.hosts.configured else "")


def _report(ctx: Context, step: Progress) -> None:
    """A front door's trouble showing progress never stops following the rollout."""
    try:
        ctx.progress(step)
    except Exception:
        log.exception("progress report failed")


def _final(state: ServiceState) -> ServiceState:
    """Converged is ok; paused, or still converging when chatdock stopped watching, is not."""
    if not state.ok:
        return state
    return state.model_copy(update={"ok": state.converged})


def _progress(action: str, states: list[ServiceState], elapsed: float, *, done: bool = False) -> Progress:
    running = sum(s.running for s in states)
    desired = sum(s.desired if s.desired is not None else s.running for s in states)
    detail = "; ".join(f"{s.name or s.target}: {s.error or s.line()}" for s in states)
    return Progress(
        action=f"service {action}",
        subject=", ".join(s.name or s.target for s in states),
        status=", ".join(s.update_state for s in states if s.update_state),
        layers_done=running,
        layers_total=desired,
        elapsed=elapsed,
        done=done,
        detail=detail,
    )


def _int(value: str, what: str, usage: str) -> int:
    if not re.fullmatch(r"[0-9]+", value, re.ASCII):
        raise UsageError(f"invalid {what} {value!r}: expected a number >= 0", usage=usage)
    return int(value)


def _set_replicas(data: dict[str, Any], spec: dict[str, Any], replicas: int, usage: str) -> None:
    replicated = (spec.get("Mode") or {}).get("Replicated")
    if replicated is None:
        raise UsageError(f"{_name(data)}: scale can only be used with replicated mode", usage=usage)
    replicated["Replicas"] = replicas


def _preview(ctx: Context, request: Any) -> tuple[str, ...]:
    return (f"then follow the rollout until it converges or pauses (at most {WATCH_TIMEOUT:g} s)",)


# --------------------------------------------------------------------------------------------- ls / ps / node ls

LS_USAGE = "service ls [-q]"
PS_USAGE = "service ps SERVICE"
NODE_LS_USAGE = "node ls [-q]"


class ServiceLsRequest(Request):
    command = "service ls"
    quiet: bool = False


class ServicePsRequest(Request):
    command = "service ps"
    service: str


class NodeLsRequest(Request):
    command = "node ls"
    quiet: bool = False


def build_ls(parsed: Parsed) -> ServiceLsRequest:
    if parsed.positionals:
        raise UsageError('"service ls" accepts no arguments', usage=LS_USAGE)
    return ServiceLsRequest(quiet=parsed.flag("quiet"))


def build_ps(parsed: Parsed) -> ServicePsRequest:
    return ServicePsRequest(service=one_target(parsed.positionals, usage=PS_USAGE, what="service"))


def build_node_ls(parsed: Parsed) -> NodeLsRequest:
    if parsed.positionals:
        raise UsageError('"node ls" accepts no arguments', usage=NODE_LS_USAGE)
    return NodeLsRequest(quiet=parsed.flag("quiet"))


def _ports(data: dict[str, Any]) -> str:
    ports = ((data.get("Endpoint") or {}).get("Ports")) or []
    return ", ".join(
        f"*:{p.get('PublishedPort')}->{p.get('TargetPort')}/{p.get('Protocol', 'tcp')}"
        for p in ports
        if p.get("PublishedPort")
    )


def _replicas_column(data: dict[str, Any]) -> str:
    status = data.get("ServiceStatus") or {}
    desired = desired_replicas(data)
    running = status.get("RunningTasks", 0)
    return f"{running}/{desired if desired is not None else status.get('DesiredTasks', '?')}"


def run_ls(ctx: Context, request: ServiceLsRequest) -> TextOutput:
    """Similar to ``docker service ls``: the services in scope, with tasks running / desired."""
    services = ctx.engine.read(ctx.engine.api.services, status=True)
    shown = [
        s
        for s in sorted(services, key=_name)
        if service_in_scope(ctx.policy, _name(s), (s.get("Spec") or {}).get("Labels") or {}).allowed
    ]
    hidden = len(services) - len(shown)
    note = f"{hidden} service{'s' if hidden != 1 else ''} out of your scope not shown" if hidden else ""
    if request.quiet:
        return TextOutput(title="service ls", text="\n".join(str(s["ID"])[:12] for s in shown), note=note)
    rows = [
        [
            str(s["ID"])[:12],
            _name(s),
            "global" if desired_replicas(s) is None else "replicated",
            _replicas_column(s),
            short_image(str(_container_spec(s).get("Image", ""))),
            _ports(s),
        ]
        for s in shown
    ]
    headers = ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    return TextOutput(title="service ls", text=humanize.table(headers, rows), note=note)


def _node_names(ctx: Context) -> dict[str, str]:
    try:
        nodes = ctx.engine.read(ctx.engine.api.nodes)
    except ChatdockError:
        return {}
    return {str(n["ID"]): str((n.get("Description") or {}).get("Hostname", "")) for n in nodes}


def run_ps(ctx: Context, request: ServicePsRequest) -> TextOutput:
    """Similar to ``docker service ps``: every task (the current ones first in each slot), its node, desired and
    current state, and its error."""
    data = _service(ctx, request.service, request.command)
    tasks = _tasks(ctx, str(data["ID"]))
    nodes = _node_names(ctx)
    now = time.time()
    name = _name(data)
    tasks.sort(
        key=lambda t: (
            int(t.get("Slot") or 0),
            str(t.get("NodeID")),
            str((t.get("Status") or {}).get("Timestamp", "")),
        ),
        reverse=False,
    )
    ordered: list[dict[str, Any]] = []
    for slot_key in dict.fromkeys((int(t.get("Slot") or 0), str(t.get("NodeID", ""))) for t in tasks):
        in_slot = [t for t in tasks if (int(t.get("Slot") or 0), str(t.get("NodeID", ""))) == slot_key]
        ordered += sorted(in_slot, key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")), reverse=True)
    rows = []
    previous_slot: tuple[int, str] | None = None
    for task in ordered:
        status = task.get("Status") or {}
        slot = int(task.get("Slot") or 0)
        key = (slot, str(task.get("NodeID", "")))
        shown_name = f"{name}.{slot}" if slot else f"{name}.{str(task.get('NodeID', ''))[:12]}"
        if key == previous_slot:
            shown_name = r" \_ " + shown_name
        previous_slot = key
        stamp = humanize.parse_docker_time(str(status.get("Timestamp", "")))
        ago = humanize.created_ago(stamp, now) if stamp else ""
        rows.append(
            [
                str(task.get("ID", ""))[:12],
                shown_name,
                short_image(str(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image", ""))),
                nodes.get(str(task.get("NodeID", "")), str(task.get("NodeID", ""))[:12]),
                str(task.get("DesiredState", "")).capitalize(),
                f"{str(status.get('State', '')).capitalize()} {ago}".strip(),
                str(status.get("Err", "")),
            ]
        )
    headers = ["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"]
    return TextOutput(title=f"service ps {name}", text=humanize.table(headers, rows))


def run_node_ls(ctx: Context, request: NodeLsRequest) -> TextOutput:
    """Similar to ``docker node ls``."""
    nodes = ctx.engine.read(ctx.engine.api.nodes)
    if request.quiet:
        return TextOutput(title="node ls", text="\n".join(str(n["ID"]) for n in nodes))
    rows = []
    for node in sorted(nodes, key=lambda n: str((n.get("Description") or {}).get("Hostname", ""))):
        manager = node.get("ManagerStatus") or {}
        leader = "Leader" if manager.get("Leader") else str(manager.get("Reachability", "")).capitalize()
        rows.append(
            [
                str(node["ID"]),
                str((node.get("Description") or {}).get("Hostname", "")),
                str((node.get("Status") or {}).get("State", "")).capitalize(),
                str((node.get("Spec") or {}).get("Availability", "")).capitalize(),
                leader,
                str(((node.get("Description") or {}).get("Engine") or {}).get("EngineVersion", "")),
            ]
        )
    headers = ["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"]
    return TextOutput(title="node ls", text=humanize.table(headers, rows))


# --------------------------------------------------------------------------------------------- inspect / logs

INSPECT_USAGE = "service inspect SERVICE"
LOGS_USAGE = "service logs [--tail N] [--since TIME] [-t] SERVICE"


class ServiceInspectRequest(Request):
    command = "service inspect"
    service: str


class ServiceLogsRequest(Request):
    command = "service logs"
    service: str
    tail: int = LOG_LINES_DEFAULT
    since: int | None = None
    since_note: str = ""
    timestamps: bool = False


def build_inspect(parsed: Parsed) -> ServiceInspectRequest:
    return ServiceInspectRequest(service=one_target(parsed.positionals, usage=INSPECT_USAGE, what="service"))


def build_logs(parsed: Parsed) -> ServiceLogsRequest:
    service = one_target(parsed.positionals, usage=LOGS_USAGE, what="service")
    tail_text = parsed.value("tail")
    tail = LOG_LINES_DEFAULT
    if tail_text is not None and tail_text != "all":
        tail = _int(tail_text, "--tail", LOGS_USAGE)
    since_text = parsed.value("since")
    since: int | None = None
    note = ""
    if since_text is not None:
        since = humanize.parse_since(since_text, time.time())
        since = since if since > 0 else None
        note = humanize.since_zone_note(since_text)
    return ServiceLogsRequest(
        service=service, tail=tail, since=since, since_note=note, timestamps=parsed.flag("timestamps")
    )


def run_inspect(ctx: Context, request: ServiceInspectRequest) -> ServiceInspection:
    """Similar to ``docker service inspect``: a summary people read and the whole document, secrets masked."""
    data = _service(ctx, request.service, request.command)
    spec = data.get("Spec") or {}
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    state = assess(request.service, data, _tasks(ctx, str(data["ID"])))
    update = data.get("UpdateStatus") or {}
    mounts = [f"{m.get('Type', '')} {m.get('Source', '')}:{m.get('Target', '')}" for m in container.get("Mounts") or []]
    labels = spec.get("Labels") or {}
    summary = (
        ("Name", _name(data)),
        ("ID", str(data["ID"])[:12]),
        ("Image", short_image(str(container.get("Image", "")))),
        ("Mode", "global" if state.desired is None else f"replicated, {state.desired} replicas"),
        ("Tasks", f"{state.running} running"),
        ("Update", f"{update.get('State', '')}: {update.get('Message', '')}".strip(": ") or "none"),
        ("Rollback", "possible (a previous spec is kept)" if state.can_roll_back else "no previous spec"),
        ("Ports", _ports(data) or "none"),
        ("Env", ", ".join(redact_env(container.get("Env") or [], ctx.policy.redact)) or "none"),
        ("Mounts", "\n".join(mounts) or "none"),
        ("Created by", labels.get(OWNER_LABEL, "") or "not chatdock"),
    )
    return ServiceInspection(
        title=f"service inspect {_name(data)}",
        summary=summary,
        document=redact_document(data, ctx.policy.redact),
        service=state,
        host=ctx.host if ctx.hosts and ctx.hosts.configured else "",
    )


def run_logs(ctx: Context, request: ServiceLogsRequest) -> TextOutput:
    """Similar to ``docker service logs``: every task's output, capped at the last lines."""
    data = _service(ctx, request.service, request.command)
    raw = ctx.engine.read(
        ctx.engine.api.service_logs,
        str(data["ID"]),
        stdout=True,
        stderr=True,
        tail=request.tail,
        since=request.since or 0,
        timestamps=request.timestamps,
        is_tty=bool(_container_spec(data).get("TTY")),
    )
    return logs_output(_name(data), raw, request.since_note)


# --------------------------------------------------------------------------------------------- scale

SCALE_USAGE = "service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]"


class ServiceScaleRequest(Request):
    command = "service scale"
    mutating = True
    targets: tuple[tuple[str, int], ...]

    def plan_reads_engine(self) -> bool:
        return True


def build_scale(parsed: Parsed) -> ServiceScaleRequest:
    if not parsed.positionals:
        raise UsageError('"service scale" requires at least 1 argument: SERVICE=REPLICAS', usage=SCALE_USAGE)
    targets: dict[str, int] = {}
    for word in split_targets(parsed.positionals, usage=SCALE_USAGE):
        service, has_value, value = word.partition("=")
        if not has_value or not service:
            raise UsageError(f"invalid scale specifier {word!r}: write SERVICE=REPLICAS", usage=SCALE_USAGE)
        targets[service] = _int(value, f"replicas value for {service}", SCALE_USAGE)
    return ServiceScaleRequest(targets=tuple(targets.items()), dry_run=parsed.flag("dry_run"))


def _scale_calls(ctx: Context, request: ServiceScaleRequest) -> list[tuple[str, EngineCall]]:
    calls = []
    for ref, replicas in request.targets:
        data = _service(ctx, ref, request.command)
        spec = copy.deepcopy(data.get("Spec") or {})
        _set_replicas(data, spec, replicas, SCALE_USAGE)
        calls.append((ref, _update_call(data, _checked(ctx, spec))))
    return calls


def plan_scale(ctx: Context, request: ServiceScaleRequest) -> list[EngineCall]:
    return [call for _, call in _scale_calls(ctx, request)]


def run_scale(ctx: Context, request: ServiceScaleRequest) -> ServiceChange:
    """Similar to ``docker service scale``: each service to its replicas, followed until it converges."""
    return _watch(ctx, "scale", _scale_calls(ctx, request))


# --------------------------------------------------------------------------------------------- update / rollback

UPDATE_USAGE = "service update [--image IMAGE] [--force] [--replicas N] [--env-add KEY=VALUE] [--env-rm KEY] SERVICE"
ROLLBACK_USAGE = "service rollback SERVICE"


class ServiceUpdateRequest(Request):
    command = "service update"
    mutating = True
    service: str
    image: str | None = None
    force: bool = False
    replicas: int | None = None
    env_add: tuple[str, ...] = ()
    env_rm: tuple[str, ...] = ()

    @property
    def env(self) -> tuple[str, ...]:
        """The values set here are masked in the reply, as ``run -e``'s (the pipeline reads ``env``)."""
        return self.env_add

    def plan_reads_engine(self) -> bool:
        return True


class ServiceRollbackRequest(Request):
    command = "service rollback"
    mutating = True
    service: str

    def plan_reads_engine(self) -> bool:
        return True


def build_update(parsed: Parsed) -> ServiceUpdateRequest:
    service = one_target(parsed.positionals, usage=UPDATE_USAGE, what="service")
    image = parsed.value("image")
    if image is not None:
        parse_image(image)
    replicas_text = parsed.value("replicas")
    replicas = _int(replicas_text, "--replicas", UPDATE_USAGE) if replicas_text is not None else None
    env_rm = tuple(parsed.many("env_rm"))
    for key in env_rm:
        if not key or "=" in key or any(c.isspace() for c in key):
            raise UsageError(f"invalid --env-rm {key!r}: name one variable, without a value", usage=UPDATE_USAGE)
    return ServiceUpdateRequest(
        service=service,
        image=image,
        force=parsed.flag("force"),
        replicas=replicas,
        env_add=env_assignments(parsed.many("env_add")),
        env_rm=env_rm,
        dry_run=parsed.flag("dry_run"),
    )


def build_rollback(parsed: Parsed) -> ServiceRollbackRequest:
    service = one_target(parsed.positionals, usage=ROLLBACK_USAGE, what="service")
    return ServiceRollbackRequest(service=service, dry_run=parsed.flag("dry_run"))


def _check_image(ctx: Context, image: str) -> None:
    """``images`` rules for a new image, before anything changes. ``@local`` allows only an image this host has:
    the swarm would pull anything else."""
    decision = image_allowed(ctx.policy, parse_image(image))
    if not decision.allowed:
        raise Denied(decision.reason, rule=decision.rule)
    if decision.rule == "images[@local]":
        try:
            ctx.engine.inspect_image(image)
        except NotFound:
            raise Denied(
                f"Image {image} may not be pulled: the policy allows only images already on this host",
                rule="images[@local]",
            ) from None


def _update_spec(ctx: Context, request: ServiceUpdateRequest, data: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(data.get("Spec") or {})
    template = spec.setdefault("TaskTemplate", {})
    container = template.setdefault("ContainerSpec", {})
    if request.image is not None and request.image != short_image(str(container.get("Image", ""))):
        _check_image(ctx, request.image)
        container["Image"] = request.image
    if request.force:
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
    if request.replicas is not None:
        _set_replicas(data, spec, request.replicas, UPDATE_USAGE)
    if request.env_add or request.env_rm:
        added = {item.partition("=")[0] for item in request.env_add}
        dropped = set(request.env_rm) | added
        kept = [item for item in container.get("Env") or [] if item.partition("=")[0] not in dropped]
        container["Env"] = kept + list(request.env_add)
    return spec


def _update_calls(ctx: Context, request: ServiceUpdateRequest) -> list[tuple[str, EngineCall]]:
    data = _service(ctx, request.service, request.command)
    return [(request.service, _update_call(data, _checked(ctx, _update_spec(ctx, request, data))))]


def plan_update(ctx: Context, request: ServiceUpdateRequest) -> list[EngineCall]:
    return [call for _, call in _update_calls(ctx, request)]


def run_update(ctx: Context, request: ServiceUpdateRequest) -> ServiceChange:
    """Similar to ``docker service update``: the new spec, then the rollout followed until it converges or the
    engine pauses it (a task that fails under ``--update-failure-action pause``)."""
    return _watch(ctx, "update", _update_calls(ctx, request))


def _rollback_calls(ctx: Context, request: ServiceRollbackRequest) -> list[tuple[str, EngineCall]]:
    data = _service(ctx, request.service, request.command)
    previous = data.get("PreviousSpec")
    if not previous:
        raise Conflict(f"service {_name(data)} has no previous spec to roll back to")
    previous = copy.deepcopy(previous)
    image = str(((previous.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Image", ""))
    current = str(_container_spec(data).get("Image", ""))
    if image and short_image(image) != short_image(current):
        _check_image(ctx, short_image(image))
    return [(request.service, _update_call(data, _checked(ctx, previous), rollback=True))]


def plan_rollback(ctx: Context, request: ServiceRollbackRequest) -> list[EngineCall]:
    return [call for _, call in _rollback_calls(ctx, request)]


def run_rollback(ctx: Context, request: ServiceRollbackRequest) -> ServiceChange:
    """Similar to ``docker service rollback``: back to the previous spec (the engine keeps it), followed until
    it converges."""
    return _watch(ctx, "rollback", _rollback_calls(ctx, request))


# --------------------------------------------------------------------------------------------- rm

RM_USAGE = "service rm SERVICE [SERVICE...]"


class ServiceRmRequest(Request):
    command = "service rm"
    mutating = True
    services: tuple[str, ...]

    def plan_reads_engine(self) -> bool:
        return True


def build_rm(parsed: Parsed) -> ServiceRmRequest:
    return ServiceRmRequest(services=split_targets(parsed.positionals, usage=RM_USAGE), dry_run=parsed.flag("dry_run"))


def plan_rm(ctx: Context, request: ServiceRmRequest) -> list[EngineCall]:
    """Every service is resolved and scope-checked first: one out of scope refuses the whole request."""
    return [EngineCall("DELETE", f"/services/{_service(ctx, ref, request.command)['ID']}") for ref in request.services]


def run_rm(ctx: Context, request: ServiceRmRequest) -> ServiceChange:
    """Similar to ``docker service rm``: each service and its tasks go; one that fails is reported."""
    items = []
    for ref in request.services:
        try:
            data = _service(ctx, ref, request.command)
            ctx.engine.write(ctx.engine.api.remove_service, str(data["ID"]))
            items.append(ServiceState(target=ref, name=_name(data), converged=True))
        except ChatdockError as exc:
            items.append(ServiceState(target=ref, ok=False, error=exc.message))
    return ServiceChange(action="rm", items=tuple(items))


# --------------------------------------------------------------------------------------------- commands


def _grammar(usage: str, *flags: Flag) -> Grammar:
    return Grammar(usage=usage, flags=flags)


QUIET = Flag(("-q", "--quiet"), "quiet", help="only display IDs")
COMMANDS = (
    Command(
        "service ls",
        _grammar(LS_USAGE, QUIET),
        "list swarm services (tasks running / desired)",
        build_ls,
        run_ls,
        aliases=("service list",),
        examples=("service ls",),
    ),
    Command(
        "service ps",
        _grammar(PS_USAGE),
        "list a service's tasks: node, desired and current state, error",
        build_ps,
        run_ps,
        examples=("service ps web",),
    ),
    Command(
        "service inspect",
        _grammar(INSPECT_USAGE),
        "show a service (summary and full document, secrets masked)",
        build_inspect,
        run_inspect,
        examples=("service inspect web",),
    ),
    Command(
        "service logs",
        _grammar(
            LOGS_USAGE,
            Flag(("-n", "--tail"), "tail", Kind.VALUE, "N", f"lines from the end (default {LOG_LINES_DEFAULT})"),
            Flag(("--since",), "since", Kind.VALUE, "TIME", "since a time (2024-01-02T15:04:05Z) or a duration (10m)"),
            Flag(("-t", "--timestamps"), "timestamps", help="show timestamps"),
        ),
        "show the output of a service's tasks",
        build_logs,
        run_logs,
        examples=("service logs --tail 50 web",),
    ),
    Command(
        "service scale",
        _grammar(SCALE_USAGE, DRY_RUN),
        "scale services, and follow them until they converge",
        build_scale,
        run_scale,
        plan=plan_scale,
        preview=_preview,
        slow=True,
        examples=("service scale web=3", "service scale web=3 api=2"),
    ),
    Command(
        "service update",
        _grammar(
            UPDATE_USAGE,
            Flag(("--image",), "image", Kind.VALUE, "IMAGE", "service image tag"),
            Flag(("--force",), "force", help="update even if no changes require it"),
            Flag(("--replicas",), "replicas", Kind.VALUE, "N", "number of tasks"),
            Flag(("--env-add",), "env_add", Kind.LIST, "KEY=VALUE", "add or update an environment variable"),
            Flag(("--env-rm",), "env_rm", Kind.LIST, "KEY", "remove an environment variable"),
            DRY_RUN,
        ),
        "update a service (a new image, a forced restart, replicas, env), following the rollout",
        build_update,
        run_update,
        plan=plan_update,
        preview=_preview,
        slow=True,
        examples=("service update --image registry.example.com/web:2.1 web", "service update --force web"),
    ),
    Command(
        "service rollback",
        _grammar(ROLLBACK_USAGE, DRY_RUN),
        "revert a service to its previous spec, following the rollout",
        build_rollback,
        run_rollback,
        plan=plan_rollback,
        preview=_preview,
        slow=True,
        examples=("service rollback web",),
    ),
    Command(
        "service rm",
        _grammar(RM_USAGE, DRY_RUN),
        "remove services (and their tasks)",
        build_rm,
        run_rm,
        plan=plan_rm,
        aliases=("service remove",),
        examples=("service rm web",),
    ),
    Command(
        "node ls",
        _grammar(NODE_LS_USAGE, QUIET),
        "list the swarm's nodes",
        build_node_ls,
        run_node_ls,
        aliases=("node list",),
        examples=("node ls",),
    ),
)
