"""``chatdock serve`` itself: /healthz, start-up refusals (one line, exit 2, no secrets), and a real process
answering a signed slash command and stopping cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from bot.engine import Engine
from bot.policy import Policy
from bot.serve import Server, build_server
from tests.conftest import TEST_POLICY, make_pipeline
from tests.e2e.conftest import SIGNING_SECRET, SlackDriver, all_text, e2e_settings
from tests.support.fake_slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-test-0000-chatdock"


@pytest.mark.docker
def test_healthz_reports_the_engine_and_slack(slack: SlackDriver):
    response = slack.http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"engine": True, "slack_client": True}


@pytest.mark.docker
def test_the_server_hands_memory_back_once_its_workers_are_idle(serve: Server, slack: SlackDriver):
    assert serve.idle_trim is not None, "glibc: the server trims"
    before = serve.idle_trim.trims
    sent = slack.command("ps")
    assert sent.response.status_code == 200
    slack.fake.wait_posts(sent.response_url)
    deadline = time.monotonic() + 5
    while serve.idle_trim.trims == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert serve.idle_trim.trims > before


def test_healthz_is_503_while_the_engine_is_unreachable(fake_slack: FakeSlack, team_policy: Policy, tmp_path: Path):
    engine = Engine(base_url=f"unix://{tmp_path}/no-docker.sock", timeout=2)
    server = build_server(
        e2e_settings(fake_slack), pipeline=make_pipeline(engine, team_policy), host="127.0.0.1", port=0
    )
    server.start()
    try:
        response = httpx.get(f"{server.url}/healthz", timeout=10)
        assert response.status_code == 503
        assert response.json() == {"engine": False, "slack_client": True}
    finally:
        server.stop(drain=5)
        engine.close()


# -- start-up --------------------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path) -> Any:
    """``clean_env(NAME=value)`` → this environment without Slack/chatdock settings (the audit log in tmp)."""

    def make(**values: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATDOCK_"))}
        env["CHATDOCK_DB"] = str(tmp_path / "audit.db")
        env.update(values)
        return env

    return make


def start(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve", *args],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yml"
    path.write_text(TEST_POLICY)
    return path


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--http"], {}, "SLACK_BOT_TOKEN is not set"),
        (["--http"], {"SLACK_BOT_TOKEN": "not-a-token-HUSH"}, "SLACK_BOT_TOKEN does not look like a bot token"),
        (["--http"], {"SLACK_BOT_TOKEN": BOT_TOKEN}, "SLACK_SIGNING_SECRET is not set"),
        (
            ["--http"],
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "short HUSH"},
            "SLACK_SIGNING_SECRET looks malformed",
        ),
        (["--socket"], {"SLACK_BOT_TOKEN": BOT_TOKEN}, "Socket Mode needs SLACK_APP_TOKEN"),
        ([], {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xoxp-HUSH"}, "SLACK_APP_TOKEN does not look like"),
        (
            ["--http"],
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET},
            "CHATDOCK_POLICY is not set",
        ),
        (["--http"], {"CHATDOCK_WORKERS": "lots"}, "bad setting CHATDOCK_WORKERS"),
    ],
)
def test_a_missing_or_malformed_setting_stops_start_up_with_a_line_naming_it(
    args: list[str], env: dict[str, str], says: str, clean_env: Any
):
    result = start(args, clean_env(**env))

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("chatdock: ") for line in lines), result.stderr
    assert [line for line in lines if says in line], result.stderr  # among the others that are wrong too
    assert "HUSH" not in result.stderr + result.stdout  # secrets are never echoed
    assert BOT_TOKEN not in result.stderr


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_bad_local_setting_is_reported_in_one_run_before_slack_is_tried(tmp_path: Path, clean_env: Any):
    policy = tmp_path / "policy.yml"
    policy.write_text("roles: {viewer: {commands: [ps, teleport], include: [ghost]}}\ngrants: [{role: boss}]\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(
            SLACK_BOT_TOKEN="not-a-token-HUSH",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=f"http://127.0.0.1:{closed_port()}/api/",
            CHATDOCK_POLICY=str(policy),
            CHATDOCK_DB="/nonexistent-dir/deeper/audit.db",
            CHATDOCK_WORKERS="lots",
            CHATDOCK_RUN_TIMEOUT="0",
            DOCKER_HOST=f"tcp://127.0.0.1:{closed_port()}",
        )
        result = start(["--http", "--host", "127.0.0.1", "--port", str(port)], env)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("chatdock: warning: the Docker engine at tcp://127.0.0.1:")
    assert lines[1:] == [
        "chatdock: bad setting CHATDOCK_RUN_TIMEOUT: Input should be greater than 0 (got '0')",
        "chatdock: bad setting CHATDOCK_WORKERS: Input should be a valid integer, unable to parse string as an "
        "integer (got 'lots')",
        "chatdock: SLACK_BOT_TOKEN does not look like a bot token (it starts with xoxb-)",
        f"chatdock: --port {port}: cannot listen on 127.0.0.1:{port} (Address already in use)",
        f"chatdock: CHATDOCK_POLICY {policy}: line 1: roles.viewer.include: unknown role 'ghost'",
        f"chatdock: CHATDOCK_POLICY {policy}: line 1: roles.viewer.commands: unknown command 'teleport'",
        f"chatdock: CHATDOCK_POLICY {policy}: line 2: grants[0].role: unknown role 'boss'",
        "chatdock: CHATDOCK_DB: cannot create the audit log /nonexistent-dir/deeper/audit.db: No such file or directory",
    ]
    assert "HUSH" not in result.stderr + result.stdout


def test_the_shell_names_the_same_bad_settings_the_same_way(tmp_path: Path, clean_env: Any):
    policy = tmp_path / "policy.yml"
    policy.write_text("roles: {viewer: {commands: [ps, teleport]}}\ngrants: [{role: viewer, users: []}]\n")
    env = clean_env(CHATDOCK_POLICY=str(policy), CHATDOCK_WORKERS="lots", CHATDOCK_DB="/nonexistent-dir/a.db")
    shell = subprocess.run(
        [sys.executable, "-m", "bot", "shell", "-c", "ps"],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    serve = start(["--http", "--host", "127.0.0.1", "--port", "0"], env)
    assert shell.returncode == 2 and serve.returncode == 2
    local = [
        "chatdock: bad setting CHATDOCK_WORKERS: Input should be a valid integer, unable to parse string as an "
        "integer (got 'lots')",
        f"chatdock: CHATDOCK_POLICY {policy}: line 1: roles.viewer.commands: unknown command 'teleport'",
        "chatdock: CHATDOCK_DB: cannot create the audit log /nonexistent-dir/a.db: No such file or directory",
    ]
    assert shell.stderr.strip().splitlines() == local
    assert [line for line in serve.stderr.strip().splitlines() if line in local] == local  # plus Slack's


def test_an_unreachable_slack_is_named_with_the_url_and_the_reason(policy_file: Path, clean_env: Any):
    api = f"http://127.0.0.1:{closed_port()}/api/"
    env = clean_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api,
        CHATDOCK_POLICY=str(policy_file),
    )
    result = start(["--http", "--host", "127.0.0.1", "--port", "0"], env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"chatdock: cannot reach Slack at {api}auth.test: Connection refused (check SLACK_API_URL and the network)"
    ]
    assert BOT_TOKEN not in result.stderr


def test_an_engine_that_does_not_answer_is_a_warning_and_a_warning_policy_still_starts(
    fake_slack: FakeSlack, tmp_path: Path, clean_env: Any
):
    policy = tmp_path / "policy.yml"
    policy.write_text("roles: {viewer: {commands: [ps]}}\ngrants: [{role: viewer, users: ['*'], channels: []}]\n")
    env = clean_env(
        SLACK_BOT_TOKEN=fake_slack.token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        CHATDOCK_POLICY=str(policy),
        DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock",
    )
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--http", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "chatdock serving" not in log.read_text() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert process.poll() is None, log.read_text()  # it started, in spite of both
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = log.read_text().splitlines()
    assert lines[0] == (
        f"chatdock: warning: CHATDOCK_POLICY {policy}: line 2: grants[0].channels: empty list, so it matches nothing"
    )
    assert lines[1].startswith(f"chatdock: warning: the Docker engine at unix://{tmp_path}/no-docker.sock does not")


def test_an_unusable_policy_file_stops_start_up(tmp_path: Path, clean_env: Any):
    bad = tmp_path / "policy.yml"
    bad.write_text("roles: {viewer: {commands: [ps, teleport]}}\ngrants: []\n")
    env = clean_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, CHATDOCK_POLICY=str(bad))
    result = start(["--http"], env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # its one problem (the empty grants: fine)
    assert "CHATDOCK_POLICY" in result.stderr and "teleport" in result.stderr

    env["CHATDOCK_POLICY"] = str(tmp_path / "missing.yml")
    result = start(["--http"], env)
    assert result.returncode == 2 and "cannot read the file" in result.stderr


def test_an_audit_log_that_cannot_be_opened_stops_start_up(policy_file: Path, clean_env: Any):
    env = clean_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        CHATDOCK_POLICY=str(policy_file),
        CHATDOCK_DB="/nonexistent-dir/deeper/audit.db",
    )
    result = start(["--http", "--host", "127.0.0.1", "--port", "0"], env)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("chatdock: ")


def test_a_token_slack_refuses_stops_start_up(fake_slack: FakeSlack, policy_file: Path, clean_env: Any):
    wrong = "xoxb-999-999-WRONGTOKENHUSH"
    env = clean_env(
        SLACK_BOT_TOKEN=wrong,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        CHATDOCK_POLICY=str(policy_file),
    )
    result = start(["--http", "--host", "127.0.0.1", "--port", "0"], env)
    assert result.returncode == 2
    assert "Slack refused SLACK_BOT_TOKEN (auth.test: invalid_auth)" in result.stderr
    assert "HUSH" not in result.stderr
    assert fake_slack.calls_to("auth.test")


@pytest.mark.docker
def test_serve_answers_slack_over_http_and_stops_on_sigterm(
    docker_client: Any, fake_slack: FakeSlack, policy_file: Path, tmp_path: Path, clean_env: Any
):
    env = clean_env(
        SLACK_BOT_TOKEN=fake_slack.token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake_slack.api_url,
        CHATDOCK_POLICY=str(policy_file),
        CHATDOCK_DB=str(tmp_path / "audit.db"),
    )
    stderr = (tmp_path / "stderr.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--http", "--host", "127.0.0.1", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
            found = re.search(
                r"serving HTTP \(/slack/events\) on (http://127\.0\.0\.1:\d+)", Path(stderr.name).read_text()
            )
            url = found.group(1) if found else None
        assert url, Path(stderr.name).read_text()

        assert httpx.get(f"{url}/healthz", timeout=10).json() == {"engine": True, "slack_client": True, "store": True}
        driver = SlackDriver(url, fake_slack)
        sent = driver.command("ps -a")
        assert sent.response.status_code == 200 and sent.elapsed < 3.0
        assert sent.ack == {}  # a quick read: no in-channel "running" notice, the result follows
        assert "requested by <@UADMIN>" in all_text(driver.reply(sent))
        unsigned = driver.post(urlencode({"command": "/docker", "text": "ps"}), {}, fake_slack.new_response_url())
        assert unsigned.response.status_code == 401
        driver.close()

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        log = Path(stderr.name).read_text()
        assert fake_slack.token not in log and SIGNING_SECRET not in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr.close()


def test_an_app_token_slack_refuses_stops_socket_mode_start_up(
    fake_slack: FakeSlack, policy_file: Path, clean_env: Any
):
    env = clean_env(
        SLACK_BOT_TOKEN=fake_slack.token,
        SLACK_APP_TOKEN="xapp-1-A0-1-REFUSEDHUSH",
        SLACK_API_URL=fake_slack.api_url,
        CHATDOCK_POLICY=str(policy_file),
    )
    result = start(["--host", "127.0.0.1", "--port", "0"], env)  # Socket Mode, since SLACK_APP_TOKEN is set
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "chatdock: Socket Mode could not connect (apps.connections.open: invalid_auth)"
    ]
    assert "HUSH" not in result.stderr
    assert fake_slack.calls_to("apps.connections.open")
