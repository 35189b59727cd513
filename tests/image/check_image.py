"""The built image, run as the README says, against this host's engine: it answers signed Slack requests,
protects its own container, and runs as its unprivileged user.

Not collected by ``make test`` (the file name does not start with ``test_``): ``make image-check`` builds the
image first and then runs this file. ``CHATDOCK_IMAGE`` names the image (default ``chatdock:ci``).

The fake Slack listens on the default bridge's gateway (docker0), the host address a container reaches; the
container's port 3000 is published on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from tests.conftest import PREFIX, SESSION, TEST_LABEL, TEST_POLICY
from tests.e2e.conftest import SIGNING_SECRET, SlackDriver, all_text
from tests.support.fake_slack import FakeSlack

IMAGE = os.environ.get("CHATDOCK_IMAGE", "chatdock:ci")
SOCKET = "/var/run/docker.sock"


def bridge_gateway(client: docker.DockerClient) -> str:
    """The host's address on the default bridge (the engine omits it from IPAM when it picked it itself)."""
    bridge = client.networks.get("bridge").attrs
    config = (bridge.get("IPAM") or {}).get("Config") or [{}]
    if config[0].get("Gateway"):
        return str(config[0]["Gateway"])
    device = (bridge.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    command = ["ip", "-4", "-o", "addr", "show", "dev", device]
    shown = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return shown.split(" inet ", 1)[1].split("/", 1)[0]


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    handle = docker.from_env(timeout=60)
    try:
        handle.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"image {IMAGE} is not built: run `make image-check`")
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def bot(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SlackDriver]]:
    gateway = bridge_gateway(client)
    fake = FakeSlack(host=gateway)
    policy = tmp_path_factory.mktemp("image") / "policy.yml"
    policy.write_text(TEST_POLICY)
    policy.chmod(0o644)  # the container's user (uid 10001) reads it through the bind mount
    name = f"{PREFIX}web-chatdock"  # in the policy's scope by name: only self-protection keeps it safe
    volume = f"{PREFIX}data"
    # exactly the README's `docker run` line, in HTTP mode, with the port published on loopback only
    command = [
        "docker", "run", "-d", "--name", name, "--label", f"{TEST_LABEL}={SESSION}",
        "-v", f"{SOCKET}:{SOCKET}", "--group-add", str(os.stat(SOCKET).st_gid),
        "-v", f"{policy}:/etc/chatdock/policy.yml:ro", "-v", f"{volume}:/data",
        "-e", f"SLACK_BOT_TOKEN={fake.token}", "-e", f"SLACK_SIGNING_SECRET={SIGNING_SECRET}",
        "-e", f"SLACK_API_URL={fake.api_url}",
        "-p", "127.0.0.1::3000",
        IMAGE, "--http",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    try:
        port = client.containers.get(name).ports["3000/tcp"][0]["HostPort"]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        health: httpx.Response | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"{url}/healthz", timeout=5)
                if health.status_code == 200:
                    break
            time.sleep(0.5)
        if health is None or health.status_code != 200:
            logs = client.containers.get(name).logs(tail=40).decode(errors="replace")
            pytest.fail(f"the container never became healthy: {health and health.text}\n{logs}")
        driver = SlackDriver(url, fake)
        yield name, driver
        driver.close()
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.containers.get(name).remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            client.volumes.get(volume).remove(force=True)
        fake.close()


def test_healthz_reports_engine_store_and_slack(bot: tuple[str, SlackDriver]) -> None:
    _, driver = bot
    assert driver.http.get("/healthz").json() == {"engine": True, "slack_client": True, "store": True}


def test_it_runs_as_its_unprivileged_user(bot: tuple[str, SlackDriver], client: docker.DockerClient) -> None:
    name, _ = bot
    container = client.containers.get(name)
    assert container.attrs["Config"]["User"] == "chatdock"
    code, out = container.exec_run(["id", "-u"])
    assert code == 0 and out.decode().strip() == "10001"
    top = container.top(ps_args="-o pid,user,args")  # the server process itself, seen from the host
    assert any("chatdock serve" in " ".join(row) for row in top["Processes"])
    assert all(row[1] != "root" for row in top["Processes"]), top


def test_it_answers_signed_slack_commands_on_the_host_engine(
    bot: tuple[str, SlackDriver], client: docker.DockerClient
) -> None:
    _, driver = bot
    listed = driver.reply(driver.command("ps -a"), timeout=60)
    assert "CONTAINER" in all_text(listed) or "container" in all_text(listed).lower()
    web = f"{PREFIX}web-from-image"
    try:
        ran = driver.reply(driver.command(f"run -d --name {web} local/busybox:test"), timeout=60)
        assert web in all_text(ran)
        created = client.containers.get(web)
        assert created.status == "running" and created.labels.get("chatdock.managed") == "true"
        unsigned = driver.post("command=%2Fdocker&text=ps", {"Content-Type": "application/x-www-form-urlencoded"}, "")
        assert unsigned.response.status_code == 401
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.containers.get(web).remove(force=True)


def test_it_protects_its_own_container(bot: tuple[str, SlackDriver], client: docker.DockerClient) -> None:
    name, driver = bot
    for text in (f"stop {name}", f"rm -f {name}", f"exec {name} id"):
        reply = driver.reply(driver.command(text), timeout=60)
        assert "denied" in all_text(reply).lower(), (text, all_text(reply))
    assert client.containers.get(name).status == "running"


def test_the_audit_log_lives_in_the_data_volume(bot: tuple[str, SlackDriver], client: docker.DockerClient) -> None:
    name, _ = bot
    code, out = client.containers.get(name).exec_run(["ls", "-l", "/data/chatdock.db"])
    assert code == 0 and "chatdock" in out.decode(), out
    assert Path(SOCKET).exists()
