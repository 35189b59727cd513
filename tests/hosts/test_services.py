"""Swarm services from chat, on a real single-node swarm: the second engine (never the first) is made a swarm
manager for this module and leaves the swarm after it. chatdock reaches it as the configured host ``second``.

Services are created here with docker-py (as a team's own deploy would), with short update delays and monitor
periods so rollouts take seconds; the images are tags of the test image made on the second engine.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import pytest
from docker.types import Mount, RestartPolicy, RollbackConfig, ServiceMode, UpdateConfig

from bot import render_text
from bot.hosts import HostSet, load_hosts_text
from bot.models import Actor, Progress
from bot.pipeline import Outcome, Pipeline
from bot.policy import Policy, load_policy_text
from bot.render_blocks import render_message
from bot.serve import Server, build_server
from bot.services import ServiceChange
from handlers import build_registry
from tests.conftest import PREFIX
from tests.e2e.conftest import SlackDriver, all_text, e2e_settings, find_button
from tests.hosts.conftest import hosts_yaml
from tests.support.fake_slack import FakeSlack
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import SecondEngine

pytestmark = pytest.mark.docker
ADMIN = Actor(user="UADMIN", channel="CSWARM")
SECOND = "--context second"
SECOND_NS = 1_000_000_000

POLICY = f"""
roles:
  viewer: {{commands: [ps, logs, stats, service ls, service ps, service inspect, service logs, node ls]}}
  admin:  {{include: [viewer], commands: [service scale, service update, service rollback, service rm]}}
grants:
  - {{role: admin, users: [UADMIN]}}
  - {{role: viewer, users: ["*"]}}
images: ["{PREFIX}*"]
containers: {{names: ["{PREFIX}nothing-*"]}}
services:
  names: ["{PREFIX}*"]
  protect: ["{PREFIX}prot-*"]
