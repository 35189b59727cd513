"""The test infrastructure itself: the second engine answers over unix, TLS (verified both ways) and SSH."""

from __future__ import annotations

import subprocess

import docker
import pytest
import requests
from docker.tls import TLSConfig

from tests.support.image import TEST_IMAGE
from tests.support.second_engine import SecondEngine, SshFront


def test_second_engine_is_another_engine(docker_client: docker.DockerClient, second_engine: SecondEngine) -> None:
    client = second_engine.client()
    try:
        assert client.info()["DockerRootDir"] != docker_client.info()["DockerRootDir"]
        assert client.images.get(TEST_IMAGE)
    finally:
        client.close()
    # the first engine's bridge is untouched
    shown = subprocess.run(["ip", "-4", "addr", "show", "docker0"], capture_output=True, text=True, check=False)
    assert "172.17.0.1/16" in shown.stdout


def _tls_ping(url: str, tls: TLSConfig) -> bool:
    api = docker.APIClient(base_url=url, tls=tls, version="1.41", timeout=10)
    api.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would replace the CA given here
    try:
        return bool(api.ping())
    finally:
        api.close()


def test_tls_is_verified_both_ways(second_engine: SecondEngine) -> None:
    tls = second_engine.client_tls
    assert tls is not None
    client_cert = (str(tls.cert), str(tls.key))
    assert _tls_ping(second_engine.tcp_url, TLSConfig(client_cert=client_cert, ca_cert=str(tls.ca), verify=True))
    # without a client certificate the engine refuses the handshake
    with pytest.raises(requests.exceptions.ConnectionError):
        _tls_ping(second_engine.tcp_url, TLSConfig(ca_cert=str(tls.ca), verify=True))
    # and a client that trusts other CAs refuses the server
    with pytest.raises(requests.exceptions.SSLError):
        _tls_ping(
            second_engine.tcp_url,
            TLSConfig(client_cert=client_cert, ca_cert="/etc/ssl/certs/ca-certificates.crt", verify=True),
        )


def test_ssh_session_reaches_the_second_engine(second_engine: SecondEngine, second_ssh: SshFront) -> None:
    client = second_engine.client()
    try:
        expected = client.info()["DockerRootDir"]
    finally:
        client.close()
    done = subprocess.run(
        [
            "ssh",
            "-i",
            str(second_ssh.identity),
            "-o",
            f"UserKnownHostsFile={second_ssh.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-p",
            str(second_ssh.port),
            "root@127.0.0.1",
            "docker info --format '{{.DockerRootDir}}'",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
