"""Networks, as ``/net SUB`` and ``/docker network SUB``: ``ls``, ``create``, ``connect``, ``disconnect``,
``inspect``, ``rm``. Containers on one user-defined bridge reach each other by name and alias (Docker's DNS)."""

from __future__ import annotations

from typing import Any

from bot.commands import Command, Context, EngineCall
from bot.engine import REF_PATTERN
from bot.errors import ChatdockError, Denied, NotFound, UsageError
from bot.flags import Flag, Grammar, Kind, Parsed
from bot.models import ActionItem, Inspection, NetworkChange, NetworkFacts, NetworkList, Request
from bot.policy import MANAGED_LABEL, OWNER_LABEL, check_labels
from handlers.common import resolved, split_targets

NAME_PATTERN = REF_PATTERN  # one rule for names, both ways: what is created here can be named later
DRY_RUN = Flag(("--dry-run",), "dry_run", help="show the decision and the Engine requests; do nothing")


def _network(ctx: Context, ref: str) -> NetworkFacts:
    facts = ctx.networks.get(ref)
    if facts is None:
        raise NotFound(f"No such network: {ref}")
    return facts


# --------------------------------------------------------------------------------------------- ls

LS_USAGE = "network ls [-q] [-f KEY=VALUE]"


class NetworkLsRequest(Request):
    command = "network ls"
    quiet: bool = False
    filters: tuple[tuple[str, str], ...] = ()


def build_ls(parsed: Parsed) -> NetworkLsRequest:
    if parsed.positionals:
        raise UsageError('"network ls" accepts no arguments', usage=LS_USAGE)
    filters = []
    for item in parsed.many("filter"):
        key, has_value, value = item.partition("=")
        if not has_value or not key:
            raise UsageError(f"bad format of filter (expected name=value): {item}", usage=LS_USAGE)
        filters.append((key, value))
    return NetworkLsRequest(quiet=parsed.flag("quiet"), filters=tuple(filters))


def run_ls(ctx: Context, request: NetworkLsRequest) -> NetworkList:
    """Similar to ``docker network ls``."""
    filters: dict[str, list[str]] = {}
    for key, value in request.filters:
        filters.setdefault(key, []).append(value)
    items = ctx.engine.read(ctx.engine.api.networks, filters=filters or None)
    rows = tuple(
        {
            "id": n["Id"][:12],
            "name": n["Name"],
            "driver": n.get("Driver", ""),
            "scope": n.get("Scope", ""),
            "managed": str((n.get("Labels") or {}).get(MANAGED_LABEL) == "true").lower(),
        }
        for n in sorted(items, key=lambda n: str(n["Name"]))
    )
    return NetworkList(networks=rows)


# --------------------------------------------------------------------------------------------- create

CREATE_USAGE = "network create [--driver bridge] [--internal] [-l KEY=VALUE] NAME"


class NetworkCreateRequest(Request):
    command = "network create"
    mutating = True
    name: str
    driver: str = "bridge"
    internal: bool = False
    labels: tuple[tuple[str, str], ...] = ()


def build_create(parsed: Parsed) -> NetworkCreateRequest:
    if len(parsed.positionals) != 1:
        raise UsageError('"network create" requires exactly 1 argument: the name', usage=CREATE_USAGE)
    name = parsed.positionals[0]
    if not NAME_PATTERN.match(name):
        raise UsageError(f"invalid network name: {name!r} (letters, digits, '_', '.', '-')", usage=CREATE_USAGE)
    labels = []
    for item in parsed.many("label"):
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid label: {item!r}", usage=CREATE_USAGE)
        labels.append((key, value))
    reserved = check_labels(dict(labels))
    if reserved is not None:
        raise Denied(reserved.reason, rule=reserved.rule)
    return NetworkCreateRequest(
        name=name,
        driver=parsed.value("driver") or "bridge",
        internal=parsed.flag("internal"),
        labels=tuple(labels),
        dry_run=parsed.flag("dry_run"),
    )


def _create_body(ctx: Context, request: NetworkCreateRequest) -> dict[str, Any]:
    labels = dict(request.labels)
    labels[MANAGED_LABEL] = "true"
    labels[OWNER_LABEL] = ctx.actor.user
    return {
        "Name": request.name,
        "Driver": request.driver,
        "Internal": request.internal,
        "CheckDuplicate": True,
        "Labels": labels,
    }


def plan_create(ctx: Context, request: NetworkCreateRequest) -> list[EngineCall]:
    return [EngineCall("POST", "/networks/create", body=_create_body(ctx, request))]


def run_create(ctx: Context, request: NetworkCreateRequest) -> NetworkChange:
    """Similar to ``docker network create``; a name already in use is refused (``CheckDuplicate``)."""
    body = _create_body(ctx, request)
    created = ctx.engine.write(
        ctx.engine.api.create_network,
        request.name,
        driver=body["Driver"],
        internal=body["Internal"],
        labels=body["Labels"],
        check_duplicate=True,
    )
    return NetworkChange(
        action="create",
        network=request.name,
        network_id=created.get("Id", ""),
        detail="internal (no outside access)" if request.internal else request.driver,
    )


