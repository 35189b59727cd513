"""Policy per host: a grant limited to hosts by name or by labels; an empty list or mapping matches no host."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from bot.hosts import HostSet, load_hosts_text
from bot.models import Actor
from bot.pipeline import Pipeline
from bot.policy import Policy, PolicyError, load_policy_text
from handlers import build_registry
from tests.hosts.conftest import hosts_yaml
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import SecondEngine

pytestmark = pytest.mark.docker

POLICY = """
roles:
  viewer: {commands: [ps, inspect, logs, context ls]}
  admin:  {include: [viewer], commands: [run, stop, start, rm]}
grants:
  - {role: admin, users: [UALICE], hosts: [second]}          # admin on staging only
  - {role: viewer, users: [UALICE], host_labels: {env: prod}} # a viewer on prod
  - {role: viewer, users: [UBOB], hosts: []}                   # an emptied list: no host at all
  - {role: viewer, users: [UCAROL], host_labels: {}}           # an emptied mapping: no host either
images: ["@local"]
"""

ALICE = Actor(user="UALICE", channel="COPS")
BOB = Actor(user="UBOB", channel="COPS")
CAROL = Actor(user="UCAROL", channel="COPS")


@pytest.fixture
def team(second_engine: SecondEngine) -> Iterator[Pipeline]:
    hosts = HostSet(load_hosts_text(hosts_yaml(second_engine)), timeout=20)
    policy = load_policy_text(POLICY, known_commands=[*build_registry().names(), "history"])
    yield Pipeline(engine=hosts.engine("local"), hosts=hosts, policy=policy, registry=build_registry())
    hosts.close()


def test_a_grant_holds_only_on_its_hosts(team: Pipeline, second_engine: SecondEngine, name: Any) -> None:
    web = name("web")
    client = second_engine.client()
    try:
        ran = team.handle(f"--context second run -d --name {web} {TEST_IMAGE}", ALICE)
        assert ran.ok, ran.error
        assert ran.decision is not None and ran.decision.reason == "role admin may run `run` on host second"
        # the same engine as "secure", but that host is prod: alice only views there
        refused = team.handle(f"--context secure stop {web}", ALICE)
        assert refused.error is not None and refused.error.kind == "denied"
        assert refused.error.rule == "default-deny"
        assert refused.error.message == "no grant lets UALICE in channel COPS run `stop` on host secure"
        assert client.containers.get(web).status == "running"  # a denied request changes nothing
        assert team.handle("--context secure ps", ALICE).ok  # viewer by label env=prod
        local = team.handle("ps", ALICE)  # local has neither the name nor the label
        assert local.error is not None and local.error.message.endswith("run `ps` on host local")
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(web).remove(force=True)
        client.close()


def test_emptied_lists_match_no_host(team: Pipeline) -> None:
    for actor in (BOB, CAROL):
        for host in ("local", "second", "secure"):
            outcome = team.handle(f"--context {host} ps", actor)
            assert outcome.error is not None and outcome.error.kind == "denied", (actor.user, host)


def test_across_every_host_lists_only_the_hosts_one_may_see(team: Pipeline) -> None:
    outcome = team.handle("--context '*' ps -a", ALICE)
    assert outcome.ok, outcome.error
    assert outcome.result.hosts == ("second", "secure")  # type: ignore[union-attr]
    assert "local" not in {view.host for view in outcome.result.containers}  # type: ignore[union-attr]
    nobody = team.handle("--context '*' ps -a", BOB)
    assert nobody.error is not None and nobody.error.kind == "denied"


def test_policy_check_reads_the_host_fields() -> None:
    with pytest.raises(PolicyError) as raised:
        load_policy_text("roles: {v: {commands: [ps]}}\ngrants:\n  - {role: v, users: ['*'], hosts: prod}\n")
    assert any("grants[0].hosts" in problem for problem in raised.value.problems)
    policy: Policy = load_policy_text(POLICY)
    assert policy.grants[0].hosts == ("second",) and policy.grants[1].host_labels == {"env": "prod"}


SCOPED = """
roles:
  admin: {commands: [ps, stop, start]}
grants:
  - {role: admin, users: [UALICE]}
images: ["@local"]
containers: {names: ["*-web-*"]}
hosts:
  second:                                   # the staging host: its own scope, the rest of the policy as above
    containers: {names: ["*-db-*"], protect: ["*-web-*"]}
"""


def test_container_scope_differs_per_host(
    second_engine: SecondEngine, docker_client: docker.DockerClient, name: Any
) -> None:
    hosts = HostSet(load_hosts_text(hosts_yaml(second_engine)), timeout=20)
    policy = load_policy_text(SCOPED, known_commands=build_registry().names())
    pipeline = Pipeline(engine=hosts.engine("local"), hosts=hosts, policy=policy, registry=build_registry())
    web, db = name("web"), name("db")
    second = second_engine.client()
    try:
        for client in (docker_client, second):
            client.containers.create(TEST_IMAGE, name=web)  # not started by chatdock: in scope only by name
            client.containers.create(TEST_IMAGE, name=db)
        assert pipeline.handle(f"start {web}", ALICE).ok  # local: *-web-* is in scope
        denied = pipeline.handle(f"start {db}", ALICE)
        assert denied.error is not None and denied.error.rule == "containers.scope"
        on_second = pipeline.handle(f"--context second start {db}", ALICE)
        assert on_second.ok, on_second.error  # second: *-db-* is
        protected = pipeline.handle(f"--context second start {web}", ALICE)
        assert protected.error is not None and protected.error.rule == "containers.protect"
        assert second.containers.get(web).status == "created"  # nothing happened
        listed = pipeline.handle("--context '*' ps -a", ALICE)
        rows = {(view.host, view.name) for view in listed.result.containers}  # type: ignore[union-attr]
        assert ("local", web) in rows and ("second", db) in rows
        assert ("local", db) not in rows and ("second", web) not in rows
    finally:
        for client in (docker_client, second):
            for ref in (web, db):
                with contextlib.suppress(docker.errors.NotFound):
                    client.containers.get(ref).remove(force=True)
        second.close()
        hosts.close()
