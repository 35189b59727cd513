"""Choosing a host in docker's syntax, from the shell's pipeline, against two real engines.

The notes' walkthrough runs on the second engine with ``--context``, once over each transport (unix socket,
verified TLS, SSH); the first engine never sees any of it. A hung host leaves replies about the others unchanged
and fast; ``context ls`` follows a stopped engine and its return.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bot import render_text
from bot.audit import open_audit
from bot.engine import Engine
from bot.hosts import HostSet, load_hosts_text
from bot.models import Actor
from bot.pipeline import Outcome, Pipeline
from bot.policy import builtin_policy
from bot.render_blocks import parse_button, render_message
from handlers import build_registry
from tests.hosts.conftest import hosts_yaml
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import HungEngine, SecondEngine, SshFront

pytestmark = pytest.mark.docker
ME = Actor(user="local", channel="shell")


def _pipeline(hosts: HostSet, engine: Engine, **kwargs: Any) -> Pipeline:
    return Pipeline(
        engine=engine,
        hosts=hosts,
        policy=builtin_policy(),
        registry=build_registry(),
        run_timeout=20,
        exec_timeout=15,
        **kwargs,
    )


@pytest.fixture
def hosts(second_engine: SecondEngine, second_ssh: SshFront) -> Iterator[HostSet]:
    config = load_hosts_text(hosts_yaml(second_engine, second_ssh, extra="channels: {CSTAGING: second}\n"))
    hostset = HostSet(config, timeout=20)
    yield hostset
    hostset.close()


@pytest.fixture
def pipeline(hosts: HostSet) -> Pipeline:
    return _pipeline(hosts, hosts.engine("local"))


@pytest.fixture
def second_client(second_engine: SecondEngine) -> Iterator[docker.DockerClient]:
    client = second_engine.client()
    yield client
    client.close()


def _ok(outcome: Outcome) -> Outcome:
    assert outcome.ok, (outcome.shown_text, outcome.error, render_text.render(outcome))
    return outcome


def _remove(client: docker.DockerClient, *names: str) -> None:
    for ref in names:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(ref).remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.networks.get(ref).remove()


def _fetch_in_namespace(engine: SecondEngine, port: int) -> str:
    """What http://127.0.0.1:PORT answers inside the second engine's namespace (where its ports are published)."""
    code = (
        f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=5).read().decode())"
    )
    done = subprocess.run(
        ["nsenter", f"--net=/run/netns/{engine.netns}", "python3", "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.mark.parametrize("context", ["second", "secure", "remote"])
def test_the_walkthrough_on_the_second_host(
    context: str,
    pipeline: Pipeline,
    second_engine: SecondEngine,
    second_client: docker.DockerClient,
    docker_client: docker.DockerClient,
    name: Any,
) -> None:
    web, es, client, net = name("web"), name("es"), name("client"), name("app")
    port = {"second": 9090, "secure": 9091, "remote": 9092}[context]

    def say(text: str) -> Outcome:
        outcome = pipeline.handle(f"/docker --context {context} {text}", ME)
        assert outcome.host == context
        return outcome

    try:
        ran = _ok(say(f"run -d -p {port}:80 --name {web} {TEST_IMAGE}"))
        assert render_text.render(ran).startswith(f"host {context}\n")
        assert second_client.containers.get(web).status == "running"
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(web)  # the first engine never saw it
        assert "chatdock test" in _fetch_in_namespace(second_engine, port)

        assert web in render_text.render(_ok(say("ps")))
        assert f"80/tcp -> 0.0.0.0:{port}" in render_text.render(_ok(say(f"port {web}")))
        assert "httpd" in render_text.render(_ok(say(f"top {web}")))
        assert web in render_text.render(_ok(say(f"stats {web}")))
        _ok(say(f"inspect {web}"))
        assert "index.html" in render_text.render(_ok(say(f"exec {web} ls /www")))
        _ok(say(f"stop {web}"))
        assert second_client.containers.get(web).status == "exited"
        _ok(say(f"start {web}"))
        assert second_client.containers.get(web).status == "running"

        _ok(say(f"network create {net}"))
        _ok(say(f"run -d --net {net} --net-alias search --name {es} {TEST_IMAGE}"))
        _ok(say(f"run -d --name {client} {TEST_IMAGE} sleep 3600"))
        _ok(say(f"network connect {net} {client}"))
        assert "Address" in render_text.render(_ok(say(f"exec {client} nslookup search")))
        assert "chatdock test" in render_text.render(_ok(say(f"exec {client} wget -qO- http://{es}/")))
        assert client in render_text.render(_ok(say(f"network inspect {net}")))
        _ok(say(f"rm -f {web}, {es}, {client}"))
        _ok(say(f"network rm {net}"))
        assert not second_client.containers.list(all=True, filters={"name": web})
    finally:
        _remove(second_client, web, es, client, net)


def test_spellings_of_the_host_option(pipeline: Pipeline, second_client: docker.DockerClient, name: Any) -> None:
    box = name("box")
    second_client.containers.create(TEST_IMAGE, name=box, labels={"chatdock.managed": "true"})
    try:
        for spelling in ("--context second", "-c second", "--context=second", "-H second", "--host second"):
            outcome = _ok(pipeline.handle(f"/docker {spelling} ps -a", ME))
            assert box in render_text.render(outcome), spelling
            assert outcome.host == "second"
        # /net puts the option after the family word, as docker network's global options may go
        assert _ok(pipeline.handle("/net --context second ls", ME)).host == "second"
        local = _ok(pipeline.handle("ps -a", ME))
        assert local.host == "local" and box not in render_text.render(local)
    finally:
        _remove(second_client, box)


def test_addresses_typed_in_chat_are_refused(pipeline: Pipeline) -> None:
    for text in ("-H tcp://10.0.0.9:2376 ps", "--host unix:///var/run/docker.sock ps", "-H=ssh://root@x ps"):
        outcome = pipeline.handle(f"/docker {text}", ME)
        assert outcome.error is not None and outcome.error.kind == "denied", text
        assert outcome.error.rule == "never:host-address"
        assert "never an address typed in chat" in outcome.error.message
    unknown = pipeline.handle("/docker --context nope ps", ME)
    assert unknown.error is not None and unknown.error.kind == "usage"
    assert unknown.error.message == 'context "nope" does not exist: the hosts are local, second, secure, remote'
    missing = pipeline.handle("/docker --context", ME)
    assert missing.error is not None and "needs a host name" in missing.error.message


def test_a_channels_default_host(pipeline: Pipeline, second_client: docker.DockerClient, name: Any) -> None:
    box = name("box")
    second_client.containers.create(TEST_IMAGE, name=box, labels={"chatdock.managed": "true"})
    try:
        staging = Actor(user="local", channel="CSTAGING")
        outcome = _ok(pipeline.handle("ps -a", staging))
        assert outcome.host == "second" and box in render_text.render(outcome)
        # naming a host wins over the channel's default
        assert _ok(pipeline.handle("--context local ps -a", staging)).host == "local"
    finally:
        _remove(second_client, box)


def test_dry_run_names_the_host(pipeline: Pipeline, second_client: docker.DockerClient, name: Any) -> None:
    web = name("web")
    outcome = _ok(pipeline.handle(f"--context secure run --dry-run -d --name {web} {TEST_IMAGE}", ME))
    assert outcome.result is not None
    assert "on host secure: " in outcome.result.summary  # type: ignore[attr-defined]
    assert not second_client.containers.list(all=True, filters={"name": web})
    other_order = _ok(pipeline.handle(f"--dry-run --context secure run -d --name {web} {TEST_IMAGE}", ME))
    assert other_order.host == "secure" and other_order.shown_text.startswith("--context secure run")


def test_buttons_carry_the_host_and_a_click_acts_there(
    pipeline: Pipeline, second_client: docker.DockerClient, name: Any
) -> None:
    web = name("web")
    try:
        ran = _ok(pipeline.handle(f"--context second run -d --name {web} {TEST_IMAGE}", ME))
        message = render_message(ran)
        values = [
            element["value"]
            for block in message.blocks
            if block.get("type") == "actions"
            for element in block["elements"]
        ]
        assert values
        _action, container_id, state, host = parse_button(values[0])
        assert host == "second" and state == "running"
        assert "host second" in str(message.blocks[-1])  # the context line names it
        # the slack front door turns the click into this text (bot.slack_app): the message's host, not the default
        stopped = _ok(
            pipeline.handle(
                f"--context {host} stop {container_id}", ME, source="button", expect_states={container_id: state}
            )
        )
        assert stopped.host == "second"
        assert second_client.containers.get(web).status == "exited"
    finally:
        _remove(second_client, web)


def test_old_buttons_without_a_host_still_read() -> None:
    value = '{"a":"stop","c":"' + "a" * 64 + '","s":"running"}'
    assert parse_button(value) == ("stop", "a" * 64, "running", None)
    with pytest.raises(ValueError, match="host"):
        parse_button('{"a":"stop","c":"' + "a" * 64 + '","s":"running","h":"tcp://x"}')


def test_the_audit_log_names_the_host_and_history_filters(hosts: HostSet, tmp_path: Path, name: Any) -> None:
    store = open_audit(str(tmp_path / "audit.db"))
    try:
        pipeline = _pipeline(hosts, hosts.engine("local"), auditor=store, history=store.recent)
        _ok(pipeline.handle("--context second ps", ME))
        _ok(pipeline.handle("ps", ME))
        rows = store.recent(channel="shell", limit=10)
        assert [row["host"] for row in rows] == ["local", "second"]
        shown = render_text.render(_ok(pipeline.handle("history --context second", ME)))
        assert "--context second ps" not in shown or "ps" in shown
        only = store.recent(channel="shell", limit=10, host="second")
        assert len(only) == 1 and only[0]["host"] == "second"
        bad = pipeline.handle("history --context nope", ME)
        assert bad.error is not None and 'context "nope" does not exist' in bad.error.message
    finally:
        store.close()


def test_the_shell_reads_chatdock_hosts(second_engine: SecondEngine, tmp_path: Path) -> None:
    hosts_file = tmp_path / "hosts.yml"
    hosts_file.write_text(hosts_yaml(second_engine))
    env = {**os.environ, "CHATDOCK_HOSTS": str(hosts_file), "CHATDOCK_DB": str(tmp_path / "audit.db")}
    done = subprocess.run(
        ["python3", "-m", "bot", "shell", "--json", "-c", "--context secure ps -a"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["ok"] is True and shown["host"] == "secure"
    hosts_file.write_text("hosts:\n  a: {url: 'http://x'}\n")
    done = subprocess.run(
        ["python3", "-m", "bot", "shell", "-c", "ps"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 2  # a setting that stops start-up: 2, as every other one, in shell and serve
    assert done.stderr.strip() == (
        f"chatdock: CHATDOCK_HOSTS {hosts_file}: line 2: hosts.a.url: 'http://x': the URL must start with unix://,"
        " tcp:// or ssh://"
    )


def test_zero_configuration_says_nothing_about_hosts(engine: Engine) -> None:
    pipeline = Pipeline(engine=engine, policy=builtin_policy(), registry=build_registry())
    outcome = _ok(pipeline.handle("ps", ME))
    assert outcome.host is None
    assert not render_text.render(outcome).startswith("host ")
    assert "host" not in outcome.public()
    assert _ok(pipeline.handle("--context default ps", ME)).host is None


def test_a_hung_host_leaves_the_others_unchanged_and_fast(engine: Engine, hung_engine: HungEngine) -> None:
    config = load_hosts_text(
        "hosts:\n  local: {url: 'unix:///var/run/docker.sock', default: true}\n"
        f"  hung: {{url: '{hung_engine.url}', timeout: 4, workers: 2}}\n"
    )
    hosts = HostSet(config, timeout=20)
    pipeline = _pipeline(hosts, hosts.engine("local"))
    try:
        baseline = _ok(pipeline.handle("ps -a", ME))
        hung: list[Outcome] = []
        stuck = [
            threading.Thread(target=lambda: hung.append(pipeline.handle("--context hung ps", ME))) for _ in range(4)
        ]
        for thread in stuck:
            thread.start()
        time.sleep(0.3)
        for _ in range(5):
            started = time.monotonic()
            healthy = _ok(pipeline.handle("ps -a", ME))
            assert time.monotonic() - started < 2.0
            assert healthy.host == "local"
            assert type(healthy.result) is type(baseline.result)
        for thread in stuck:
            thread.join(30)
        assert len(hung) == 4 and not any(o.ok for o in hung)
        messages = sorted(o.error.message for o in hung if o.error is not None)
        # two waited for the engine and gave up; two more were refused at once: the host's slots were taken
        assert sum("did not answer" in m for m in messages) == 2, messages
        assert sum("host hung is not answering: 2 requests" in m for m in messages) == 2, messages
        assert all(o.host == "hung" for o in hung)
    finally:
        hosts.close()


def test_context_ls_follows_a_stopped_engine_and_its_return(pipeline: Pipeline, second_engine: SecondEngine) -> None:
    listed = render_text.render(_ok(pipeline.handle("context ls", ME)))
    lines = {line.split()[0]: line for line in listed.splitlines()[2:]}
    assert set(lines) == {"local", "second", "secure", "remote"}
    assert "reachable" in lines["second"] and "20.10" in lines["second"]
    assert "tcp+tls://" in lines["secure"] and "ssh://127.0.0.1" in lines["remote"]
    assert "root@" not in listed and ".pem" not in listed and "client_key" not in listed
    second_engine.stop()
    try:
        down = render_text.render(_ok(pipeline.handle("context ls", ME)))
        rows = {line.split()[0]: line for line in down.splitlines()[2:]}
        for name in ("second", "secure", "remote"):
            assert "unreachable for " in rows[name], rows[name]
        assert " reachable" in rows["local"]
        inspected = render_text.render(_ok(pipeline.handle("context inspect second", ME)))
        assert '"Reachable": false' in inspected and '"LastError": "host second' in inspected
        failed = pipeline.handle("--context second ps", ME)
        assert failed.error is not None and failed.host == "second"
    finally:
        second_engine.start()
    back = render_text.render(_ok(pipeline.handle("context ls", ME)))
    rows = {line.split()[0]: line for line in back.splitlines()[2:]}
    for name in ("second", "secure", "remote"):
        assert "unreachable" not in rows[name] and "reachable" in rows[name], rows[name]
    assert _ok(pipeline.handle("--context remote ps", ME)).host == "remote"


def test_ps_across_every_host(
    second_engine: SecondEngine, docker_client: docker.DockerClient, hung_engine: HungEngine, name: Any
) -> None:
    config = load_hosts_text(
        hosts_yaml(second_engine, extra="") + f"  hung: {{url: '{hung_engine.url}', timeout: 3}}\n"
    )
    hosts = HostSet(config, timeout=20)
    pipeline = _pipeline(hosts, hosts.engine("local"))
    here, there = name("here"), name("there")
    second = second_engine.client()
    try:
        docker_client.containers.create(TEST_IMAGE, name=here, labels={"chatdock.managed": "true"})
        second.containers.create(TEST_IMAGE, name=there, labels={"chatdock.managed": "true"})
        started = time.monotonic()
        outcome = _ok(pipeline.handle("--context '*' ps -a", ME))
        assert time.monotonic() - started < 6
        assert outcome.host == "*"
        text = render_text.render(outcome)
        assert text.startswith("every host\nHOST ")
        rows = {line.split()[-1]: line.split()[0] for line in text.splitlines()[2:] if line.startswith(("local", "se"))}
        assert rows[here] == "local"
        assert rows[there] in ("second", "secure")  # the same engine, reached two ways: listed under each
        assert "host hung: " in text and "did not answer" in text
        buttons = [
            parse_button(element["value"])
            for block in render_message(outcome).blocks
            if block.get("type") == "actions"
            for element in block["elements"]
        ]
        assert buttons
        listed = outcome.result.containers  # type: ignore[union-attr]
        for _action, container_id, _state, host in buttons:  # each button acts on its own row's host
            assert host in {view.host for view in listed if view.id == container_id}
        refused = pipeline.handle("--context '*' stop x", ME)
        assert refused.error is not None and "`stop` needs one host" in refused.error.message
    finally:
        _remove(docker_client, here)
        _remove(second, there)
        second.close()
        hosts.close()
