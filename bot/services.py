"""Swarm services as people follow a rollout: where a service stands (tasks running / desired, the update state,
a failing task's error), read from ``GET /services/{id}`` and ``GET /tasks``, and the result of a scale, update or
rollback. Pure: the handler (handlers/services.py) reads the engine; this module only judges what it read.

A rollout has *converged* when every task the service wants running runs its current spec and as many run as it
wants (``docker service update`` waits for the same), and the update, if any, is ``completed`` or
``rollback_completed``. It has *failed* when the update is ``paused`` or ``rollback_paused`` (the engine's
``--update-failure-action pause``, the default), which is when a Rollback button is offered.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bot.models import Frozen, Inspection, Result

SETTLED = frozenset({"completed", "rollback_completed"})
PAUSED = frozenset({"paused", "rollback_paused"})
FAILED_TASK_STATES = frozenset({"failed", "rejected", "orphaned"})


class ServiceState(Frozen):
    """One service after a change: what the card shows and buttons act on."""

    target: str  # as the user named it
    ok: bool = True
    id: str = ""
    name: str = ""
    image: str = ""
    running: int = 0
    desired: int | None = None  # None: a global service (one task per node)
    update_state: str = ""
    update_message: str = ""
    task_error: str = ""
    converged: bool = False
    paused: bool = False
    can_roll_back: bool = False  # the service has a previous spec
    error: str = ""  # the request failed for this service (nothing, or part, was done)
    waited: float = 0.0

    def line(self) -> str:
        """``2/3 tasks running · update paused: ... · task web.2: ...`` (the live message and the result)."""
        wanted = "?" if self.desired is None else str(self.desired)
        parts = [f"{self.running}/{wanted} tasks running"]
        if self.update_state:
            update = f"update {self.update_state}"
            if self.update_message and self.update_state not in SETTLED:
                update += f": {self.update_message}"
            parts.append(update)
        if self.task_error:
            parts.append(self.task_error)
        return " · ".join(parts)


class ServiceChange(Result):
    """``service scale`` / ``update`` / ``rollback``: each service as it ended (converged, paused, or still
    converging when chatdock stopped watching)."""

    kind: ClassVar[str] = "service_change"
    action: str
    items: tuple[ServiceState, ...]
    host: str = ""

    def log_line(self) -> str:
        if self.action == "rm":
            return "; ".join(f"{item.name or item.target}: {item.error or 'removed'}" for item in self.items)
        return "; ".join(f"{item.name or item.target}: {item.error or _verdict(item)}" for item in self.items)


class ServiceInspection(Inspection):
    """``service inspect``: the summary and document, and the service's card (its buttons) in Slack."""

    service: ServiceState | None = None
    host: str = ""


def _verdict(item: ServiceState) -> str:
    if item.paused:
        return f"update {item.update_state}"
    return ("converged, " if item.converged else "not converged, ") + item.line()


def _image_of(container_spec: dict[str, Any]) -> str:
    return str(container_spec.get("Image", ""))


def short_image(image: str) -> str:
    """``busybox:1@sha256:...`` → ``busybox:1`` (as ``docker service ls`` shows it)."""
    return image.split("@", 1)[0]


def desired_replicas(service: dict[str, Any]) -> int | None:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    replicated = mode.get("Replicated")
    if replicated is None:
        return None
    return int(replicated.get("Replicas") or 0)


def task_error(tasks: list[dict[str, Any]], service: str = "") -> str:
    """The newest failing task's error (``task web.2: starting container failed: ...``), or nothing."""
    failing = [
        t
        for t in tasks
        if (t.get("Status") or {}).get("Err") or (t.get("Status") or {}).get("State") in FAILED_TASK_STATES
    ]
    if not failing:
        return ""
    newest = max(failing, key=lambda t: str((t.get("Status") or {}).get("Timestamp", "")))
    status = newest.get("Status") or {}
    slot = newest.get("Slot")
    where = f"task {service}.{slot}" if slot and service else f"task {str(newest.get('ID', ''))[:12]}"
    message = status.get("Err") or status.get("Message") or status.get("State", "")
    exit_code = ((status.get("ContainerStatus") or {}).get("ExitCode")) or 0
    return f"{where}: {message}" + (f" (exit code {exit_code})" if exit_code and "exit" not in message else "")


def assess(
    target: str, service: dict[str, Any], tasks: list[dict[str, Any]], *, since: str = "", waited: float = 0.0
) -> ServiceState:
    """Where ``service`` stands, from its inspect document and its tasks. ``since``: when chatdock sent the change
    (RFC 3339, as the engine writes times); an UpdateStatus older than that is an earlier rollout's, and says
    nothing about this one."""
    spec = service.get("Spec") or {}
    template = spec.get("TaskTemplate") or {}
    current = template.get("ContainerSpec") or {}
    force = template.get("ForceUpdate", 0)
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    running = [t for t in wanted if (t.get("Status") or {}).get("State") == "running"]
    current_tasks = [
        t
        for t in running
        if ((t.get("Spec") or {}).get("ContainerSpec") or {}) == current
        and (t.get("Spec") or {}).get("ForceUpdate", 0) == force
    ]
    desired = desired_replicas(service)
    update = service.get("UpdateStatus") or {}
    state = str(update.get("State", ""))
    ours = not since or str(update.get("StartedAt", "")) >= since or state not in SETTLED
    if not ours:
        state = ""
    counted = len(current_tasks) == len(wanted) == len(running)
    enough = desired is None or len(running) == desired
    converged = counted and enough and (not state or state in SETTLED)
    recent = [t for t in tasks if not since or str((t.get("Status") or {}).get("Timestamp", "")) >= since]
    return ServiceState(
        target=target,
        id=str(service.get("ID", "")),
        name=str(spec.get("Name", "")),
        image=short_image(_image_of(current)),
        running=len(running),
        desired=desired,
        update_state=state,
        update_message=str(update.get("Message", "")) if ours else "",
        task_error="" if converged else task_error(recent, str(spec.get("Name", ""))),
        converged=converged,
        paused=state in PAUSED,
        can_roll_back=service.get("PreviousSpec") is not None,
        waited=round(waited, 1),
    )
