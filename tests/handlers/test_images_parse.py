"""The image commands' grammar and the policy's image rules: pure, no engine, no registry."""

from __future__ import annotations

import pytest

from bot.engine import Engine
from bot.errors import UsageError
from bot.models import Actor
from bot.pipeline import Outcome, Pipeline
from bot.policy import (
    check_engine_calls,
    image_removable,
    load_policy_text,
    may_pull,
    parse_image,
    pull_allowed,
)
from handlers import build_registry
from handlers.images import ImageInspectRequest, ImagesRequest, PruneRequest, PullRequest, RmiRequest, pull_call
from handlers.run import RunRequest

POLICY = load_policy_text(
    """
roles: {admin: {commands: ["*"]}}
grants: [{role: admin, users: ["*"]}]
images: ["@local", "registry.example:5000/team/*", "nginx:1.*"]
"""
)


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(engine=Engine(), policy=POLICY, registry=build_registry())


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        ("pull nginx:1.27", PullRequest(image="nginx:1.27")),
        ("image pull --dry-run nginx:1.27", PullRequest(image="nginx:1.27", dry_run=True)),
        ("images", ImagesRequest()),
        ("image ls -aq -f dangling=true", ImagesRequest(all=True, quiet=True, filters=(("dangling", "true"),))),
        ("images nginx", ImagesRequest(filters=(("reference", "nginx"),))),
        ("rmi a:1, b:2", RmiRequest(images=("a:1", "b:2"))),
        ("image rm -f --no-prune abc123", RmiRequest(images=("abc123",), force=True, no_prune=True)),
        ("image prune", PruneRequest()),
        (
            "image prune -a -f --filter until=24h --filter label=team=web",
            PruneRequest(all=True, filters=(("until", "24h"), ("label", "team=web"))),
        ),
        ("image --dry-run prune", PruneRequest(dry_run=True)),
        ("image inspect nginx:1.27", ImageInspectRequest(image="nginx:1.27")),
        ("run --pull always nginx", RunRequest(image="nginx", pull="always")),
    ],
)
def test_grammar(pipeline: Pipeline, text: str, request_: object) -> None:
    assert pipeline.understand(text).request == request_
    assert pipeline.engine._client is None  # understanding never connects to the engine


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pull", '"pull" requires exactly 1 argument: the image'),
        ("pull a b", '"pull" requires exactly 1 argument: the image'),
        ("pull Nginx", "invalid reference format: repository name 'Nginx' must be lowercase"),
        ("rmi", "requires at least 1 argument"),
        ("rmi ../../containers/x", "invalid reference format: '../../containers/x' is not a valid image name"),
        ("images -f color=red", "invalid filter 'color' (accepted: before, dangling, label, reference, since)"),
        ("images -f dangling=maybe", "invalid filter 'dangling=maybe' (true or false)"),
        ("image prune --filter dangling=true", "invalid filter 'dangling' (accepted: label, until)"),
        ("image prune --filter until=yesterday", 'failed to parse value as time or duration: "yesterday"'),
        ("image prune x", '"image prune" accepts no arguments'),
        (
            "run --pull sometimes nginx",
            'invalid pull option: "sometimes": must be one of "always", "missing" or "never"',
        ),
        ("image frob", "unknown command: `image frob`. Try `help` for the commands you may run."),
        ("--dry-run images", "`--dry-run` is for commands that change something; `images` only reads"),
    ],
)
def test_bad_input_says_what_was_wrong(pipeline: Pipeline, text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        pipeline.understand(text)
    assert caught.value.message == message


def test_pull_rules_are_decided_on_the_reference_before_anything_is_fetched() -> None:
    assert pull_allowed(POLICY, parse_image("nginx:1.27")).rule == "images[nginx:1.*]"
    assert pull_allowed(POLICY, parse_image("registry.example:5000/team/web")).allowed
    local_only = pull_allowed(POLICY, parse_image("redis:7"))
    assert (local_only.allowed, local_only.rule) == (False, "images[@local]")
    assert "may not be pulled: the policy allows only images already on this host" in local_only.reason
    assert not may_pull(POLICY, parse_image("nginx:latest"))
    only_globs = load_policy_text('images: ["team/*"]')
    assert pull_allowed(only_globs, parse_image("redis")).reason == "Image redis is not allowed by policy"


def test_the_engine_request_of_a_pull_is_checked() -> None:
    calls = [pull_call(parse_image("redis:7"))]
    refused = check_engine_calls(POLICY, [(c.method, c.path, None, dict(c.params)) for c in calls])
    assert refused is not None and refused.rule == "images[@local]"
    digest = "sha256:" + "a" * 64
    by_digest = pull_call(parse_image(f"registry.example:5000/team/web@{digest}"))
    assert dict(by_digest.params) == {"fromImage": "registry.example:5000/team/web", "tag": digest}
    assert check_engine_calls(POLICY, [(by_digest.method, by_digest.path, None, dict(by_digest.params))]) is None


def test_what_rmi_and_prune_may_remove() -> None:
    team = load_policy_text('images: ["team/*"]')
    assert image_removable(team, ["team/web:1"]).allowed
    assert not image_removable(team, ["team/web:1", "postgres:16"]).allowed  # by ID every name goes
    assert not image_removable(team, []).allowed  # untagged: no name for a glob to match
    assert image_removable(POLICY, []).allowed  # @local: everything already on the host


def test_dry_runs_of_denied_pulls_are_refused_too(pipeline: Pipeline) -> None:
    outcome: Outcome = pipeline.handle("pull --dry-run redis:7", Actor(user="U1"))
    assert outcome.error is not None and outcome.error.rule == "images[@local]"
    assert pipeline.engine._client is None  # decided without the engine