# --------------------------------------------------------------------------------------------- connect

CONNECT_USAGE = "network connect [--alias ALIAS] NETWORK CONTAINER"
DISCONNECT_USAGE = "network disconnect [-f] NETWORK CONTAINER"


class NetworkConnectRequest(Request):
    command = "network connect"
    mutating = True
    network: str
    container: str
    aliases: tuple[str, ...] = ()

    def container_refs(self) -> tuple[str, ...]:
        return (self.container,)

    def network_refs(self) -> tuple[str, ...]:
        return (self.network,)

    def dns_names(self) -> tuple[str, ...] | None:
        return self.aliases


class NetworkDisconnectRequest(Request):
    command = "network disconnect"
    mutating = True
    network: str
    container: str
    force: bool = False

    def container_refs(self) -> tuple[str, ...]:
        return (self.container,)

    def network_refs(self) -> tuple[str, ...]:
        return (self.network,)


def _pair(parsed: Parsed, usage: str, verb: str) -> tuple[str, str]:
    if len(parsed.positionals) != 2:
        raise UsageError(f'"network {verb}" requires exactly 2 arguments: NETWORK CONTAINER', usage=usage)
    return parsed.positionals[0], parsed.positionals[1]


def build_connect(parsed: Parsed) -> NetworkConnectRequest:
    network, container = _pair(parsed, CONNECT_USAGE, "connect")
    aliases = tuple(parsed.many("alias"))
    for alias in aliases:
        if not NAME_PATTERN.match(alias):
            raise UsageError(f"invalid alias: {alias!r} (letters, digits, '_', '.', '-')", usage=CONNECT_USAGE)
    return NetworkConnectRequest(network=network, container=container, aliases=aliases, dry_run=parsed.flag("dry_run"))


def build_disconnect(parsed: Parsed) -> NetworkDisconnectRequest:
    network, container = _pair(parsed, DISCONNECT_USAGE, "disconnect")
    return NetworkDisconnectRequest(
        network=network, container=container, force=parsed.flag("force"), dry_run=parsed.flag("dry_run")
    )


def plan_connect(ctx: Context, request: NetworkConnectRequest) -> list[EngineCall]:
    net = ctx.networks.get(request.network)
    box = ctx.containers.get(request.container)
    body = {
        "Container": box.id if box else request.container,
        "EndpointConfig": {"Aliases": list(request.aliases)},
    }
    return [EngineCall("POST", f"/networks/{net.id if net else request.network}/connect", body=body)]


def plan_disconnect(ctx: Context, request: NetworkDisconnectRequest) -> list[EngineCall]:
    net = ctx.networks.get(request.network)
    box = ctx.containers.get(request.container)
    body = {"Container": box.id if box else request.container, "Force": request.force}
    return [EngineCall("POST", f"/networks/{net.id if net else request.network}/disconnect", body=body)]


def run_connect(ctx: Context, request: NetworkConnectRequest) -> NetworkChange:
    """Similar to ``docker network connect``: the container joins, reachable by its name and aliases."""
    net = _network(ctx, request.network)
    box = resolved(ctx, request.container)
    ctx.engine.write(ctx.engine.api.connect_container_to_network, box.id, net.id, aliases=list(request.aliases) or None)
    detail = f"aliases {', '.join(request.aliases)}" if request.aliases else ""
    return NetworkChange(action="connect", network=net.name, network_id=net.id, container=box.name, detail=detail)


def run_disconnect(ctx: Context, request: NetworkDisconnectRequest) -> NetworkChange:
    """Similar to ``docker network disconnect``."""
    net = _network(ctx, request.network)
    box = resolved(ctx, request.container)
    ctx.engine.write(ctx.engine.api.disconnect_container_from_network, box.id, net.id, force=request.force)
    return NetworkChange(action="disconnect", network=net.name, network_id=net.id, container=box.name)


# --------------------------------------------------------------------------------------------- inspect / rm

INSPECT_USAGE = "network inspect NETWORK"
RM_USAGE = "network rm [-f] NETWORK [NETWORK...]"


class NetworkInspectRequest(Request):
    command = "network inspect"
    network: str

    def network_refs(self) -> tuple[str, ...]:
        return (self.network,)


class NetworkRmRequest(Request):
    command = "network rm"
    mutating = True
    networks: tuple[str, ...]
    force: bool = False

    def network_refs(self) -> tuple[str, ...]:
        return self.networks

    def missing_networks_ok(self) -> bool:
        return self.force


def build_inspect(parsed: Parsed) -> NetworkInspectRequest:
    if len(parsed.positionals) != 1:
        raise UsageError('"network inspect" requires exactly 1 argument', usage=INSPECT_USAGE)
    return NetworkInspectRequest(network=parsed.positionals[0])


def build_rm(parsed: Parsed) -> NetworkRmRequest:
    return NetworkRmRequest(
        networks=split_targets(parsed.positionals, usage=RM_USAGE),
        force=parsed.flag("force"),
        dry_run=parsed.flag("dry_run"),
    )


