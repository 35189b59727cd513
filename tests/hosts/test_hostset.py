"""One Engine per host, over unix, verified TLS and SSH (paramiko), against two real engines; reachability."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from bot.errors import EngineUnavailable
from bot.hosts import Host, HostsConfig, HostSet, TlsSpec, load_hosts_text
from tests.hosts.conftest import hosts_yaml
from tests.support.second_engine import HungEngine, SecondEngine, SshFront


@pytest.fixture
def hostset(second_engine: SecondEngine, second_ssh: SshFront) -> Iterator[HostSet]:
    hosts = HostSet(load_hosts_text(hosts_yaml(second_engine, second_ssh)), timeout=10)
    yield hosts
    hosts.close()


def test_every_transport_reaches_the_second_engine(hostset: HostSet, second_engine: SecondEngine) -> None:
    client = second_engine.client()
    try:
        root = client.info()["DockerRootDir"]
    finally:
        client.close()
    for name in ("second", "secure", "remote"):
        engine = hostset.engine(name)
        assert engine.read(lambda e=engine: e.api.info())["DockerRootDir"] == root, name
    local = hostset.engine("local")
    assert local.read(local.api.info)["DockerRootDir"] != root


def test_ssh_keeps_one_connection(hostset: HostSet) -> None:
    engine = hostset.engine("remote")
    for _ in range(5):
        engine.read(engine.api.ping)
    adapter = engine.api._custom_adapter
    transport = adapter.ssh_client.get_transport()
    assert transport is not None and transport.is_active()
    for _ in range(5):
        engine.read(lambda: engine.api.containers(all=True))
    assert adapter.ssh_client.get_transport() is transport  # the same SSH connection, channels on it


def test_tls_refuses_an_engine_it_cannot_verify(second_engine: SecondEngine, tmp_path) -> None:
    # trusts only the system CAs: the engine's throwaway CA is not among them
    tls = second_engine.client_tls
    assert tls is not None
    host = Host(
        name="unverified",
        url=second_engine.tcp_url,
        tls=TlsSpec(ca="/etc/ssl/certs/ca-certificates.crt", cert=tls.cert, key=tls.key),
    )
    hosts = HostSet(HostsConfig(hosts=(host,), default="unverified", channels={}), timeout=5)
    try:
        health = hosts.probe("unverified")
        assert health.reachable is False
        assert "host unverified" in (health.error or "")
    finally:
        hosts.close()


def test_probe_reports_version_counts_and_round_trip(hostset: HostSet) -> None:
    health = hostset.probe_all(wait=10)
    for name in ("local", "second", "secure", "remote"):
        assert health[name].reachable is True, (name, health[name])
        assert health[name].version and health[name].version.startswith("20.10")
        assert health[name].total is not None and health[name].running is not None
        assert health[name].rtt_ms is not None and health[name].rtt_ms >= 0
        assert health[name].error is None


def test_a_hung_host_is_bounded_and_does_not_hold_others(hung_engine: HungEngine) -> None:
    config = load_hosts_text(
        f"hosts:\n  local: {{url: 'unix:///var/run/docker.sock'}}\n  hung: {{url: '{hung_engine.url}', timeout: 3}}\n"
    )
    hosts = HostSet(config, timeout=10)
    try:
        started = time.monotonic()
        health = hosts.probe_all(wait=1.5)
        assert time.monotonic() - started < 2.5
        assert health["local"].reachable is True
        assert health["hung"].reachable is False
        assert health["hung"].error == "did not answer within 1.5 s"
        first_error = health["hung"].error_since
        health = hosts.probe_all(wait=1.5)
        assert health["hung"].error_since == first_error  # "since" is when it went away, not the last probe
    finally:
        hosts.close()


def test_a_hosts_request_slots_run_out_instead_of_the_workers(hung_engine: HungEngine) -> None:
    config = load_hosts_text(f"hosts:\n  hung: {{url: '{hung_engine.url}', workers: 2}}\n")
    hosts = HostSet(config, timeout=10)
    release = threading.Event()

    def hold() -> None:
        with hosts.slot("hung"):
            release.wait(10)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for thread in holders:
        thread.start()
    time.sleep(0.2)
    try:
        busy = "host hung is not answering: 2 requests to it are still waiting"
        with pytest.raises(EngineUnavailable, match=busy), hosts.slot("hung"):
            pass
    finally:
        release.set()
        for thread in holders:
            thread.join()
        hosts.close()
    with hosts.slot("hung"):
        pass  # free again


def test_a_stopped_engine_is_unreachable_and_recovers(hostset: HostSet, second_engine: SecondEngine) -> None:
    assert hostset.probe("second", wait=10).reachable is True
    second_engine.stop()
    try:
        down = hostset.probe("second", wait=10)
        assert down.reachable is False
        assert "unreachable" in (down.error or "")
        assert down.error_since is not None and down.last_ok is not None
    finally:
        second_engine.start()
    up = hostset.probe("second", wait=10)
    assert up.reachable is True and up.error is None
