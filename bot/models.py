"""Typed values that cross module seams: who asks, what policy said, and what a command produced.

Requests are frozen so policy, audit, dry-run and the handler all read the same object. Results are plain
data that can say in one line what they were: renderers turn them into terminal text or Block Kit, and never
call Docker or Slack.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Actor(Frozen):
    """The person a request comes from, as Slack identifies them (IDs, never display names).

    ``team`` is the workspace the request came through; ``user_team`` the person's own workspace, and
    ``external`` whether that is another organisation than the one chatdock is installed in (a Slack Connect
    channel): the front door decides it, and policy then admits them only where a grant names them or their
    workspace. The local shell's person is never external."""

    user: str
    channel: str = ""
    team: str = ""
    groups: tuple[str, ...] = ()
    name: str = ""
    user_team: str = ""
    external: bool = False


class Decision(Frozen):
    """A policy verdict and the rule that produced it."""

    allowed: bool
    rule: str
    reason: str


class Request(Frozen):
    """Base of every parsed command. ``command`` is the canonical name policy grants refer to."""

    command: ClassVar[str] = ""
    mutating: ClassVar[bool] = False
    # Starts existing containers, which then answer to their names again on their user-defined networks.
    starts_containers: ClassVar[bool] = False
    dry_run: bool = False

    def container_refs(self) -> tuple[str, ...]:
        """Existing containers this request acts on, as the user named them."""
        return ()

    def network_refs(self) -> tuple[str, ...]:
        """Existing networks this request acts on, as the user named them."""
        return ()

    def dns_names(self) -> tuple[str, ...] | None:
        """The names docker's DNS will answer for the container this request puts on ``network_refs()``
        (``run --name/--hostname/--network-alias``, ``network connect --alias``), besides the existing names of
        the containers in ``container_refs()``; ``None`` when the request puts nothing on a network."""
        return None

    def image_refs(self) -> tuple[str, ...]:
        """Existing images this request acts on (``rmi``), as the user named them."""
        return ()

    def plan_reads_engine(self) -> bool:
        """Whether the Engine requests can only be planned after reading the engine (the Slack ack skips them)."""
        return bool(self.container_refs() or self.image_refs())

    def missing_networks_ok(self) -> bool:
        """True when a named network that does not exist is no error (``network rm -f``, as docker 28)."""
        return False


class ContainerFacts(Frozen):
    """What policy needs to know about an existing container to decide whether it is in scope."""

    id: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    image: str = ""
    status: str = ""

    @property
    def short_id(self) -> str:
        return self.id[:12]


class ImageFacts(Frozen):
    """What policy needs to know about an existing image: its ID and names (``repo:tag``)."""

    id: str
    tags: tuple[str, ...] = ()
    size: int = 0

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


class Progress(Frozen):
    """How far a long operation (a pull) has come, for front doors that show it while it runs."""

    action: str
    subject: str
    status: str = ""
    layers_done: int = 0
    layers_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    elapsed: float = 0.0
    done: bool = False
    detail: str = ""  # a rollout's line (tasks running/desired, update state, a task's error); no bytes or layers

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.bytes_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def fraction(self) -> float:
        """How far along, 0..1: half the bytes downloaded, half the layers done (downloaded *and* extracted)."""
        layers = self.layers_done / self.layers_total if self.layers_total else 0.0
        if self.bytes_total:
            return (min(self.bytes_done / self.bytes_total, 1.0) + layers) / 2
        return 1.0 if self.done else layers


class NetworkFacts(Frozen):
    id: str
    name: str
    driver: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


# ---------------------------------------------------------------- results


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


class Result(Frozen):
    """What a command produced. Each kind says in one line what it was (for the audit log and ``history``, never
    the output itself) and which containers and networks it touched; renderers do the rest."""

    kind: ClassVar[str] = "result"

    def log_line(self) -> str:
        return self.kind

    def affected_containers(self) -> tuple[str, ...]:
        return ()

    def affected_networks(self) -> tuple[str, ...]:
        return ()


class ContainerView(Frozen):
    """One container as people want to see it: docker ps's columns plus who started it."""

    id: str
    name: str
    image: str
    command: str = ""
    created: str = ""
    status: str = ""
    state: str = ""
    ports: str = ""
    owner: str = ""
    managed: bool = False
    host: str = ""  # set in a listing across every host (--context '*')


class ContainerList(Result):
    kind: ClassVar[str] = "container_list"
    containers: tuple[ContainerView, ...]
    quiet: bool = False
    all: bool = False
    no_trunc: bool = False  # ps --no-trunc: full IDs (and commands, in the views)
    hidden_out_of_scope: int = 0
    hosts: tuple[str, ...] = ()  # a listing across these hosts: a HOST column
    failed_hosts: tuple[str, ...] = ()  # why a host is missing from it

    def log_line(self) -> str:
        return _plural(len(self.containers), "container")


class ActionItem(Frozen):
    """One target of a multi-target command. ``warning``: nothing was done, yet it is no failure (``rm -f`` of a
    container that does not exist, as docker 28 prints the error and exits 0)."""

    target: str
    ok: bool
    container: ContainerView | None = None
    error: str = ""
    warning: str = ""


class ContainerAction(Result):
    """Outcome of start/stop/restart/rm on one or more containers, one item per target."""

    kind: ClassVar[str] = "container_action"
    action: str
    items: tuple[ActionItem, ...]

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    def log_line(self) -> str:
        parts = [
            (f"{item.target} ({item.warning})" if item.warning else item.target)
            if item.ok
            else f"{item.target} failed: {item.error}"
            for item in self.items
        ]
        return f"{self.action} " + ", ".join(parts)

    def affected_containers(self) -> tuple[str, ...]:
        return tuple(item.container.id for item in self.items if item.container is not None)


