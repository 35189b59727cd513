"""Properties of the policy over generated documents: lists never widen it.

(a) Removing any one entry from any allow-list (anywhere in the file) never turns a denial into an allow, for
    ``decide``, ``container_in_scope``, ``network_in_scope``, ``image_allowed`` / ``may_pull`` and the Engine
    body check (ports, images, limits). The deny-lists (``protect``), ``redact`` and the ``containers.labels``
    selector are the documented exceptions and are left alone.
(b) An emptied list grants nothing: a grant whose users/groups or channels are emptied matches nobody, emptied
    ``teams`` admit no other workspace, and emptied ``images``, ``ports``, ``names`` allow nothing through them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Actor, ContainerFacts, NetworkFacts
from bot.policy import (
    MANAGED_LABEL,
    Policy,
    check_create_body,
    container_in_scope,
    decide,
    image_allowed,
    load_policy_text,
    may_pull,
    network_in_scope,
    parse_image,
)
from handlers.containers import PsRequest, StopRequest
from handlers.meta import HelpRequest
from handlers.networks import NetworkLsRequest
from handlers.run import RunRequest

COMMANDS = ["ps", "stop", "run", "help", "network ls", "*"]
USERS = ["U1", "U2", "U3", "*"]
GROUPS = ["S1", "S2"]
CHANNELS = ["C1", "C2", "*"]
TEAMS = ["T0PARTNER", "T0OTHER", "*"]
IMAGES = ["@local", "nginx", "nginx:1.*", "local/*", "*", "redis:7"]
NAMES = ["web-*", "db", "*", "cache?"]
PORTS = ["80", "8000-9999", "1-65535", "random", "443"]
ROLES = ["r1", "r2", "r3"]
# Where a list stands in the document, and whether it is an allow-list (removing an entry must never widen).
DENY_OR_SELECTOR = {"protect", "redact"}


def sub(items: list[str], *, max_size: int = 3) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), max_size=max_size, unique=True)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A key that is either left out (None here) or written with a (possibly empty) value."""
    return st.one_of(st.none(), strategy)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    roles: dict[str, Any] = {}
    for index, role in enumerate(ROLES):
        body: dict[str, Any] = {}
        commands = draw(maybe(sub(COMMANDS)))
        if commands is not None:
            body["commands"] = commands
        include = draw(maybe(sub(ROLES[:index]))) if index else None  # earlier roles only: never a cycle
        if include is not None:
            body["include"] = include
        roles[role] = body
    grants = []
    for _ in range(draw(st.integers(0, 4))):
        grant: dict[str, Any] = {"role": draw(st.sampled_from(ROLES))}
        for key, pool in (("users", USERS), ("groups", GROUPS), ("channels", CHANNELS), ("teams", TEAMS)):
            value = draw(maybe(sub(pool)))
            if value is not None:
                grant[key] = value
        grants.append(grant)
    document: dict[str, Any] = {"roles": roles, "grants": grants}
    for key, pool in (("images", IMAGES), ("ports", PORTS)):
        value = draw(maybe(sub(pool, max_size=4)))
        if value is not None:
            document[key] = value
    containers: dict[str, Any] = {}
    names = draw(maybe(sub(NAMES)))
    if names is not None:
        containers["names"] = names
    labels = draw(maybe(st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["web", "prod"]))))
    if labels is not None:
        containers["labels"] = labels
    protect = draw(maybe(sub(NAMES)))
    if protect is not None:
        containers["protect"] = protect
    document["containers"] = containers
    networks: dict[str, Any] = {}
    net_names = draw(maybe(sub(["app", "app-*", "*", "bridge"])))
    if net_names is not None:
        networks["names"] = net_names
    document["networks"] = networks
    return document


actors = st.builds(
    Actor,
    user=st.sampled_from(["U1", "U2", "U3", "U9"]),
    channel=st.sampled_from(["C1", "C2", "C9", ""]),
    groups=st.lists(st.sampled_from(GROUPS), max_size=2, unique=True).map(tuple),
    user_team=st.sampled_from(["T0HOME", "T0PARTNER", "T0OTHER"]),
    external=st.booleans(),
)
requests = st.sampled_from(
    [PsRequest(), StopRequest(targets=("web",)), RunRequest(image="nginx"), HelpRequest(), NetworkLsRequest()]
)
containers = st.builds(
    ContainerFacts,
    id=st.just("c" * 64),
    name=st.sampled_from(["web-1", "db", "cache1", "other", "chatdock"]),
    labels=st.fixed_dictionaries(
        {},
        optional={
            "team": st.sampled_from(["web", "ops"]),
            "env": st.sampled_from(["prod", "dev"]),
            MANAGED_LABEL: st.just("true"),
        },
    ),
)
networks = st.builds(
    NetworkFacts,
    id=st.just("n" * 64),
    name=st.sampled_from(["app", "app-1", "bridge", "none", "other"]),
    driver=st.just("bridge"),
    labels=st.sampled_from([{}, {MANAGED_LABEL: "true"}]),
)
images = st.sampled_from(["nginx", "nginx:1.25", "nginx:latest", "local/app", "redis:7", "redis:6", "alpine"]).map(
    parse_image
)
bodies = st.builds(
    lambda image, bindings, publish_all: {
        "Image": image,
        "HostConfig": {"PortBindings": bindings, "PublishAllPorts": publish_all},
    },
    st.sampled_from(["nginx", "local/app", "alpine"]),
    st.dictionaries(
        st.sampled_from(["80/tcp", "443/tcp"]),
        st.lists(
            st.fixed_dictionaries({"HostPort": st.sampled_from(["", "0", "80", "8080", "443", "70"])}), max_size=2
        ),
        max_size=2,
    ),
    st.booleans(),
)


