"""The notes' network walkthrough against the real Docker engine: user-defined bridges, DNS by name and alias.

"同じbridge上のコンテナは…互いにすべてやりとりできる" and "DockerではデフォルトでHOST_NAME == CONTAINER_NAME":
containers on one user-defined bridge reach each other by container name and by ``--net-alias``, and stop
resolving each other once one leaves the network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from bot.models import Actor
from bot.pipeline import Outcome, Pipeline
from bot.render_text import render
from tests.conftest import SESSION

ME = Actor(user=f"U{SESSION}", channel="shell")


@pytest.fixture
def as_me(local: Pipeline) -> Callable[[str], Outcome]:
    def run(text: str) -> Outcome:
        return local.handle(text, ME)

    return run


@pytest.fixture
def made(docker_client: docker.DockerClient, name: Callable[[str], str]) -> Iterator[Callable[[str], str]]:
    """``made("web")`` → a prefixed name; containers and networks by that name are removed when the test ends."""
    names: list[str] = []

    def make(base: str = "c") -> str:
        names.append(name(base))
        return names[-1]

    yield make
    for each in names:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(each, force=True)
    for each in names:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_network(each)


def ok(outcome: Outcome) -> Outcome:
    assert outcome.ok, f"{outcome.shown_text!r} failed: {outcome.error or render(outcome)}"
    return outcome


def members(client: docker.DockerClient, network: str) -> dict[str, list[str]]:
    """Container name → its aliases on ``network``, as the engine sees it."""
    found = {}
    for container_id in client.api.inspect_network(network)["Containers"]:
        data = client.api.inspect_container(container_id)
        endpoint = data["NetworkSettings"]["Networks"][network]
        found[data["Name"].lstrip("/")] = list(endpoint.get("Aliases") or [])
    return found


def test_the_notes_network_walkthrough(
    as_me: Callable[[str], Outcome], made: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    net, search, client = made("net"), made("es"), made("client")

    created = ok(as_me(f"/net create {net}"))
    network = docker_client.api.inspect_network(net)
    assert render(created) == network["Id"]
    assert network["Driver"] == "bridge"
    assert network["Labels"] == {"chatdock.managed": "true", "chatdock.owner": ME.user}

    listed = ok(as_me("/net ls"))
    assert {"id": network["Id"][:12], "name": net, "driver": "bridge", "scope": "local", "managed": "true"} in (
        listed.result.networks  # type: ignore[union-attr]
    )
    row = next(line for line in render(listed).splitlines() if net in line)
    assert row.split() == [network["Id"][:12], net, "bridge", "local"]

    ok(as_me(f"run -d --net {net} --net-alias search --name {search} {image}"))
    ok(as_me(f"run -d --name {client} {image} sleep 300"))
    assert set(members(docker_client, net)) == {search}  # the client is only on the default bridge so far
    assert "search" in members(docker_client, net)[search]

    connected = ok(as_me(f"/net connect {net} {client}"))
    assert render(connected) == f"{client} connected to {net}"
    assert set(members(docker_client, net)) == {search, client}

    by_alias = ok(as_me(f"exec {client} nslookup search"))
    search_ip = docker_client.api.inspect_container(search)["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert f"Address: {search_ip}" in by_alias.result.output  # type: ignore[union-attr]
    by_name = ok(as_me(f"exec {client} wget -qO- http://{search}/"))
    assert render(by_name) == "<h1>chatdock test</h1>"
    alias_page = ok(as_me(f"exec {client} wget -qO- http://search/"))
    assert render(alias_page) == "<h1>chatdock test</h1>"

    inspected = ok(as_me(f"/net inspect {net}"))
    summary = dict(inspected.result.summary)  # type: ignore[union-attr]
    client_ip = docker_client.api.inspect_container(client)["NetworkSettings"]["Networks"][net]["IPAddress"]
    lines = summary["Containers"].splitlines()
    assert len(lines) == 2
    assert any(line.startswith(f"{search} {search_ip}/") and line.endswith("(aliases: search)") for line in lines)
    assert any(line.startswith(f"{client} {client_ip}/") for line in lines)
    assert summary["Name"] == net and summary["Driver"] == "bridge" and summary["Created by"] == ME.user
    assert " via " in summary["Subnet"]
    assert set(inspected.result.document["Containers"]) == {  # type: ignore[union-attr]
        docker_client.api.inspect_container(search)["Id"],
        docker_client.api.inspect_container(client)["Id"],
    }

    disconnected = ok(as_me(f"/net disconnect {net} {client}"))
    assert render(disconnected) == f"{client} disconnected from {net}"
    assert set(members(docker_client, net)) == {search}
    lookup = as_me(f"exec {client} nslookup search")
    assert not lookup.ok and lookup.result.exit_code != 0  # type: ignore[union-attr]
    assert "can't find search" in lookup.result.output  # type: ignore[union-attr]
    fetch = as_me(f"exec {client} wget -qO- -T 2 http://{search}/")
    assert not fetch.ok and fetch.result.exit_code != 0  # type: ignore[union-attr]
    assert "chatdock test" not in fetch.result.output  # type: ignore[union-attr]

    in_use = as_me(f"network rm {net}")
    assert not in_use.ok
    [item] = in_use.result.items  # type: ignore[union-attr]
    assert not item.ok and "has active endpoints" in item.error
    assert render(in_use).startswith("Error response from daemon: ")
    docker_client.api.inspect_network(net)  # still there

    ok(as_me(f"rm -f {search}, {client}"))
    removed = ok(as_me(f"/net rm {net}"))
    assert render(removed) == net
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_network(net)


def test_connect_with_an_alias(
    as_me: Callable[[str], Outcome], made: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    net, web, probe = made("net"), made("web"), made("probe")
    ok(as_me(f"network create {net}"))
    ok(as_me(f"run -d --net {net} --name {probe} {image} sleep 300"))
    ok(as_me(f"run -d --name {web} {image}"))

    connected = ok(as_me(f"network connect --alias x {net} {web}"))

    assert render(connected) == f"{web} connected to {net} (aliases x)"
    assert "x" in members(docker_client, net)[web]
    web_ip = docker_client.api.inspect_container(web)["NetworkSettings"]["Networks"][net]["IPAddress"]
    assert f"Address: {web_ip}" in ok(as_me(f"exec {probe} nslookup x")).result.output  # type: ignore[union-attr]
    assert render(ok(as_me(f"exec {probe} wget -qO- http://x/"))) == "<h1>chatdock test</h1>"
    summary = dict(ok(as_me(f"network inspect {net}")).result.summary)  # type: ignore[union-attr]
    assert any(line.startswith(web) and line.endswith("(aliases: x)") for line in summary["Containers"].splitlines())


def test_net_alias_needs_a_user_defined_network(
    as_me: Callable[[str], Outcome], made: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = made("web")
    for text in (f"run -d --net-alias search --name {web} {image}", f"run -d --net bridge --net-alias s {image}"):
        refused = as_me(text)
        assert refused.error is not None and refused.error.kind == "usage", text
        assert "aliases are supported only for containers in user-defined networks" in refused.error.message
        assert render(refused).endswith("Usage: run [OPTIONS] IMAGE [COMMAND] [ARG...]")
    with pytest.raises(docker.errors.NotFound):
        docker_client.api.inspect_container(web)


def test_the_host_network_is_refused(
    as_me: Callable[[str], Outcome], made: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = made("web")
    ok(as_me(f"run -d --name {web} {image}"))

    for text in (f"/net connect host {web}", f"network connect --dry-run host {web}"):
        refused = as_me(text)
        assert refused.error is not None, text
        assert (refused.error.kind, refused.error.rule) == ("denied", "never:network-host"), text

    networks = docker_client.api.inspect_container(web)["NetworkSettings"]["Networks"]
    assert set(networks) == {"bridge"}
    removal = as_me("network rm host")
    assert removal.error is not None and removal.error.rule == "networks.predefined"


def test_unknown_network_and_container(as_me: Callable[[str], Outcome], made: Callable[[str], str], image: str) -> None:
    net, web = made("net"), made("web")
    ok(as_me(f"network create {net}"))

    no_network = as_me(f"run -d --net {made('nope')} --name {web} {image}")
    assert no_network.error is not None and no_network.error.kind == "not_found"
    assert no_network.error.message.startswith("No such network: ")

    no_container = as_me(f"network connect {net} {made('ghost')}")
    assert no_container.error is not None and no_container.error.message.startswith("No such container: ")

    again = as_me(f"network create {net}")
    assert again.error is not None and "already exists" in again.error.message
