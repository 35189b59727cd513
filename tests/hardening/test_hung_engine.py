"""An engine that accepts connections and never answers must not make requests wait for each other.

Each request fails on its own clock (``CHATDOCK_DOCKER_TIMEOUT``), however many arrive together: both while
chatdock is still building its client (the API version negotiation is itself a call to the hung engine) and
once the client exists (the unix-socket proxy in ``proxy.py`` stops forwarding).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from bot.engine import Engine
from bot.models import Actor
from bot.pipeline import Outcome
from bot.policy import builtin_policy
from tests.conftest import make_pipeline
from tests.hardening.proxy import SocketProxy

LOCAL = Actor(user="local", channel="shell")
TIMEOUT = 3.0
CONCURRENT = 4


@pytest.fixture
def silent_engine() -> Iterator[str]:
    """A unix socket that accepts every connection and never says a word; yields its ``unix://`` URL."""
    path = f"/tmp/cdt-silent-{uuid.uuid4().hex[:8]}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    yield f"unix://{path}"
    stopping.set()
    listener.close()
    for connection in held:
        connection.close()
    os.unlink(path)


def _together(engine: Engine, text: str) -> list[tuple[float, Outcome]]:
    """``CONCURRENT`` requests started at the same moment: (seconds each took, outcome)."""
    pipeline = make_pipeline(engine, builtin_policy())
    results: list[tuple[float, Outcome]] = []
    gate = threading.Barrier(CONCURRENT)

    def one() -> None:
        gate.wait()
        started = time.monotonic()
        outcome = pipeline.handle(text, LOCAL)
        results.append((time.monotonic() - started, outcome))

    threads = [threading.Thread(target=one) for _ in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _each_on_its_own_clock(results: list[tuple[float, Outcome]]) -> None:
    assert len(results) == CONCURRENT
    for took, outcome in results:
        assert outcome.error is not None and outcome.error.kind == "engine_unavailable", outcome.error
        assert "did not answer within 3 s" in outcome.error.message
        # serialised, they would end at 3, 6, 9 and 12 s
        assert took < TIMEOUT + 2, sorted(t for t, _ in results)


def test_concurrent_requests_to_a_silent_engine_fail_together(silent_engine: str) -> None:
    engine = Engine(base_url=silent_engine, timeout=TIMEOUT)
    try:
        _each_on_its_own_clock(_together(engine, "ps"))
        _each_on_its_own_clock(_together(engine, "ps -a"))  # and again: nothing stuck from the first round
    finally:
        engine.close()


def test_concurrent_requests_fail_together_once_the_client_exists(docker_client: docker.DockerClient) -> None:
    with SocketProxy() as proxy:
        engine = Engine(base_url=proxy.base_url, timeout=TIMEOUT)
        try:
            assert engine.ping()  # the client is built, the API version known
            proxy.slow(60)
            _each_on_its_own_clock(_together(engine, "ps"))
        finally:
            proxy.resume()
            engine.close()