limits: {{replicas: 4}}
"""


@pytest.fixture(scope="module")
def swarm(second_engine: SecondEngine) -> Iterator[dict[str, str]]:
    """A single-node swarm on the second engine, and three images: ``good`` (prints a line, then serves),
    ``good2`` (the same image under a second tag), ``bad`` (its command fails at once)."""
    client = second_engine.client()
    address = second_engine.inner_address
    client.swarm.init(advertise_addr=address, listen_addr=f"{address}:2377")
    images = {"good": f"{PREFIX}svc-web:v1", "good2": f"{PREFIX}svc-web:v2", "bad": f"{PREFIX}svc-bad:v1"}
    try:
        base = client.containers.create(TEST_IMAGE)
        try:
            cmd = 'CMD ["/bin/sh","-c","echo hello-from-task; exec /bin/httpd -f -p 80 -h /www"]'
            base.commit(*images["good"].split(":"), changes=[cmd])
            base.commit(*images["bad"].split(":"), changes=['CMD ["/bin/sh","-c","echo failing; exit 3"]'])
        finally:
            base.remove(force=True)
        client.images.get(images["good"]).tag(*images["good2"].split(":"))
        yield images
    finally:
        for service in client.services.list():
            if service.name.startswith(PREFIX):
                with contextlib.suppress(docker.errors.APIError):
                    service.remove()
        with contextlib.suppress(docker.errors.APIError):
            client.swarm.leave(force=True)
        for image in images.values():
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image, force=True)
        client.close()


@pytest.fixture
def second_client(second_engine: SecondEngine) -> Iterator[docker.DockerClient]:
    client = second_engine.client()
    yield client
    client.close()


@pytest.fixture
def policy() -> Policy:
    return load_policy_text(POLICY, source="swarm policy", known_commands=build_registry().names())


@pytest.fixture
def hosts(second_engine: SecondEngine) -> Iterator[HostSet]:
    hostset = HostSet(load_hosts_text(hosts_yaml(second_engine)), timeout=20)
    yield hostset
    hostset.close()


@pytest.fixture
def pipeline(hosts: HostSet, policy: Policy) -> Pipeline:
    return Pipeline(engine=hosts.engine("local"), hosts=hosts, policy=policy, registry=build_registry())


@pytest.fixture
def service(swarm: dict[str, str], second_client: docker.DockerClient, name: Any) -> Iterator[Any]:
    """``service(replicas=1, image="good", **kwargs)`` → a new service's name; removed after the test."""
    made: list[str] = []

    def create(*, replicas: int = 1, image: str = "good", base: str = "web", **kwargs: Any) -> str:
        service_name = name(base)
        second_client.services.create(
            swarm[image],
            name=service_name,
            mode=ServiceMode("replicated", replicas=replicas),
            update_config=UpdateConfig(parallelism=1, delay=0, monitor=2 * SECOND_NS, failure_action="pause"),
            rollback_config=RollbackConfig(parallelism=1, delay=0, monitor=2 * SECOND_NS),
            restart_policy=RestartPolicy(condition="on-failure", delay=SECOND_NS // 2),
            stop_grace_period=SECOND_NS,
            **kwargs,
        )
        made.append(service_name)
        return service_name

    yield create
    for service_name in made:
        with contextlib.suppress(docker.errors.APIError):
            second_client.services.get(service_name).remove()


def _ok(outcome: Outcome) -> Outcome:
    assert outcome.ok, (outcome.shown_text, outcome.error, render_text.render(outcome))
    return outcome


def _converge(second_client: docker.DockerClient, service_name: str, running: int, *, timeout: float = 60) -> None:
    """Wait (outside chatdock) until a service made by the test runs ``running`` tasks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = second_client.api.tasks(filters={"service": service_name, "desired-state": "running"})
        if sum(1 for t in tasks if t["Status"]["State"] == "running") == running:
            return
        time.sleep(0.5)
    raise AssertionError(f"{service_name} did not reach {running} running tasks")


def _image(second_client: docker.DockerClient, service_name: str) -> str:
    spec = second_client.services.get(service_name).attrs["Spec"]
    return str(spec["TaskTemplate"]["ContainerSpec"]["Image"]).split("@")[0]


def _version(second_client: docker.DockerClient, service_name: str) -> int:
    return int(second_client.services.get(service_name).attrs["Version"]["Index"])


# --------------------------------------------------------------------------------------------- reads


def test_ls_ps_inspect_logs_and_node_ls(pipeline: Pipeline, service: Any, second_client: docker.DockerClient) -> None:
    web = service(replicas=2, env=["API_TOKEN=s3cret-value", "MODE=demo"])
    hidden = service(base="prot")
    _converge(second_client, web, 2)

    listed = render_text.render(_ok(pipeline.handle(f"{SECOND} service ls", ADMIN)))
    assert web in listed and "2/2" in listed and "replicated" in listed
    assert hidden not in listed and "out of your scope not shown" in listed

    tasks = render_text.render(_ok(pipeline.handle(f"{SECOND} service ps {web}", ADMIN)))
    assert f"{web}.1" in tasks and f"{web}.2" in tasks and "Running" in tasks

    refused = pipeline.handle(f"{SECOND} service ps {hidden}", ADMIN)
    assert refused.error is not None and refused.error.rule == "services.protect"

    inspected = _ok(pipeline.handle(f"{SECOND} service inspect {web}", ADMIN))
    shown = render_text.render(inspected) + json.dumps(inspected.result.model_dump(mode="json"))  # type: ignore[union-attr]
    assert "s3cret-value" not in shown and "MODE=demo" in shown
    card = render_message(inspected)
    assert card.attachment is not None and "s3cret-value" not in card.attachment.content  # the whole document
    actions = {
        e["action_id"]: json.loads(e["value"]) for b in card.blocks if b["type"] == "actions" for e in b["elements"]
    }
    assert actions["chatdock:svc-logs"]["h"] == "second" and "chatdock:svc-scale" in actions
    assert "chatdock:svc-rollback" not in actions

    deadline = time.monotonic() + 20
    while True:  # the tasks print their line as they start
        logs = render_text.render(_ok(pipeline.handle(f"{SECOND} service logs --tail 10 {web}", ADMIN)))
        if logs.count("hello-from-task") >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert logs.count("hello-from-task") >= 2, logs

    nodes = render_text.render(_ok(pipeline.handle(f"{SECOND} node ls", ADMIN)))
    assert "Leader" in nodes and "Ready" in nodes

    # a task's containers are in scope because their service is: docker ps and logs on the swarm host
    containers = render_text.render(_ok(pipeline.handle(f"{SECOND} ps", ADMIN)))
    assert f"{web}.1." in containers and hidden not in containers
    stats = render_text.render(_ok(pipeline.handle(f"{SECOND} stats", ADMIN)))
    assert f"{web}.1." in stats and hidden not in stats
    task_container = next(c.name for c in second_client.containers.list() if c.name.startswith(f"{web}.1."))
    _ok(pipeline.handle(f"{SECOND} logs {task_container}", ADMIN))
    hidden_container = next(c.name for c in second_client.containers.list() if c.name.startswith(f"{hidden}.1."))
    assert pipeline.handle(f"{SECOND} logs {hidden_container}", ADMIN).error is not None

    # the first engine is no swarm manager: the engine's own words, no stack trace
    local = pipeline.handle("service ls", ADMIN)
    assert local.error is not None and "swarm" in local.error.message.lower()


# --------------------------------------------------------------------------------------------- scale


def test_scale_up_and_down_converges_in_one_message(
    pipeline: Pipeline, service: Any, second_client: docker.DockerClient
) -> None:
    web = service(replicas=1)
    _converge(second_client, web, 1)
    steps: list[Progress] = []

    up = _ok(pipeline.handle(f"{SECOND} service scale {web}=3", ADMIN, progress=steps.append))
    assert isinstance(up.result, ServiceChange)
    (item,) = up.result.items
    assert item.converged and item.running == 3 and item.desired == 3
    assert steps and steps[-1].done and steps[-1].layers_done == 3 and "3/3 tasks running" in steps[-1].detail
    assert "scale converged" in render_text.render(up)
    assert sum(1 for c in second_client.containers.list() if c.name.startswith(f"{web}.")) == 3

    message = render_message(up)
    values = [json.loads(e["value"]) for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert {"a": "scale", "v": item.id, "n": 2, "h": "second"} in values
    assert {"a": "scale", "v": item.id, "n": 4, "h": "second"} in values
    assert {"a": "logs", "v": item.id, "h": "second"} in values
    assert not any(v["a"] == "rollback" for v in values)  # nothing failed

    down = _ok(pipeline.handle(f"{SECOND} service scale {web}=1", ADMIN))
    assert isinstance(down.result, ServiceChange) and down.result.items[0].running == 1
    deadline = time.monotonic() + 20
    while sum(1 for c in second_client.containers.list() if c.name.startswith(f"{web}.")) != 1:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_denials_change_nothing(pipeline: Pipeline, service: Any, second_client: docker.DockerClient) -> None:
    web = service(replicas=1)
    before = _version(second_client, web)

    too_many = pipeline.handle(f"{SECOND} service scale {web}=5", ADMIN)
    assert too_many.error is not None and too_many.error.rule == "limits.replicas"
    replicas = pipeline.handle(f"{SECOND} service update --replicas 9 {web}", ADMIN)
    assert replicas.error is not None and replicas.error.rule == "limits.replicas"

    forbidden = pipeline.handle(f"{SECOND} service update --image evil/miner:1 {web}", ADMIN)
    assert forbidden.error is not None and forbidden.error.kind == "denied" and forbidden.error.rule == "images"
    assert "evil/miner:1" in forbidden.error.message

    viewer = pipeline.handle(f"{SECOND} service scale {web}=2", Actor(user="UVIEW", channel="CSWARM"))
    assert viewer.error is not None and viewer.error.rule == "default-deny"

    assert _version(second_client, web) == before and _image(second_client, web).endswith(":v1")


def test_rm_removes_only_services_in_scope(
    pipeline: Pipeline, service: Any, second_client: docker.DockerClient
) -> None:
    web = service()
    protected = service(base="prot")
    refused = pipeline.handle(f"{SECOND} service rm {web} {protected}", ADMIN)  # one out of scope: nothing goes
    assert refused.error is not None and refused.error.rule == "services.protect"
    assert {s.name for s in second_client.services.list()} >= {web, protected}
    removed = _ok(pipeline.handle(f"{SECOND} service rm {web}", ADMIN))
    assert f"{web}: removed" in render_text.render(removed)
    assert web not in {s.name for s in second_client.services.list()}


def test_update_of_a_service_with_a_host_bind_mount_is_refused(
    pipeline: Pipeline, service: Any, second_client: docker.DockerClient
) -> None:
    mounted = service(mounts=[Mount(target="/host-etc", source="/etc", type="bind", read_only=True)])
    socket = service(mounts=[Mount(target="/var/run/docker.sock", source="/var/run/docker.sock", type="bind")])
    before = {s: _version(second_client, s) for s in (mounted, socket)}
    for text in (
        f"service update --force {mounted}",
        f"service update --image {PREFIX}svc-web:v2 {socket}",
        f"service scale {mounted}=2",
    ):
        refused = pipeline.handle(f"{SECOND} {text}", ADMIN)
        assert refused.error is not None and refused.error.rule == "never:host-mounts", text
    assert {s: _version(second_client, s) for s in (mounted, socket)} == before


def test_dry_run_shows_the_update_and_changes_nothing(
    pipeline: Pipeline, service: Any, second_client: docker.DockerClient
) -> None:
    web = service()
    before = _version(second_client, web)
    shown = _ok(pipeline.handle(f"{SECOND} --dry-run service update --image {PREFIX}svc-web:v2 {web}", ADMIN))
    (call,) = shown.engine_request or []
    assert call["method"] == "POST" and call["path"].endswith("/update") and call["params"] == {"version": before}
    assert call["body"]["TaskTemplate"]["ContainerSpec"]["Image"] == f"{PREFIX}svc-web:v2"
    assert _version(second_client, web) == before


# --------------------------------------------------------------------------------------------- update / rollback


def test_update_converges_and_a_failing_update_pauses_then_rolls_back(
    pipeline: Pipeline, service: Any, second_client: docker.DockerClient
) -> None:
    web = service(replicas=2)
    _converge(second_client, web, 2)

    updated = _ok(pipeline.handle(f"{SECOND} service update --image {PREFIX}svc-web:v2 {web}", ADMIN))
    assert isinstance(updated.result, ServiceChange)
    assert updated.result.items[0].converged and updated.result.items[0].update_state == "completed"
    assert _image(second_client, web) == f"{PREFIX}svc-web:v2"

    steps: list[Progress] = []
    failed = pipeline.handle(f"{SECOND} service update --image {PREFIX}svc-bad:v1 {web}", ADMIN, progress=steps.append)
    assert not failed.ok and isinstance(failed.result, ServiceChange)
    (item,) = failed.result.items
    assert item.paused and item.update_state == "paused", item
    assert "paused" in render_text.render(failed) and steps and steps[-1].done
    values = [
        json.loads(e["value"]) for b in render_message(failed).blocks if b["type"] == "actions" for e in b["elements"]
    ]
    assert {"a": "rollback", "v": item.id, "h": "second"} in values

    rolled = _ok(pipeline.handle(f"{SECOND} service rollback {web}", ADMIN))
    assert isinstance(rolled.result, ServiceChange)
    assert rolled.result.items[0].converged and rolled.result.items[0].update_state == "rollback_completed"
    assert _image(second_client, web) == f"{PREFIX}svc-web:v2"


# --------------------------------------------------------------------------------------------- from Slack


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def slack(fake_slack: FakeSlack, pipeline: Pipeline) -> Iterator[SlackDriver]:
    server: Server = build_server(e2e_settings(fake_slack), pipeline=pipeline, host="127.0.0.1", port=0)
    server.start()
    driver = SlackDriver(server.url, fake_slack)
    yield driver
    driver.close()
    server.stop(drain=30)


def _message_saying(fake: FakeSlack, *needles: str, timeout: float = 90) -> dict[str, Any]:
    """The latest message (posted, edited or sent to a response_url) whose text holds every needle."""

    def find() -> dict[str, Any] | None:
        calls = [c.args for c in fake.calls_to("chat.update")] + [c.args for c in fake.calls_to("chat.postMessage")]
        posts = [post for url in list(fake.posts) for post in fake.posts_to(url)]
        for args in [*reversed(calls), *reversed(posts)]:
            blocks = args.get("blocks")
            message = {**args, "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks or []}
            if all(n in all_text(message.get("text")) + all_text(message["blocks"]) for n in needles):
                return message
        return None

    return fake.wait_for(find, timeout=timeout, what=f"a message saying {needles}")


def test_from_slack_the_rollout_is_one_message_and_rollback_is_a_button(
    slack: SlackDriver, fake_slack: FakeSlack, service: Any, second_client: docker.DockerClient
) -> None:
    web = service(replicas=1)
    _converge(second_client, web, 1)

    sent = slack.command(f"{SECOND} service update --image {PREFIX}svc-bad:v1 {web}", channel="CSWARM")
    assert sent.response.status_code == 200 and sent.elapsed < 3.0
    paused = _message_saying(fake_slack, web, "update paused", "⏪ Rollback")  # the result, edited in place
    assert f"task {web}.1" in all_text(paused["blocks"]) and "non-zero exit (3)" in all_text(paused["blocks"])
    progress = [c for c in fake_slack.calls_to("chat.postMessage") if web in all_text(c.args)]
    assert len(progress) == 1, "one message, edited in place"

    clicked = slack.click(paused, "svc-rollback", channel="CSWARM")
    assert clicked.response.status_code == 200
    rolled = _message_saying(fake_slack, web, "rollback converged", "<@UADMIN>")
    assert [c for c in fake_slack.calls_to("chat.postMessage") if "service rollback" in all_text(c.args)], (
        "the rollout shows in a live message"
    )
    assert "host second" in all_text(rolled)
    assert _image(second_client, web) == f"{PREFIX}svc-web:v1"

    # the click was a request by the clicker: someone without the grant is refused, and nothing changes
    before = _version(second_client, web)
    slack.click(rolled, "svc-scale", user="UVIEW", channel="CSWARM")
    _message_saying(fake_slack, "service scale", "UVIEW")
    # a forged value (more replicas than any button offers) is refused before the pipeline
    service_id = json.loads(find_button(rolled, "svc-scale")[1]["value"])["v"]
    forged = slack.reply(slack.click(rolled, "svc-scale", value=json.dumps({"a": "scale", "v": service_id, "n": -3})))
    assert "This button is not valid" in all_text(forged)
    assert _version(second_client, web) == before
