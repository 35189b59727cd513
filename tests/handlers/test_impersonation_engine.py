"""No container may answer to a DNS name that already leads to a container the caller may not touch.

On a user-defined network docker's DNS answers a container's name, its aliases and its host name; a second
container with the same name or alias gets part of the first one's traffic. Every way a container gains a name
on a network is refused when the name is taken by a protected or out-of-scope container there (rule
``networks.impersonation``), and nothing changes. Against the real engine, under the test team policy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest

from bot.engine import Engine
from bot.models import Actor
from bot.pipeline import Outcome
from bot.policy import Policy
from bot.render_text import render
from tests.conftest import PREFIX, SESSION, TEST_LABEL, make_pipeline

ADMIN = Actor(user="UADMIN", channel="CDEV")


@pytest.fixture
def admin(engine: Engine, team_policy: Policy) -> Callable[[str], Outcome]:
    pipeline = make_pipeline(engine, team_policy, run_timeout=20, exec_timeout=10)
    return lambda text: pipeline.handle(text, ADMIN)


@pytest.fixture
def lan(docker_client: docker.DockerClient, name: Callable[[str], str], image: str) -> Iterator[dict[str, Any]]:
    """A network with a protected database (alias ``db``, host name ``dbhost``, stopped) and an out-of-scope
    cache (alias ``cache``), made directly with the engine as an operator would; removed afterwards."""
    net = name("net")
    docker_client.networks.create(net, labels={TEST_LABEL: SESSION})
    made: list[str] = []

    def container(base: str, alias: str, **extra: Any) -> str:
        made.append(name(base))
        networking = docker_client.api.create_networking_config(
            {net: docker_client.api.create_endpoint_config(aliases=[alias])}
        )
        docker_client.api.create_container(
            image,
            name=made[-1],
            labels={TEST_LABEL: SESSION},
            host_config=docker_client.api.create_host_config(network_mode=net),
            networking_config=networking,
            **extra,
        )
        return made[-1]

    protected = container("protected-db", "db", hostname="dbhost")
    cache = container("cache", f"{PREFIX}cache")
    docker_client.api.start(cache)  # one running, one stopped: both count
    yield {"net": net, "protected": protected, "cache": cache}
    for each in made:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_container(each, force=True)
    with contextlib.suppress(docker.errors.APIError):
        docker_client.networks.get(net).remove()


def refused(outcome: Outcome, taken: str, holder: str) -> None:
    assert not outcome.ok and outcome.error is not None, render(outcome)
    assert outcome.error.rule == "networks.impersonation", outcome.error
    assert outcome.error.message.startswith(f"`{taken}` already leads to {holder} on network "), outcome.error
    assert "you may not touch" in outcome.error.message


def names_of(client: docker.DockerClient) -> set[str]:
    return {c.name for c in client.containers.list(all=True, sparse=True, filters={"name": PREFIX})}


def test_run_may_not_take_a_protected_containers_alias_name_or_hostname(
    admin: Callable[[str], Outcome], lan: dict[str, Any], docker_client: docker.DockerClient, image: str, name: Any
) -> None:
    net, protected, cache = lan["net"], lan["protected"], lan["cache"]
    before = names_of(docker_client)
    x = name("x")

    refused(admin(f"run -d --net {net} --net-alias db --name {x} {image}"), "db", protected)
    refused(admin(f"run -d --network={net} --network-alias DB. --name {x} {image}"), "DB.", protected)  # DNS case
    refused(admin(f"run -d --net {net} --hostname db --name {x} {image}"), "db", protected)
    refused(admin(f"run -d --net {net} --net-alias dbhost --name {x} {image}"), "dbhost", protected)
    refused(admin(f"run -d --net {net} --net-alias {protected} {image}"), protected, protected)  # its name
    refused(admin(f"run -d --net {net} --name {PREFIX}cache {image}"), f"{PREFIX}cache", cache)  # out of scope
    refused(admin(f"run --dry-run -d --net {net} --net-alias db {image}"), "db", protected)
    refused(admin(f"run -d --net {net} --net-alias db.{net} {image}"), f"db.{net}", protected)  # NAME.NETWORK
    assert names_of(docker_client) == before  # nothing was created

    # A name nobody protected answers to is fine, and so is one held by a container the caller may touch.
    ran = admin(f"run -d --net {net} --net-alias api --name {x} {image}")
    assert ran.ok, render(ran)
    again = admin(f"run -d --net {net} --net-alias api --name {name('y')} {image}")
    assert again.ok, render(again)  # both are chatdock's: docker's round robin between them is the caller's choice


def test_network_connect_may_not_take_a_protected_name(
    admin: Callable[[str], Outcome], lan: dict[str, Any], docker_client: docker.DockerClient, image: str, name: Any
) -> None:
    net, protected, cache = lan["net"], lan["protected"], lan["cache"]
    x = name("x")
    assert admin(f"run -d --name {x} {image}").ok

    refused(admin(f"network connect --alias db {net} {x}"), "db", protected)
    refused(admin(f"network connect --alias=Db --alias fine {net} {x}"), "Db", protected)

    # A container whose existing name or host name clashes once it joins: the same refusal.
    clash = f"{PREFIX}cache"
    assert admin(f"run -d --name {clash} {image}").ok
    refused(admin(f"network connect {net} {clash}"), clash, cache)
    host = name("h")
    assert admin(f"run -d --name {host} --hostname dbhost {image}").ok
    refused(admin(f"network connect {net} {host}"), "dbhost", protected)

    for each in (x, clash, host):
        assert net not in docker_client.api.inspect_container(each)["NetworkSettings"]["Networks"]

    joined = admin(f"network connect --alias fine {net} {x}")
    assert joined.ok, render(joined)
    assert "fine" in docker_client.api.inspect_container(x)["NetworkSettings"]["Networks"][net]["Aliases"]


def test_the_rule_alone_compares_names_as_dns_does(team_policy: Policy) -> None:
    from bot.models import ContainerFacts
    from bot.policy import impersonation

    guarded = ContainerFacts(id="a" * 64, name=f"{PREFIX}protected-db")
    ours = ContainerFacts(id="b" * 64, name="mine", labels={"chatdock.managed": "true"})
    members = [(ours, ("api",)), (guarded, ("db", "aaaaaaaaaaaa"))]
    assert impersonation(team_policy, network="app", claimed=["api", "web"], members=members) is None
    for name in (
        "db",
        "DB",
        "db.",
        "db.app",
        "DB.App.",
        "aaaaaaaaaaaa",
        f"{PREFIX}PROTECTED-db",
        f"{PREFIX}protected-db.app",
    ):
        decision = impersonation(team_policy, network="app", claimed=["web", name], members=members)
        assert decision is not None and decision.rule == "networks.impersonation", name
    assert impersonation(team_policy, network="app", claimed=["", "web"], members=[(guarded, ("", "db"))]) is None
    assert impersonation(team_policy, network="app", claimed=["db.other", ".app"], members=members) is None


def test_starting_a_container_whose_name_was_taken_meanwhile_is_refused(
    admin: Callable[[str], Outcome], lan: dict[str, Any], docker_client: docker.DockerClient, image: str, name: Any
) -> None:
    net, x = lan["net"], name("x")
    assert admin(f"run -d --net {net} --net-alias late --name {x} {image}").ok
    assert admin(f"stop -t 0 {x}").ok
    # Meanwhile an operator starts a protected service answering to `late` on the same network.
    guard = name("protected-late")
    docker_client.api.create_container(
        image,
        name=guard,
        labels={TEST_LABEL: SESSION},
        host_config=docker_client.api.create_host_config(network_mode=net),
        networking_config=docker_client.api.create_networking_config(
            {net: docker_client.api.create_endpoint_config(aliases=["late"])}
        ),
    )
    try:
        docker_client.api.start(guard)
        refused(admin(f"start {x}"), "late", guard)
        refused(admin(f"restart {x}"), "late", guard)
        assert docker_client.api.inspect_container(x)["State"]["Status"] == "exited"
        assert admin(f"restart {guard}").error is not None  # and the protected one stays out of reach

        docker_client.api.remove_container(guard, force=True)
        started = admin(f"start {x}")
        assert started.ok, render(started)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_container(guard, force=True)
