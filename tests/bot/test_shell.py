"""``chatdock shell`` while a command waits: stderr says what for; stdout keeps the output (and --json's contract).

Against the real engine: a container whose PID 1 ignores SIGTERM (busybox ``sleep``) makes ``stop`` wait for its
timeout, as it does for people.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import docker
import pytest

from bot.models import Actor
from bot.pipeline import Pipeline
from bot.shell import progress, run_lines, waiting_line

ME = Actor(user="local", channel="shell")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stubborn(docker_client: docker.DockerClient, image: str, name: Any) -> Any:
    """A running container that only a kill stops (``sleep`` as PID 1 has no SIGTERM handler)."""
    container = docker_client.containers.run(image, ["sleep", "300"], name=name("stubborn"), detach=True)
    yield container
    container.remove(force=True)


def test_stop_says_what_it_waits_for_and_json_stays_one_object(local: Pipeline, stubborn: Any) -> None:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()

    assert run_lines(local, ME, [f"stop -t 2 {stubborn.name}"], as_json=True, out=out, status=err) == 0

    assert time.monotonic() - started >= 2
    [line] = out.getvalue().splitlines()  # exactly one JSON object, nothing else on stdout
    assert json.loads(line)["ok"] is True
    assert err.getvalue() == f"stopping {stubborn.name} (waits up to 2 s before killing)…\n"  # a plain line: no tty


def test_on_a_terminal_the_progress_line_is_erased_when_the_command_ends(local: Pipeline, stubborn: Any) -> None:
    out, err = io.StringIO(), Terminal()

    assert run_lines(local, ME, [f"restart -t 1 {stubborn.name}"], as_json=False, out=out, status=err) == 0

    assert err.getvalue() == f"restarting {stubborn.name} (waits up to 1 s before killing)…\r\x1b[K"
    assert "\x1b" not in out.getvalue() and stubborn.name in out.getvalue()


def test_quick_commands_say_nothing_on_stderr(local: Pipeline) -> None:
    err = io.StringIO()
    assert run_lines(local, ME, ["ps -a", "help"], as_json=False, out=io.StringIO(), status=err) == 0
    assert err.getvalue() == ""


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("stop web db", "stopping web, db (waits up to 10 s, or its own stop timeout, before killing)…"),
        ("stop -t 30 web", "stopping web (waits up to 30 s before killing)…"),
        ("restart -t 0 web", "restarting web (waits up to 0 s before killing)…"),
        ("run --rm local/busybox:test sleep 5", "running local/busybox:test (waits up to 20 s for it to exit)…"),
        ("run -d local/busybox:test", "starting a container from local/busybox:test…"),
        ("exec web sh -c 'echo $SECRET'", "running sh in web (waits up to 10 s)…"),
        ("rm -f web", "removing web…"),
        ("start web", "starting web…"),
        ("ps", "ps…"),
        ("stats", "reading stats (each container takes about 2 s, all at once)…"),
        ("stop --dry-run web", None),
        ("stpo web", None),  # a usage error: handle() says it, at once
    ],
)
def test_what_the_shell_says_each_command_waits_for(local: Pipeline, text: str, line: str | None) -> None:
    assert waiting_line(local, text) == line


@pytest.mark.parametrize(("own", "wait"), [(None, 10), (15, 15), (-1, 300), (600, 300)])
def test_the_stop_line_says_the_containers_own_wait(
    local: Pipeline, docker_client: docker.DockerClient, name: Any, image: str, own: int | None, wait: int
) -> None:
    web = name("web")
    created = docker_client.api.create_container(image, ["true"], name=web, stop_timeout=own)
    try:
        assert waiting_line(local, f"stop {web}") == f"stopping {web} (waits up to {wait} s before killing)…"
        assert waiting_line(local, f"restart -t 3 {web}") == f"restarting {web} (waits up to 3 s before killing)…"
    finally:
        docker_client.api.remove_container(created["Id"], force=True)


def test_progress_is_silent_before_its_delay() -> None:
    err = io.StringIO()
    with progress("waiting…", stream=err, delay=5):
        pass
    assert err.getvalue() == ""
