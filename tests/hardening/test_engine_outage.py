"""A broken Docker engine, simulated without touching the shared dockerd.

chatdock's :class:`~bot.engine.Engine` is pointed at ``tests/hardening/proxy.py``, a unix-socket proxy in front of
``/var/run/docker.sock`` that can hang up on clients, stop listening, or answer slowly. Expectations:

- engine down: ``ps`` is a clear ``engine_unavailable`` ("Docker engine unreachable") within 10 s, and the
  pipeline keeps answering (help, usage errors, denials need no engine);
- engine back: the next ``ps`` works, with nothing rebuilt by hand;
- engine slow: a call fails with "did not answer" within about the timeout (+ the read retries), and no
  thread is left behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from bot.engine import Engine
from bot.models import Actor
from bot.pipeline import Pipeline
from bot.policy import Policy
from tests.conftest import make_pipeline
from tests.hardening.proxy import SocketProxy

ADMIN = Actor(user="UADMIN", channel="C1")
UNREACHABLE = "Docker engine unreachable"
NO_ANSWER = "did not answer"


@pytest.fixture
def proxy(docker_client: docker.DockerClient) -> Iterator[SocketProxy]:
    with SocketProxy() as running:
        yield running


def _pipeline(proxy: SocketProxy, policy: Policy, *, timeout: float = 5) -> tuple[Pipeline, Engine]:
    engine = Engine(base_url=proxy.base_url, timeout=timeout)
    return make_pipeline(engine, policy), engine


def _timed(pipeline: Pipeline, text: str) -> tuple[Any, float]:
    started = time.monotonic()
    outcome = pipeline.handle(text, ADMIN)
    return outcome, time.monotonic() - started


def _assert_unreachable(outcome: Any, elapsed: float) -> None:
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.kind == "engine_unavailable", outcome.error
    assert UNREACHABLE in outcome.error.message
    assert elapsed < 10, f"took {elapsed:.1f} s"


def _assert_still_answers(pipeline: Pipeline) -> None:
    """With the engine away, what needs no engine still works, and nothing turns into an internal error."""
    helped = pipeline.handle("help", ADMIN)
    assert helped.ok, helped.error
    bad = pipeline.handle("ps --bogus", ADMIN)
    assert bad.error is not None and bad.error.kind == "usage"
    refused = pipeline.handle("run -d --privileged local/busybox:test", ADMIN)
    assert refused.error is not None and refused.error.rule == "never:privileged"


def test_engine_hangs_up_then_recovers(proxy: SocketProxy, team_policy: Policy) -> None:
    pipeline, engine = _pipeline(proxy, team_policy)
    try:
        first = pipeline.handle("ps -a", ADMIN)
        assert first.ok, first.error

        proxy.pause()
        for _ in range(3):  # repeatedly: each answer is prompt and specific
            outcome, elapsed = _timed(pipeline, "ps")
            _assert_unreachable(outcome, elapsed)
        _assert_still_answers(pipeline)

        proxy.resume()
        again, elapsed = _timed(pipeline, "ps -a")
        assert again.ok, again.error
        assert elapsed < 10
    finally:
        engine.close()


def test_engine_socket_gone_then_back(proxy: SocketProxy, team_policy: Policy) -> None:
    pipeline, engine = _pipeline(proxy, team_policy)
    try:
        assert pipeline.handle("ps", ADMIN).ok
        proxy.refuse()
        outcome, elapsed = _timed(pipeline, "ps")
        _assert_unreachable(outcome, elapsed)
        _assert_still_answers(pipeline)
        proxy.resume()
        assert pipeline.handle("ps", ADMIN).ok
    finally:
        engine.close()


def test_bot_started_before_the_engine(proxy: SocketProxy, team_policy: Policy) -> None:
    """No client could be built at start-up: the first request after the engine appears builds it."""
    proxy.refuse()
    pipeline, engine = _pipeline(proxy, team_policy)
    try:
        outcome, elapsed = _timed(pipeline, "ps")
        _assert_unreachable(outcome, elapsed)
        _assert_still_answers(pipeline)
        proxy.resume()
        recovered = pipeline.handle("ps", ADMIN)
        assert recovered.ok, recovered.error
    finally:
        engine.close()


def _settle(baseline: int, seconds: float = 10) -> int:
    deadline = time.monotonic() + seconds
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.05)
    return threading.active_count()


@pytest.mark.parametrize("connected_first", [True, False], ids=["connected-then-slow", "slow-from-the-start"])
def test_slow_engine_times_out_clearly_without_leaking_threads(
    docker_client: docker.DockerClient, team_policy: Policy, connected_first: bool
) -> None:
    baseline = threading.active_count()
    timeout = 2.0
    proxy = SocketProxy().start()
    pipeline, engine = _pipeline(proxy, team_policy, timeout=timeout)
    try:
        if connected_first:
            assert pipeline.handle("ps", ADMIN).ok
        proxy.slow(timeout * 3)
        outcome, elapsed = _timed(pipeline, "ps")
        assert not outcome.ok
        assert outcome.error is not None
        assert outcome.error.kind == "engine_unavailable", outcome.error
        assert NO_ANSWER in outcome.error.message, outcome.error.message
        assert f"{timeout:g} s" in outcome.error.message
        # one read, not retried on a timeout (retries are for refused connections): about the timeout
        assert timeout * 0.9 <= elapsed < timeout * 3 + 2, f"took {elapsed:.1f} s"
        _assert_still_answers(pipeline)

        proxy.resume()
        recovered = pipeline.handle("ps", ADMIN)
        assert recovered.ok, recovered.error
    finally:
        engine.close()
        proxy.stop()
    assert proxy.live_threads() == 0
    assert _settle(baseline) <= baseline, [t.name for t in threading.enumerate()]


def test_sub_second_timeout_is_honoured(proxy: SocketProxy, team_policy: Policy) -> None:
    """``CHATDOCK_DOCKER_TIMEOUT=0.5`` is valid: it must neither fail every call nor wait whole seconds."""
    pipeline, engine = _pipeline(proxy, team_policy, timeout=0.5)
    try:
        assert pipeline.handle("ps", ADMIN).ok
        proxy.slow(2)
        outcome, elapsed = _timed(pipeline, "ps")
        assert outcome.error is not None and NO_ANSWER in outcome.error.message
        assert elapsed < 2, f"took {elapsed:.1f} s"
    finally:
        engine.close()
