"""Swarm services without an engine: the spec refusals and scope in the policy, where a rollout stands, and the
service buttons' codec (a forged click is refused)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from bot.models import ContainerFacts, Progress
from bot.policy import check_engine_calls, check_service_spec, container_in_scope, load_policy_text, service_in_scope
from bot.render_services import parse_service_button, service_button_value, service_click_text
from bot.services import assess
from bot.shell import ProgressDisplay

POLICY = load_policy_text(
    """
images: ["web/*"]
services: {names: ["web-*"], labels: {team: web}, protect: ["web-db"]}
limits: {replicas: 5}
"""
)
SERVICE_ID = "x" * 25


def _spec(**container: Any) -> dict[str, Any]:
    return {
        "Name": "web-api",
        "TaskTemplate": {"ContainerSpec": {"Image": "web/api:1", **container}},
        "Mode": {"Replicated": {"Replicas": 2}},
    }


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        (_spec(Mounts=[{"Type": "bind", "Source": "/etc", "Target": "/x"}]), "never:host-mounts"),
        (_spec(Mounts=[{"Type": "bind", "Source": "/var/run/docker.sock", "Target": "/s"}]), "never:host-mounts"),
        (
            _spec(
                Mounts=[
                    {"Type": "volume", "Target": "/x", "VolumeOptions": {"DriverConfig": {"Options": {"o": "bind"}}}}
                ]
            ),
            "never:host-mounts",
        ),
        (_spec(CapabilityAdd=["CAP_SYS_ADMIN"]), "never:cap-add"),
        (_spec(Privileges={"SELinuxContext": {"Disable": True}}), "never:security-opt"),
        (_spec(Sysctls={"net.ipv4.ip_forward": "1"}), "never:host-tuning"),
        (
            {**_spec(), "TaskTemplate": {**_spec()["TaskTemplate"], "Networks": [{"Target": "host"}]}},
            "never:network-host",
        ),
        ({**_spec(), "Mode": {"Replicated": {"Replicas": 6}}}, "limits.replicas"),
    ],
)
def test_spec_refusals_wherever_they_stand(spec: dict[str, Any], rule: str) -> None:
    refused = check_service_spec(POLICY, spec)
    assert refused is not None and refused.rule == rule
    via_calls = check_engine_calls(POLICY, [("POST", f"/services/{SERVICE_ID}/update", spec, {"version": 3})])
    assert via_calls is not None and via_calls.rule == rule


def test_a_plain_spec_passes_and_the_host_network_is_known_by_id() -> None:
    assert check_service_spec(POLICY, _spec(Mounts=[{"Type": "volume", "Source": "data", "Target": "/d"}])) is None
    assert check_service_spec(POLICY, {**_spec(), "Mode": {"Replicated": {"Replicas": 5}}}) is None
    by_id = {**_spec(), "TaskTemplate": {**_spec()["TaskTemplate"], "Networks": [{"Target": "abc123"}]}}
    assert check_service_spec(POLICY, by_id) is None
    refused = check_service_spec(POLICY, by_id, host_networks=("host", "abc123"))
    assert refused is not None and refused.rule == "never:network-host"


def test_service_scope_and_task_containers() -> None:
    assert service_in_scope(POLICY, "web-api", {}).rule == "services.names"
    assert service_in_scope(POLICY, "billing", {"team": "web"}).rule == "services.labels"
    assert service_in_scope(POLICY, "billing", {"chatdock.managed": "true"}).allowed
    assert service_in_scope(POLICY, "web-db", {"team": "web"}).rule == "services.protect"
    assert not service_in_scope(POLICY, "billing", {}).allowed
    task = ContainerFacts(id="a" * 64, name="web-api.1.abc", labels={"com.docker.swarm.service.name": "web-api"})
    assert container_in_scope(POLICY, task).allowed
    db = ContainerFacts(id="b" * 64, name="web-db.1.abc", labels={"com.docker.swarm.service.name": "web-db"})
    assert not container_in_scope(POLICY, db).allowed
    empty = load_policy_text("images: []")
    assert not service_in_scope(empty, "web-api", {}).allowed  # default deny


def _task(state: str, image: str, *, desired: str = "running", stamp: str = "2026-01-01T10:00:05Z") -> dict[str, Any]:
    return {
        "ID": "t" * 25,
        "Slot": 1,
        "DesiredState": desired,
        "Spec": {"ContainerSpec": {"Image": image}},
        "Status": {
            "State": state,
            "Timestamp": stamp,
            **({"Err": "task: non-zero exit (3)"} if state == "failed" else {}),
        },
    }


def _service(image: str, replicas: int, update: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ID": SERVICE_ID,
        "Spec": {
            "Name": "web",
            "TaskTemplate": {"ContainerSpec": {"Image": image}},
            "Mode": {"Replicated": {"Replicas": replicas}},
        },
    }
    if update:
        data["UpdateStatus"] = update
    return data


def test_assess_a_rollout() -> None:
    since = "2026-01-01T10:00:00"
    old_done = {"State": "completed", "StartedAt": "2026-01-01T09:00:00Z"}
    # an earlier rollout's "completed" says nothing: tasks of the old spec still run
    stale = assess("web", _service("web:2", 1, old_done), [_task("running", "web:1")], since=since)
    assert not stale.converged and stale.update_state == ""
    done = assess("web", _service("web:2", 1, old_done), [_task("running", "web:2")], since=since)
    assert done.converged and done.line() == "1/1 tasks running"
    paused = {"State": "paused", "StartedAt": "2026-01-01T10:00:01Z", "Message": "update paused due to failure"}
    failing = [_task("running", "web:1"), _task("failed", "web:3", desired="shutdown")]
    state = assess("web", _service("web:3", 1, paused), failing, since=since)
    assert state.paused and not state.converged
    assert (
        "update paused: update paused due to failure" in state.line()
        and "task web.1: task: non-zero exit (3)" in state.line()
    )
    short = assess("web", _service("web:1", 3), [_task("running", "web:1")], since=since)
    assert not short.converged and short.line() == "1/3 tasks running"


def test_service_buttons_round_trip_and_forgeries_are_refused() -> None:
    value = service_button_value("scale", SERVICE_ID, replicas=3, host="swarm")
    assert parse_service_button(value) == ("scale", SERVICE_ID, 3, "swarm")
    action = {"action_id": "chatdock:svc-scale", "value": value}
    assert service_click_text(action) == f"--context swarm service scale {SERVICE_ID}=3"
    rollback = {"action_id": "chatdock:svc-rollback", "value": service_button_value("rollback", SERVICE_ID)}
    assert service_click_text(rollback) == f"service rollback {SERVICE_ID}"
    forged = [
        {"a": "scale", "v": SERVICE_ID},  # no replicas
        {"a": "logs", "v": SERVICE_ID, "n": 2},
        {"a": "scale", "v": SERVICE_ID, "n": -1},
        {"a": "scale", "v": SERVICE_ID, "n": True},
        {"a": "rm", "v": SERVICE_ID},
        {"a": "logs", "v": "web; rm -rf /"},
        {"a": "logs", "v": SERVICE_ID, "h": "tcp://evil:2375"},
        {"a": "logs", "v": SERVICE_ID, "x": 1},
    ]
    for data in forged:
        with pytest.raises(ValueError):
            parse_service_button(json.dumps(data))
    with pytest.raises(ValueError):  # the action_id must match the value
        service_click_text({"action_id": "chatdock:svc-logs", "value": value})


def test_the_shell_shows_a_rollout_as_progress_lines() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, every=0)
    step = Progress(
        action="service scale", subject="web", layers_done=2, layers_total=3, detail="web: 2/3 tasks running"
    )
    display.show(step)
    display.show(step.model_copy(update={"layers_done": 3, "detail": "web: 3/3 tasks running", "done": True}))
    assert stream.getvalue().splitlines() == [
        "service scale web: web: 2/3 tasks running",
        "service scale web: web: 3/3 tasks running",
    ]


def test_a_host_may_have_its_own_service_scope() -> None:
    policy = load_policy_text('services: {names: ["web-*"]}\nhosts: {prod: {services: {names: ["api-*"]}}}')
    assert service_in_scope(policy, "web-1", {}).allowed
    assert not service_in_scope(policy.for_host("prod"), "web-1", {}).allowed
    assert service_in_scope(policy.for_host("prod"), "api-1", {}).allowed
