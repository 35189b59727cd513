"""The incident commands' grammar: every bad input gets a specific error and the usage line."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import UsageError
from bot.pipeline import Pipeline
from bot.policy import load_policy_text
from handlers import build_registry
from handlers.notify import MuteRequest, UnmuteRequest
from tests.conftest import make_pipeline


@pytest.fixture
def pipeline(engine: Any) -> Pipeline:
    policy = load_policy_text("notify: [{channel: C0OPS}]", known_commands=build_registry().names())
    return make_pipeline(engine, policy)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("mute", "needs a container name"),
        ("mute a b c", "needs a container name"),
        ("mute 'x y'", "is not a container name"),
        ("mute web-1 exploded", 'unknown incident kind "exploded"'),
        ("mute web-1 --for soon", "--for: 'soon' is not a duration"),
        ("mute web-1 --until 25:00", "expected a time of day such as 09:00"),
        ("mute web-1 --for 1h --until 09:00", "give --for or --until, not both"),
        ("mute ls extra", "takes no arguments"),
        ("unmute", "needs one container name or mute ID"),
        ("notify ls x", "takes no arguments"),
        ("notify test 1 2", "at most one route"),
        ("incident logs 123", "needs the incident ID"),
        ("history --incidents --failed", "--user and --failed do not apply"),
    ],
)
def test_usage_errors(pipeline: Pipeline, text: str, error: str) -> None:
    with pytest.raises(UsageError) as raised:
        pipeline.understand(text)
    assert error in raised.value.message and raised.value.usage


def test_parsed_requests(pipeline: Pipeline) -> None:
    mute = pipeline.understand("mute web-1 crashed --for 8h").request
    assert mute == MuteRequest(container="web-1", kind="crashed", seconds=8 * 3600.0)
    assert pipeline.understand("mute web-1 --until 09:00").request == MuteRequest(container="web-1", until="09:00")
    assert pipeline.understand("unmute web-1").request == UnmuteRequest(target="web-1")
