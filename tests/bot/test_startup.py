"""bot.startup: the local checks serve and the shell share, each bad setting one line, all of them at once."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.startup import check_local, engine_problems, port_problems, read_settings


def test_every_malformed_variable_is_named_by_its_environment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATDOCK_WORKERS", "lots")
    monkeypatch.setenv("CHATDOCK_EXEC_TIMEOUT", "-1")
    monkeypatch.setenv("CHATDOCK_DB", "elsewhere.db")
    settings, problems = read_settings()
    assert problems == [
        "bad setting CHATDOCK_EXEC_TIMEOUT: Input should be greater than 0 (got '-1')",
        "bad setting CHATDOCK_WORKERS: Input should be a valid integer, unable to parse string as an integer "
        "(got 'lots')",
    ]
    # the malformed ones fall back to their defaults, so every other check still runs on the rest
    assert (settings.workers, settings.exec_timeout, settings.db) == (32, 30.0, "elsewhere.db")


def test_ports() -> None:
    assert port_problems("127.0.0.1", 0) == []
    assert port_problems("127.0.0.1", 70000) == ["--port 70000: not a TCP port (0-65535)"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert port_problems("127.0.0.1", port) == [
            f"--port {port}: cannot listen on 127.0.0.1:{port} (Address already in use)"
        ]
    assert port_problems("no-such-host.invalid", 3000)[0].startswith("--host no-such-host.invalid: cannot listen")


def test_an_engine_that_does_not_answer_is_a_warning_a_malformed_docker_host_an_error(
    tmp_path: Path, docker_client: Any
) -> None:
    missing = f"unix://{tmp_path}/no-docker.sock"
    errors, warnings = engine_problems(Settings(docker_host=missing))
    assert errors == []
    assert warnings == [
        f"warning: the Docker engine at {missing} does not answer (Docker engine unreachable: is dockerd running "
        "and is DOCKER_HOST right?); commands fail until it does"
    ]
    errors, warnings = engine_problems(Settings(docker_host="tcp://127.0.0.1:notaport"))
    assert warnings == [] and len(errors) == 1 and errors[0].startswith("bad setting DOCKER_HOST: ")
    assert engine_problems(Settings()) == ([], [])  # the engine these tests use answers


def test_the_shell_needs_no_policy_file_and_opens_the_log(tmp_path: Path, docker_client: Any) -> None:
    check = check_local(Settings(db=str(tmp_path / "a.db")), need_policy_file=False)
    try:
        assert (check.errors, check.warnings, check.policy_source) == ([], [], "built-in policy")
        assert check.store is not None
    finally:
        check.close()
    serve = check_local(Settings(db=str(tmp_path / "a.db")), need_policy_file=True, listen=("127.0.0.1", 0))
    serve.close()
    assert serve.errors == ["CHATDOCK_POLICY is not set; `serve` needs a policy file (see policy.example.yml)"]
