"""Where chatdock must behave as docker does, checked against the real engine (Engine 20.10, docker CLI 28).

Each test is one kind of fault: waits shorter than docker's, ``--since`` values docker accepts, limits applied
before the policy's scope, ``rm -f`` of what is not there, ``port``'s output, the engine's state-conflict
words, the name rule both ways, ``--rm`` that outlives the wait, the shell's exit status, ``-p 0:80``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from bot.engine import Engine
from bot.models import Actor, ExecOutcome, RunOutcome
from bot.pipeline import Outcome, Pipeline
from bot.policy import builtin_policy, load_policy_text
from bot.render_blocks import render_message
from bot.render_text import render
from bot.shell import exit_status
from handlers import build_registry
from tests.conftest import PREFIX, SESSION, TEST_LABEL, make_pipeline

ME = Actor(user=f"U{SESSION}", channel="shell")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def box(docker_client: docker.DockerClient, name: Callable[[str], str]) -> Iterator[Callable[[str], str]]:
    """``box("web")`` → a prefixed container name that is force-removed when the test ends."""
    made: list[str] = []

    def make(base: str = "c") -> str:
        made.append(name(base))
        return made[-1]

    yield make
    for each in made:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(each, force=True)


@pytest.fixture
def as_me(engine: Engine) -> Callable[[str], Outcome]:
    pipeline = make_pipeline(engine, builtin_policy(), run_timeout=20, exec_timeout=10)

    def run(text: str) -> Outcome:
        return pipeline.handle(text, ME)

    return run


def ok(outcome: Outcome) -> Outcome:
    assert outcome.ok, f"{outcome.shown_text!r} failed: {outcome.error or render(outcome)}"
    return outcome


def sleeper(client: docker.DockerClient, name: str, image: str, **kwargs: Any) -> str:
    """A running container whose PID 1 is ``sleep``: as PID 1 it ignores SIGTERM, so only a kill stops it."""
    created = client.api.create_container(image, ["sleep", "600"], name=name, labels={TEST_LABEL: SESSION}, **kwargs)
    client.api.start(created["Id"])
    return str(created["Id"])


def gone_within(client: docker.DockerClient, ref: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            client.api.inspect_container(ref)
        except docker.errors.NotFound:
            return True
        time.sleep(0.2)
    return False


# ------------------------------------------------------------------------------------------ 6. waits


def test_restart_and_stop_wait_for_the_containers_own_stop_timeout(
    docker_client: docker.DockerClient, box: Callable[[str], str], image: str
) -> None:
    """``--stop-timeout 15`` and no ``-t``: the engine waits 15 s before the kill, and so does chatdock, with an
    Engine timeout (4 s) far below it. docker-py's defaults would restart after 10 s (it sends ``t=10``) and
    give up on a stop after 4 + 10 s."""
    web = box("web")
    engine = Engine(timeout=4)
    pipeline = make_pipeline(engine, builtin_policy())
    try:
        created = ok(pipeline.handle(f"run -d --stop-timeout 15 --name {web} {image} sleep 600", ME)).result
        assert isinstance(created, RunOutcome)
        container_id = created.container.id
        assert docker_client.api.inspect_container(web)["Config"]["StopTimeout"] == 15
        before = docker_client.api.inspect_container(web)["State"]["StartedAt"]
        started = time.monotonic()
        restarted = ok(pipeline.handle(f"restart {web}", ME))
        took = time.monotonic() - started
        assert took >= 14.5, f"restarted after {took:.1f} s: the container's 15 s stop timeout was not waited"
        state = docker_client.api.inspect_container(web)["State"]
        assert state["Running"] and state["StartedAt"] != before
        assert restarted.result.items[0].container.state == "running"  # type: ignore[union-attr]

        # the Stop button sends `stop <full ID>` for the person who clicked
        started = time.monotonic()
        ok(pipeline.handle(f"stop {container_id}", ME, source="button", expect_states={container_id: "running"}))
        took = time.monotonic() - started
        assert took >= 14.5, f"stopped after {took:.1f} s"
        state = docker_client.api.inspect_container(web)["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 137
    finally:
        engine.close()


@pytest.mark.parametrize("own", [-1, 600])
def test_stop_caps_a_containers_own_endless_or_long_stop_timeout(
    docker_client: docker.DockerClient,
    name: Callable[[str], str],
    image: str,
    own: int,
    as_me: Callable[[str], Outcome],
) -> None:
    """A container made outside chatdock with ``--stop-timeout -1`` (wait forever) or 600: without ``-t`` chat
    sends ``t=300`` (MAX_STOP_TIMEOUT), as for ``-t``, so no stop holds a worker without end."""
    web = name("web")
    created = docker_client.api.create_container(
        image,
        ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & wait"],
        name=web,
        labels={TEST_LABEL: SESSION},
        stop_timeout=own,
    )
    try:
        docker_client.api.start(created["Id"])
        assert docker_client.api.inspect_container(web)["Config"]["StopTimeout"] == own
        for verb in ("stop", "restart"):
            planned = ok(as_me(f"{verb} --dry-run {web}")).engine_request
            assert planned is not None and planned[0]["params"] == {"t": 300}
        assert ok(as_me(f"stop --dry-run -t 5 {web}")).engine_request[0]["params"] == {"t": 5}  # type: ignore[index]
        started = time.monotonic()
        ok(as_me(f"stop {web}"))
        assert time.monotonic() - started < 20  # the TERM trap ends it at once
        state = docker_client.api.inspect_container(web)["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 0
    finally:
        docker_client.api.remove_container(created["Id"], force=True)


@pytest.mark.parametrize(
    ("value", "accepted"), [("0", True), ("300", True), ("301", False), ("-1", False), ("1.5", False), ("x", False)]
)
def test_run_stop_timeout_values(value: str, accepted: bool, as_me: Callable[[str], Outcome], image: str) -> None:
    outcome = as_me(f"run --dry-run -d --stop-timeout={value} {image}")
    if accepted:
        assert ok(outcome).engine_request is not None
        assert outcome.engine_request[0]["body"]["StopTimeout"] == int(value)
    else:
        assert outcome.error is not None and outcome.error.kind == "usage"
        assert outcome.error.message.startswith(f'invalid argument "{value}" for "--stop-timeout" flag')


def test_a_given_stop_time_is_sent_and_waited(
    docker_client: docker.DockerClient, box: Callable[[str], str], image: str
) -> None:
    web = box("web")
    sleeper(docker_client, web, image, stop_timeout=60)
    engine = Engine(timeout=4)
    try:
        started = time.monotonic()
        ok(make_pipeline(engine, builtin_policy()).handle(f"stop -t 6 {web}", ME))
        took = time.monotonic() - started
    finally:
        engine.close()
    assert 5.5 <= took < 30, f"stop -t 6 took {took:.1f} s"
    assert docker_client.api.inspect_container(web)["State"]["Status"] == "exited"


def test_exec_longer_than_the_engine_timeout_is_read_to_the_end(
    docker_client: docker.DockerClient, box: Callable[[str], str], image: str
) -> None:
    web = box("web")
    sleeper(docker_client, web, image)
    engine = Engine(timeout=4)
    try:
        pipeline = make_pipeline(engine, builtin_policy(), exec_timeout=20, run_timeout=20)
        done = ok(pipeline.handle(f"exec {web} sh -c 'sleep 7; echo done'", ME))
        ran = ok(pipeline.handle(f"run --rm --name {box('quiet')} {image} sh -c 'sleep 7; echo done'", ME))
    finally:
        engine.close()
    assert isinstance(done.result, ExecOutcome) and done.result.output == "done\n"
    assert isinstance(ran.result, RunOutcome) and ran.result.output == "done" and ran.result.exit_code == 0


# ------------------------------------------------------------------------------------------ 8. --since


@pytest.mark.parametrize("since", ["0", "1970-01-01T00:00:00Z", "1000000h", "1970-01-01"])
def test_logs_since_the_beginning_prints_every_line(
    since: str, as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    web = box("web")
    ok(as_me(f"run --name {web} {image} seq 1 3"))

    logs = ok(as_me(f"logs --since {since} {web}"))

    assert logs.result.text == "1\n2\n3"  # type: ignore[union-attr]
    zoned = "Z" in since or "h" in since or since == "0"
    assert ("read as UTC" in render(logs)) is not zoned


def test_a_zone_less_since_says_which_zone_it_used(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    web = box("web")
    ok(as_me(f"run --name {web} {image} echo hello"))

    future = ok(as_me(f"logs --since 2999-01-02T10:00 {web}"))

    assert future.result.text == ""  # type: ignore[union-attr]
    assert render(future).endswith("(--since 2999-01-02T10:00 has no time zone: read as UTC (2999-01-02 10:00:00 UTC))")


def test_audit_export_since_0_exports_everything(tmp_path: Path) -> None:
    env = {**os.environ, "CHATDOCK_DB": str(tmp_path / "audit.db"), "PYTHONPATH": str(REPO)}
    env.pop("CHATDOCK_POLICY", None)
    subprocess.run([sys.executable, "-m", "bot", "shell", "-c", "help"], env=env, check=True, timeout=60)

    everything = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "export", "--since", "0"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    zoneless = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "export", "--since", "2000-01-01"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
    )

    assert everything.returncode == 0, everything.stderr
    assert len(everything.stdout.splitlines()) == 1
    assert zoneless.returncode == 0 and len(zoneless.stdout.splitlines()) == 1
    assert "read as UTC (2000-01-01 00:00:00 UTC)" in zoneless.stderr


# ------------------------------------------------------------------------------------------ 9. scope, then limits


def test_ps_last_and_latest_count_only_what_the_caller_may_see(
    engine: Engine, docker_client: docker.DockerClient, box: Callable[[str], str], image: str
) -> None:
    """The three newest containers are out of scope: ``ps -n 3`` still lists the caller's three newest."""
    policy = load_policy_text(
        f'roles: {{viewer: {{commands: [ps]}}}}\ngrants: [{{role: viewer, users: ["*"]}}]\nimages: ["*"]\n'
        f'containers: {{names: ["{PREFIX}mine-*"]}}\n',
        source="test",
        known_commands=[*build_registry().names(), "history"],
    )
    pipeline = make_pipeline(engine, policy)
    mine = [box("mine") for _ in range(4)]
    for each in mine:  # created, not started: -n and -l list every state
        docker_client.api.create_container(image, name=each, labels={TEST_LABEL: SESSION})
        time.sleep(0.2)  # the engine lists newest first, by creation time
    for _ in range(3):
        docker_client.api.create_container(image, name=box("theirs"), labels={TEST_LABEL: SESSION})
    by_prefix = f"-f name={PREFIX}"

    last3 = ok(pipeline.handle(f"ps -n 3 {by_prefix}", ME)).result
    latest = ok(pipeline.handle(f"ps -l {by_prefix}", ME)).result
    quiet = ok(pipeline.handle(f"ps -q --last 2 {by_prefix}", ME)).result

    assert [c.name for c in last3.containers] == mine[:0:-1]  # type: ignore[union-attr]
    assert last3.hidden_out_of_scope == 3  # type: ignore[union-attr]
    assert [c.name for c in latest.containers] == [mine[-1]]  # type: ignore[union-attr]
    assert [c.name for c in quiet.containers] == [mine[3], mine[2]]  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------ 10. rm -f