def run_inspect(ctx: Context, request: NetworkInspectRequest) -> Inspection:
    """Similar to ``docker network inspect``, with each member's address and aliases."""
    net = _network(ctx, request.network)
    data = ctx.engine.read(ctx.engine.api.inspect_network, net.id)
    ipam = [f"{c.get('Subnet', '')} via {c.get('Gateway', '?')}" for c in (data.get("IPAM") or {}).get("Config") or []]
    members = []
    for cid, member in sorted((data.get("Containers") or {}).items(), key=lambda kv: str(kv[1].get("Name"))):
        aliases = _aliases(ctx, cid, data["Name"])
        shown = f"{member.get('Name')} {member.get('IPv4Address', '')}".strip()
        members.append(shown + (f" (aliases: {', '.join(aliases)})" if aliases else ""))
    labels = data.get("Labels") or {}
    summary = (
        ("Name", data["Name"]),
        ("ID", data["Id"][:12]),
        ("Driver", f"{data.get('Driver', '')}" + (" (internal)" if data.get("Internal") else "")),
        ("Subnet", ", ".join(ipam) or "none"),
        ("Containers", "\n".join(members) or "none"),
        ("Created by", labels.get(OWNER_LABEL, "") or "not chatdock"),
    )
    return Inspection(title=f"network inspect {data['Name']}", summary=summary, document=data)


def _aliases(ctx: Context, container_id: str, network: str) -> list[str]:
    try:
        data = ctx.engine.read(ctx.engine.api.inspect_container, container_id)
    except NotFound:
        return []
    endpoint = ((data.get("NetworkSettings") or {}).get("Networks") or {}).get(network) or {}
    return [a for a in endpoint.get("Aliases") or [] if a != container_id[:12]]


def plan_rm(ctx: Context, request: NetworkRmRequest) -> list[EngineCall]:
    return [
        EngineCall("DELETE", f"/networks/{ctx.networks[r].id if r in ctx.networks else r}") for r in request.networks
    ]


def run_rm(ctx: Context, request: NetworkRmRequest) -> NetworkChange:
    """Similar to ``docker network rm``: several at once; one in use is reported, the others removed.
    With ``-f`` a network that does not exist is no error (docker 28 says nothing and exits 0; chatdock notes it)."""
    items = []
    for ref in request.networks:
        if request.force and ref in ctx.missing:
            items.append(ActionItem(target=ref, ok=True, warning=ctx.missing[ref]))
            continue
        try:
            net = _network(ctx, ref)
            ctx.engine.write(ctx.engine.api.remove_network, net.id)
            items.append(ActionItem(target=ref, ok=True))
        except ChatdockError as exc:
            items.append(ActionItem(target=ref, ok=False, error=exc.message))
    return NetworkChange(action="rm", network=", ".join(request.networks), items=tuple(items))


def _grammar(usage: str, *flags: Flag) -> Grammar:
    return Grammar(usage=usage, flags=flags)


COMMANDS = (
    Command(
        "network ls",
        _grammar(
            LS_USAGE,
            Flag(("-q", "--quiet"), "quiet", help="only display IDs"),
            Flag(("-f", "--filter"), "filter", Kind.LIST, "KEY=VALUE", "filter output"),
        ),
        "list networks",
        build_ls,
        run_ls,
        aliases=("network list",),
        examples=("network ls",),
    ),
    Command(
        "network create",
        _grammar(
            CREATE_USAGE,
            Flag(("-d", "--driver"), "driver", Kind.VALUE, "DRIVER", "network driver (bridge)"),
            Flag(("--internal",), "internal", help="no access to the outside world"),
            Flag(("-l", "--label"), "label", Kind.LIST, "KEY=VALUE", "set a label"),
            DRY_RUN,
        ),
        "create a user-defined bridge network",
        build_create,
        run_create,
        plan=plan_create,
        examples=("network create app",),
    ),
    Command(
        "network connect",
        _grammar(
            CONNECT_USAGE,
            Flag(("--alias",), "alias", Kind.LIST, "ALIAS", "a DNS name on this network"),
            DRY_RUN,
        ),
        "connect a container to a network",
        build_connect,
        run_connect,
        plan=plan_connect,
        examples=("network connect app webhost", "network connect --alias search app es2"),
    ),
    Command(
        "network disconnect",
        _grammar(DISCONNECT_USAGE, Flag(("-f", "--force"), "force", help="force the disconnection"), DRY_RUN),
        "disconnect a container from a network",
        build_disconnect,
        run_disconnect,
        plan=plan_disconnect,
        examples=("network disconnect app webhost",),
    ),
    Command(
        "network inspect",
        _grammar(INSPECT_USAGE),
        "show a network and its containers",
        build_inspect,
        run_inspect,
        examples=("network inspect app",),
    ),
    Command(
        "network rm",
        _grammar(RM_USAGE, Flag(("-f", "--force"), "force", help="no error when a network does not exist"), DRY_RUN),
        "remove networks",
        build_rm,
        run_rm,
        plan=plan_rm,
        aliases=("network remove",),
        examples=("network rm app",),
    ),
)
