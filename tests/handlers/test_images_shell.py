"""``chatdock shell`` pulling from real registries: progress on stderr (plain lines when piped), one JSON object
per command with ``--json``, and registry credentials from the docker config that never show anywhere."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import PREFIX
from tests.support.registry import Registry, push_and_forget, start_registry

pytestmark = pytest.mark.docker


def shell(
    command: str, *, tmp_path: Path, policy: str, as_json: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "policy.yml").write_text(policy)
    environment = {
        **os.environ,
        "PYTHONPATH": os.getcwd(),
        "CHATDOCK_POLICY": str(tmp_path / "policy.yml"),
        "CHATDOCK_DB": str(tmp_path / "audit.db"),
        "CHATDOCK_LOG_LEVEL": "DEBUG",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "shell", *(["--json"] if as_json else []), "-c", command],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def policy_for(address: str) -> str:
    return f'roles: {{a: {{commands: ["*"]}}}}\ngrants: [{{role: a, users: ["*"]}}]\nimages: ["{address}/{PREFIX}*"]\n'


def test_pull_shows_plain_progress_lines_when_piped(
    pushed: Any, registry: Registry, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    ref = pushed("shell/web:1", size=2 * 1024 * 1024)
    done = shell(f"pull {ref}", tmp_path=tmp_path, policy=policy_for(registry.address))
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("Digest: sha256:") and out[1] == f"Status: Downloaded newer image for {ref}"
    assert out[2] == ref
    progress = [line for line in done.stderr.splitlines() if line.startswith(f"{ref}: ")]
    assert progress, done.stderr
    assert "layers" in progress[-1] and "\r" not in done.stderr  # plain lines, no bar, when stderr is a pipe
    docker_client.images.remove(ref)

    as_json = shell(f"pull {ref}", tmp_path=tmp_path, policy=policy_for(registry.address), as_json=True)
    assert as_json.returncode == 0, as_json.stderr
    (line,) = as_json.stdout.splitlines()  # exactly one object on stdout; progress went to stderr
    answer = json.loads(line)
    assert answer["ok"] and answer["result"]["kind"] == "pull" and answer["result"]["digest"].startswith("sha256:")


@pytest.fixture(scope="module")
def private_registry(docker_client: docker.DockerClient) -> Iterator[Registry]:
    registry = start_registry(username="cdt-robot", password="s3cret-Pa55-for-cdt")
    yield registry
    registry.stop()


def test_credentials_come_from_the_docker_config_and_never_show(
    private_registry: Registry, build_image: Any, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    registry = private_registry
    secret = registry.password
    auth = {"username": registry.username, "password": secret}
    ref = registry.ref(f"{PREFIX}private/app:1")
    build_image(ref)
    push_and_forget(docker_client, ref, auth=auth)
    policy = policy_for(registry.address)

    refused = shell(f"pull {ref}", tmp_path=tmp_path, policy=policy, DOCKER_CONFIG=str(tmp_path / "empty"))
    assert refused.returncode == 1
    assert "no basic auth credentials" in refused.stdout or "unauthorized" in refused.stdout, refused.stdout

    config = tmp_path / "docker"
    config.mkdir()
    encoded = base64.b64encode(f"{registry.username}:{secret}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": encoded}}}))
    pulled = shell(f"pull {ref}", tmp_path=tmp_path, policy=policy, DOCKER_CONFIG=str(config))
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert f"Status: Downloaded newer image for {ref}" in pulled.stdout
    docker_client.images.remove(ref)

    ran = shell(f"run --rm {ref} echo private-ok", tmp_path=tmp_path, policy=policy, DOCKER_CONFIG=str(config))
    assert ran.returncode == 0 and "private-ok" in ran.stdout, ran.stdout + ran.stderr

    with sqlite3.connect(tmp_path / "audit.db") as db:
        audit = json.dumps(db.execute("SELECT * FROM chatdock_audit").fetchall())
    for shown in (refused.stdout, refused.stderr, pulled.stdout, pulled.stderr, ran.stdout, ran.stderr, audit):
        assert secret not in shown and encoded not in shown
    assert registry.username not in pulled.stdout + pulled.stderr  # docker-py logs the account at DEBUG: kept quiet
