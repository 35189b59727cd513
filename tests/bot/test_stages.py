"""The pipeline's stages: parse → admit (engine-free) → execute, against the real engine (and a hung one)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker
import pydantic
import pytest

from bot import pipeline as pipeline_module
from bot import render_text
from bot.buttons import button_request
from bot.engine import Engine
from bot.hosts import HostSet
from bot.models import Actor
from bot.outcome import Outcome
from bot.pipeline import Pipeline
from bot.policy import builtin_policy
from bot.stages import AdmittedRequest
from tests.conftest import make_pipeline
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import HungEngine

pytestmark = pytest.mark.docker
ME = Actor(user="local", channel="shell")


def test_admission_needs_no_engine() -> None:
    """A Slack ack waits for admit only: with an engine that never answers it still decides at once."""
    hung = HungEngine()
    engine = Engine(base_url=hung.url, timeout=20)
    try:
        pipeline = make_pipeline(engine, builtin_policy())
        started = time.monotonic()
        admitted = pipeline.admit("stop web", ME, source="slack")
        refused = pipeline.admit(f"run -d --privileged {TEST_IMAGE}", ME, source="slack")
        unknown = pipeline.admit("stpo web", ME, source="slack")
        assert time.monotonic() - started < 1.0
        assert isinstance(admitted, AdmittedRequest) and admitted.command.name == "stop"
        assert admitted.shown_text == "stop web" and admitted.decision.allowed
        assert isinstance(refused, Outcome) and refused.error is not None and refused.error.kind == "denied"
        assert isinstance(unknown, Outcome) and unknown.error is not None and unknown.error.kind == "usage"
    finally:
        engine.close()
        hung.close()


def test_an_admitted_request_is_frozen(local: Pipeline) -> None:
    admitted = local.admit("ps -a", ME)
    assert isinstance(admitted, AdmittedRequest)
    with pytest.raises(pydantic.ValidationError):
        admitted.host = "elsewhere"  # type: ignore[misc]


def test_execution_checks_the_targets_as_they_are_then(
    local: Pipeline, docker_client: docker.DockerClient, name: Any
) -> None:
    """An admitted request that waited (an approval will) acts on the engine as it is when it runs."""
    web = name("web")
    docker_client.containers.run(TEST_IMAGE, name=web, detach=True)
    try:
        admitted = local.admit(f"stop {web}", ME)
        assert isinstance(admitted, AdmittedRequest)
        docker_client.containers.get(web).remove(force=True)
        outcome = local.execute(admitted)
        assert not outcome.ok and f"No such container: {web}" in render_text.render(outcome)
        assert outcome.request_id == admitted.request_id and outcome.shown_text == f"stop {web}"
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(web).remove(force=True)


def test_the_text_is_normalised_once(local: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = pipeline_module.normalize

    def counting(text: str) -> str:
        calls.append(text)
        return real(text)

    monkeypatch.setattr(pipeline_module, "normalize", counting)
    assert local.handle("/docker ps -a", ME).ok
    assert calls == ["/docker ps -a"]


def test_a_button_builds_the_same_request_as_the_typed_command(engine: Engine) -> None:
    pipeline = make_pipeline(engine, builtin_policy())
    target = "a" * 64
    for action, typed in (("stop", "stop"), ("start", "start"), ("rm", "rm"), ("logs", "logs --tail 50")):
        built = button_request(pipeline.registry, HostSet.single(engine), action=action, target=target, host=None)
        parsed = pipeline.parse(f"{typed} {target}")
        assert built.command is parsed.command and built.request == parsed.request
        assert " ".join(built.words) == f"{typed} {target}"