def test_rm_force_of_a_missing_container_warns_and_succeeds(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    ghost, web = f"{PREFIX}ghost", box("web")
    ok(as_me(f"run -d --name {web} {image}"))

    alone = as_me(f"rm -f {ghost}")
    both = as_me(f"rm -f {web}, {ghost}")
    strict = as_me(f"rm {ghost}")

    # docker 28: "Error response from daemon: No such container: ghost" on stderr, exit status 0
    assert alone.ok and exit_status(alone) == 0
    assert render(alone) == f"Error response from daemon: No such container: {ghost}"
    assert both.ok and exit_status(both) == 0
    assert render(both).splitlines() == [web, f"Error response from daemon: No such container: {ghost}"]
    assert gone_within(docker_client, web, 1)
    assert not strict.ok and exit_status(strict) == 1
    # in Slack: a warning, not a failure
    alone_reply = json.dumps(render_message(alone).blocks, ensure_ascii=False)
    assert "Nothing to remove" in alone_reply and f"No such container: {ghost}" in alone_reply
    assert "Could not" not in alone_reply
    both_reply = json.dumps(render_message(both).blocks, ensure_ascii=False)
    assert "Removed 1 of 2" in both_reply and f"⚠️ *{ghost}*: No such container: {ghost}" in both_reply


def test_network_rm_force_of_a_missing_network_is_no_error(
    as_me: Callable[[str], Outcome], name: Callable[[str], str], docker_client: docker.DockerClient
) -> None:
    ghost, net = f"{PREFIX}ghostnet", name("net")
    ok(as_me(f"network create {net}"))

    both = as_me(f"network rm -f {net}, {ghost}")
    strict = as_me(f"network rm {ghost}")

    # docker 28: `network rm -f` of a missing network prints nothing and exits 0
    assert both.ok and exit_status(both) == 0
    assert render(both) == net
    assert not docker_client.api.networks(names=[net])
    assert not strict.ok and strict.error is not None and strict.error.message == f"No such network: {ghost}"


# ------------------------------------------------------------------------------------------ 11, 15b. ports


def test_host_port_0_lets_the_engine_pick_and_port_prints_like_docker(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = box("web")
    ok(as_me(f"run -d -p 0:80 -p published=0,target=81 --name {web} {image}"))

    data = docker_client.api.inspect_container(web)
    assert data["HostConfig"]["PortBindings"]["80/tcp"] == [{"HostIp": "", "HostPort": "0"}]
    assert data["HostConfig"]["PortBindings"]["81/tcp"] == [{"HostIp": "", "HostPort": "0"}]
    chosen = data["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    assert chosen not in ("", "0")

    expected = subprocess.run(["docker", "port", web, "80"], capture_output=True, text=True, check=False)
    shown = render(ok(as_me(f"port {web} 80")))
    if expected.returncode == 0:  # the docker CLI is installed here: compare with it byte for byte
        assert shown == expected.stdout.rstrip("\n")
    assert shown.splitlines()[0] == f"0.0.0.0:{chosen}"


def test_publish_errors_are_dockers_words(as_me: Callable[[str], Outcome], image: str) -> None:
    for spec, message in (
        ("published=8080", "no port specified: 8080:/tcp<empty>"),
        ("[::1]:80", "invalid IP address [:: address [::: missing ']' in address"),
        ("published=1500,target:444", "invalid publish opts format (should be name=value but got 'target:444')"),
    ):
        refused = as_me(f"run --rm -p {spec} {image} true")
        assert refused.error is not None and refused.error.message == message


# ------------------------------------------------------------------------------------------ 12. state conflicts


def test_exec_in_a_paused_container_says_so(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    web = box("web")
    ok(as_me(f"run -d --name {web} {image}"))
    docker_client.api.pause(web)
    try:
        refused = as_me(f"exec {web} true")
        detached = as_me(f"exec -d {web} true")
    finally:
        docker_client.api.unpause(web)

    for outcome in (refused, detached):
        assert outcome.error is not None
        assert outcome.error.message == f"Container {web} is paused, unpause the container before exec"


# ------------------------------------------------------------------------------------------ 13. names


def test_a_long_name_accepted_by_run_is_accepted_everywhere(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], name: Callable[[str], str], image: str
) -> None:
    long = box("long") + "-" + "x" * 150
    network = name("net") + "-" + "n" * 150
    try:
        ok(as_me(f"network create {network}"))
        ok(as_me(f"run -d --name {long} --net {network} --net-alias {'a' * 140} {image}"))
        for command in (f"logs {long}", f"port {long}", f"inspect {long}", f"stop -t 0 {long}", f"start {long}"):
            ok(as_me(command))
        ok(as_me(f"network inspect {network}"))
        ok(as_me(f"rm -f {long}"))
    finally:
        with contextlib.suppress(Exception):
            as_me(f"rm -f {long}")
        ok(as_me(f"network rm {network}"))


# ------------------------------------------------------------------------------------------ 14. --rm


def test_foreground_rm_is_removed_on_exit_after_the_shell_is_gone(
    docker_client: docker.DockerClient, box: Callable[[str], str], image: str, tmp_path: Path
) -> None:
    slow = box("slow")
    env = {
        **os.environ,
        "CHATDOCK_DB": str(tmp_path / "audit.db"),
        "CHATDOCK_RUN_TIMEOUT": "2",
        "PYTHONPATH": str(REPO),
    }
    env.pop("CHATDOCK_POLICY", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "shell", "-c", f"run --rm --name {slow} {image} sh -c 'echo begun; sleep 6'"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert "begun" in done.stdout
    assert "will be removed when it exits" in done.stdout
    assert done.returncode == 1  # still running: its exit code is not known
    assert docker_client.api.inspect_container(slow)["State"]["Running"]
    assert gone_within(docker_client, slow, 20), "the --rm container outlived its exit"


def test_foreground_rm_keeps_its_output_and_exit_code(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], docker_client: docker.DockerClient, image: str
) -> None:
    quick = box("quick")

    outcome = ok(as_me(f"run --rm --name {quick} {image} sh -c 'echo out; echo err >&2; exit 3'"))

    result = outcome.result
    assert isinstance(result, RunOutcome)
    assert result.exit_code == 3 and result.removed
    assert sorted(result.output.splitlines()) == ["err", "out"]
    assert gone_within(docker_client, quick, 0.5)


# ------------------------------------------------------------------------------------------ 15. exit status


def test_exit_status_follows_docker(
    engine: Engine, as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    web = box("web")
    ok(as_me(f"run -d --name {web} {image}"))
    cases = {
        f"run --rm {image} sh -c 'exit 3'": 3,
        f"exec {web} sh -c 'exit 3'": 3,
        f"run --rm {image} true": 0,
        f"run --rm {image} no-such-command": 127,
        f"run --rm {image} /etc/passwd": 126,
        f"exec {web} no-such-command": 126,
        "run --rm local/no-such-image:test true": 125,
        f"run --rm --privileged {image} true": 125,
        f"run --bogus {image}": 125,
        f"exec {PREFIX}ghost true": 1,
        "ps --bogus": 1,
        "ps": 0,
    }
    pipeline: Pipeline = make_pipeline(engine, builtin_policy(), run_timeout=20)
    for text, status in cases.items():
        outcome = pipeline.handle(text, ME)
        named = None if outcome.command else pipeline.command_name(text)
        assert exit_status(outcome, named) == status, (text, outcome.error)


def test_shell_c_exits_with_the_containers_code(tmp_path: Path, image: str, docker_client: docker.DockerClient) -> None:
    env = {**os.environ, "CHATDOCK_DB": str(tmp_path / "audit.db"), "PYTHONPATH": str(REPO)}
    env.pop("CHATDOCK_POLICY", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "shell", "-c", f"run --rm {image} sh -c 'exit 3'"],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stdout + done.stderr