def load(document: dict[str, Any]) -> Policy:
    """The document as the loader reads it (YAML text in ``test_the_loader_reads_documents_alike``)."""
    return Policy.model_validate(document)


def removals(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], int]]:
    """Every (list path, index) of an allow-list entry in the document, grants included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in DENY_OR_SELECTOR or key == "labels":
                continue
            yield from removals(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield path, index  # an entry: a name, a pattern, or a whole grant
            if not isinstance(item, str):
                yield from removals(item, (*path, index))


def without(document: dict[str, Any], path: tuple[Any, ...], index: int) -> dict[str, Any]:
    smaller = copy.deepcopy(document)
    node: Any = smaller
    for key in path:
        node = node[key]
    del node[index]
    return smaller


def answers(
    policy: Policy,
    actor: Actor,
    request: Any,
    container: ContainerFacts,
    network: NetworkFacts,
    image: Any,
    body: dict[str, Any],
) -> dict[str, bool]:
    return {
        "decide": decide(policy, actor, request).allowed,
        "container_in_scope": container_in_scope(policy, container).allowed,
        "network_in_scope": network_in_scope(policy, network).allowed,
        "network_in_scope(rm)": network_in_scope(policy, network, for_removal=True).allowed,
        "image_allowed": image_allowed(policy, image).allowed,
        "may_pull": may_pull(policy, image),
        "check_create_body": check_create_body(policy, body).allowed,
    }


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), actors, requests, containers, networks, images, bodies)
def test_removing_an_entry_from_an_allow_list_never_allows_more(
    document: dict[str, Any],
    actor: Actor,
    request: Any,
    container: ContainerFacts,
    network: NetworkFacts,
    image: Any,
    body: dict[str, Any],
) -> None:
    before = answers(load(document), actor, request, container, network, image, body)
    for path, index in removals(document):
        after = answers(load(without(document, path, index)), actor, request, container, network, image, body)
        widened = [name for name in before if after[name] and not before[name]]
        assert not widened, f"removing {path}[{index}] widened {widened}"


@settings(max_examples=100, deadline=None)
@given(documents(), actors)
def test_a_grant_with_emptied_users_and_groups_or_channels_matches_nobody(document: dict[str, Any], actor: Actor):
    for grant in document["grants"]:
        for emptied in ({"users": [], "groups": []}, {"channels": []}):
            policy = load({**document, "grants": [{**grant, **emptied}]})
            assert not policy.grants[0].matches(actor)
        nobody = {k: v for k, v in grant.items() if k not in ("users", "groups")}
        assert not load({**document, "grants": [nobody]}).grants[0].matches(actor)


@settings(max_examples=100, deadline=None)
@given(documents(), actors)
def test_emptied_teams_admit_no_other_workspace(document: dict[str, Any], actor: Actor):
    outsider = actor.model_copy(update={"external": True})
    for grant in document["grants"]:
        policy = load({**document, "grants": [{**grant, "teams": []}]})
        if outsider.user not in policy.grants[0].users:  # only a grant naming them by user ID admits them
            assert not policy.grants[0].matches(outsider)


@settings(max_examples=100, deadline=None)
@given(documents(), containers, networks, images, bodies)
def test_emptied_images_ports_and_names_allow_nothing_through_them(
    document: dict[str, Any], container: ContainerFacts, network: NetworkFacts, image: Any, body: dict[str, Any]
):
    emptied = load({**document, "images": [], "ports": [], "containers": {"names": [], "labels": {}}, "networks": {}})
    assert not image_allowed(emptied, image).allowed
    assert not check_create_body(emptied, body).allowed  # no image may run, whatever the ports
    publishes = body["HostConfig"]["PublishAllPorts"] or any(body["HostConfig"]["PortBindings"].values())
    no_ports = load({**document, "ports": []})
    if publishes:
        assert check_create_body(no_ports, body).rule in ("ports", "images")
    # only what chatdock itself made stays in scope
    assert container_in_scope(emptied, container).allowed == (container.labels.get(MANAGED_LABEL) == "true")
    emptied_nets = load({**document, "networks": {"names": []}})
    if network.labels.get(MANAGED_LABEL) != "true" and network.name not in ("bridge", "none"):
        assert not network_in_scope(emptied_nets, network).allowed


@settings(max_examples=50, deadline=None)
@given(documents())
def test_emptied_role_commands_grant_no_command(document: dict[str, Any]):
    for role in ROLES:
        roles = {**document["roles"], role: {"commands": []}}
        assert load({**document, "roles": roles}).role_commands(role) == frozenset()


@settings(max_examples=50, deadline=None)
@given(documents())
def test_the_loader_reads_documents_alike(document: dict[str, Any]):
    import yaml

    assert load_policy_text(yaml.safe_dump(document)) == load(document)
