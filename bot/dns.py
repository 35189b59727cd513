"""The names docker's DNS answers on a network, read from the engine for policy's ``networks.impersonation`` rule.

On a user-defined network docker's embedded DNS answers a container's name, its network aliases and its host name
(and each of them followed by ``.NETWORK``). A container that gains a name another container already answers to
takes part of that one's traffic, so a name held by a container the caller may not touch is refused: when ``run``
or ``network connect`` puts a container on a network, and when ``start``/``restart`` brings a stopped container's
names back. The decision itself is :func:`bot.policy.impersonation` (pure); this module gathers its facts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot import policy as policy_rules
from bot.engine import Engine
from bot.errors import Denied, NotFound
from bot.models import ContainerFacts, NetworkFacts
from bot.policy import Policy

NO_DNS = ("bridge", "host", "none")  # docker's predefined networks: no embedded DNS names


def check_names(
    engine: Engine,
    policy: Policy,
    *,
    network: NetworkFacts,
    names: tuple[str, ...],
    joining: list[dict[str, Any]],
    in_scope: Callable[[ContainerFacts], bool],
) -> None:
    """Refuse ``names`` on ``network`` when one leads to a container the caller may not touch. ``joining`` are
    the inspect documents of existing containers joining it: they bring their names and host names."""
    claimed = list(names)
    joining_ids = {data["Id"] for data in joining}
    for data in joining:
        claimed.append(str(data.get("Name", "")).lstrip("/"))
        hostname = str((data.get("Config") or {}).get("Hostname") or "")
        if hostname and not data["Id"].startswith(hostname):
            claimed.append(hostname)
    if not claimed:
        return
    # By name as well as ID: a container created on the network but never started has no network ID yet.
    listed = engine.read(engine.api.containers, all=True, filters={"network": [network.name, network.id]})
    members: list[tuple[ContainerFacts, tuple[str, ...]]] = []
    for item in listed:
        facts = ContainerFacts(
            id=item["Id"],
            name=(item.get("Names") or ["/"])[0].lstrip("/"),
            labels=item.get("Labels") or {},
            image=item.get("Image", ""),
            status=item.get("State", ""),
        )
        if facts.id in joining_ids or in_scope(facts):
            continue  # only containers the caller may not touch need their aliases read
        try:
            data = engine.inspect_container(facts.id)
        except NotFound:
            continue  # removed meanwhile
        endpoint = ((data.get("NetworkSettings") or {}).get("Networks") or {}).get(network.name) or {}
        hostname = str((data.get("Config") or {}).get("Hostname") or "")
        members.append((facts, (*(endpoint.get("Aliases") or ()), hostname)))
    refused = policy_rules.impersonation(policy, network=network.name, claimed=claimed, members=members)
    if refused is not None:
        raise Denied(refused.reason, rule=refused.rule)


def check_start(
    engine: Engine, policy: Policy, data: dict[str, Any], *, in_scope: Callable[[ContainerFacts], bool]
) -> None:
    """A stopped container answers to its names again once started: check them on each of its user-defined
    networks, where a container the caller may not touch may have taken them meanwhile."""
    if (data.get("State") or {}).get("Running"):
        return  # already answering; starting changes nothing
    endpoints = (data.get("NetworkSettings") or {}).get("Networks") or {}
    for name, endpoint in endpoints.items():
        if name in NO_DNS:
            continue
        network = NetworkFacts(id=(endpoint or {}).get("NetworkID") or name, name=name)
        aliases = tuple((endpoint or {}).get("Aliases") or ())
        check_names(engine, policy, network=network, names=aliases, joining=[data], in_scope=in_scope)