class RunOutcome(Result):
    kind: ClassVar[str] = "run"
    container: ContainerView
    detached: bool
    exit_code: int | None = None
    output: str = ""
    output_truncated: bool = False
    still_running: bool = False
    removed: bool = False
    remove_on_exit: bool = False
    waited_seconds: float = 0.0
    pulled: PullOutcome | None = None  # the image was pulled first

    def log_line(self) -> str:
        who = self.container.name or self.container.id[:12]
        if self.detached:
            return f"started {who} ({self.container.id[:12]})"
        if self.still_running:
            return f"{who} still running after {self.waited_seconds:g}s"
        text = f"{who} exited with code {self.exit_code}"
        return text + (", removed" if self.removed else "")

    def affected_containers(self) -> tuple[str, ...]:
        return (self.container.id,)


class ExecOutcome(Result):
    kind: ClassVar[str] = "exec"
    container: str
    command: tuple[str, ...]
    exit_code: int | None
    output: str
    timed_out: bool = False
    note: str = ""

    def log_line(self) -> str:
        return "timed out" if self.timed_out else f"exit code {self.exit_code}"


class TextOutput(Result):
    """Output that is naturally a block of text: top, port, logs, tables."""

    kind: ClassVar[str] = "text"
    title: str
    text: str
    note: str = ""
    monospace: bool = True
    total_lines: int = 0
    shown_lines: int = 0

    def log_line(self) -> str:
        return self.title


class StatsView(Result):
    kind: ClassVar[str] = "stats"
    table: str
    rows: tuple[dict[str, Any], ...] = ()
    errors: tuple[str, ...] = ()

    def log_line(self) -> str:
        return _plural(len(self.rows), "container") + (f", {len(self.errors)} failed" if self.errors else "")


class Inspection(Result):
    kind: ClassVar[str] = "inspection"
    title: str
    summary: tuple[tuple[str, str], ...]
    document: dict[str, Any]
    container: ContainerView | None = None

    def log_line(self) -> str:
        return self.title

    def affected_containers(self) -> tuple[str, ...]:
        return (self.container.id,) if self.container is not None else ()


class NetworkList(Result):
    kind: ClassVar[str] = "network_list"
    networks: tuple[dict[str, str], ...]

    def log_line(self) -> str:
        return _plural(len(self.networks), "network")


class NetworkChange(Result):
    kind: ClassVar[str] = "network_change"
    action: Literal["create", "connect", "disconnect", "rm"]
    network: str
    network_id: str = ""
    container: str = ""
    detail: str = ""
    items: tuple[ActionItem, ...] = ()

    def log_line(self) -> str:
        text = f"{self.action} {self.network}" + (f" {self.container}" if self.container else "")
        failed = [f"{item.target} failed: {item.error}" for item in self.items if not item.ok]
        return text + (f" ({'; '.join(failed)})" if failed else "")

    def affected_networks(self) -> tuple[str, ...]:
        return (self.network_id,) if self.network_id else ()


class HelpText(Result):
    kind: ClassVar[str] = "help"
    title: str
    lines: tuple[str, ...]

    def log_line(self) -> str:
        return self.title


class DryRun(Result):
    """What a mutating command would send to the Engine API, without sending it."""

    kind: ClassVar[str] = "dry_run"
    summary: str
    engine_requests: tuple[dict[str, Any], ...]
    lines: tuple[str, ...] = ()  # what the command would do, in words (``image prune``: what would go)

    def log_line(self) -> str:
        return self.summary


class HistoryView(Result):
    kind: ClassVar[str] = "history"
    entries: tuple[dict[str, Any], ...]

    def log_line(self) -> str:
        return f"{len(self.entries)} {'entry' if len(self.entries) == 1 else 'entries'}"


# ---------------------------------------------------------------- images


class PullOutcome(Result):
    """``docker pull``'s end: the digest, the size and how long it took."""

    kind: ClassVar[str] = "pull"
    image: str
    image_id: str = ""
    digest: str = ""
    size: int = 0
    seconds: float = 0.0
    status: str = ""
    layers: int = 0
    up_to_date: bool = False

    def log_line(self) -> str:
        return f"pulled {self.image} {self.digest}".rstrip() + (" (up to date)" if self.up_to_date else "")


class ImageView(Frozen):
    """One row of ``docker images``, plus the containers that use the image."""

    id: str
    repository: str
    tag: str
    created: str = ""
    size: int = 0
    containers: tuple[str, ...] = ()
    hidden_containers: int = 0
    image_id: str = ""  # the full ID, for the Remove button


class ImageList(Result):
    kind: ClassVar[str] = "image_list"
    images: tuple[ImageView, ...]
    quiet: bool = False

    def log_line(self) -> str:
        return _plural(len(self.images), "image")


class ImageRemoval(Result):
    """``rmi`` and ``image prune``: what was untagged and deleted per target, and the space freed."""

    kind: ClassVar[str] = "image_removal"
    action: Literal["rmi", "prune"]
    items: tuple[ActionItem, ...] = ()
    untagged: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    space: int = 0

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    def log_line(self) -> str:
        failed = [f"{item.target} failed: {item.error}" for item in self.items if not item.ok]
        text = f"{self.action}: {len(self.deleted)} deleted, {len(self.untagged)} untagged, {self.space} bytes freed"
        return text + (f" ({'; '.join(failed)})" if failed else "")


RunOutcome.model_rebuild()
