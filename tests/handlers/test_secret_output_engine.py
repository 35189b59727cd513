"""A container's secrets never reach a reply, whatever shows them: exec, foreground run, logs, top, inspect, errors.

The values of a container's secret-looking environment variables (``Config.Env``, with the image's own ``ENV``)
are masked wherever they appear literally, and ``KEY=VALUE`` for those keys whatever the value's length; in the
result, in the rendered text and in ``--json``. Against the real engine.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator

import docker
import docker.errors
import pytest

from bot.engine import Engine
from bot.models import Actor
from bot.pipeline import Outcome, Pipeline
from bot.policy import builtin_policy
from bot.render_text import render
from tests.conftest import SESSION, make_pipeline

ME = Actor(user=f"U{SESSION}", channel="shell")
SECRET = "hunter2-0xC0FFEE"


@pytest.fixture
def box(docker_client: docker.DockerClient, name: Callable[[str], str]) -> Iterator[Callable[[str], str]]:
    made: list[str] = []

    def make(base: str = "c") -> str:
        made.append(name(base))
        return made[-1]

    yield make
    for each in made:
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.api.remove_container(each, force=True)


@pytest.fixture
def as_me(local: Pipeline) -> Callable[[str], Outcome]:
    return lambda text: local.handle(text, ME)


def shown(outcome: Outcome) -> str:
    """Everything a person could see of the outcome: the rendered text and the shell's --json object."""
    return render(outcome) + "\n" + json.dumps(outcome.public()) + "\n" + str(outcome.error or "")


def ok(outcome: Outcome) -> Outcome:
    assert outcome.ok, f"{outcome.shown_text!r} failed: {outcome.error or render(outcome)}"
    return outcome


def test_exec_env_masks_the_containers_secret_values(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    web = box("web")
    ok(as_me(f"run -d --name {web} -e DB_PASSWORD={SECRET} -e AUTH=on -e MODE=demo-mode {image}"))

    env = ok(as_me(f"exec {web} env"))
    text = shown(env)
    assert SECRET not in text
    output = env.result.output  # type: ignore[union-attr]
    assert "DB_PASSWORD=***" in output
    assert "AUTH=***" in output  # a short value is still masked as KEY=VALUE
    assert "MODE=demo-mode" in output  # not secret-looking: shown as is

    # The value is masked wherever it appears, not only after its key; short values are not hunted elsewhere.
    echoed = ok(as_me(f"exec {web} sh -c 'echo \"the password is $DB_PASSWORD, auth $AUTH\"'"))
    assert echoed.result.output == "the password is ***, auth on\n"  # type: ignore[union-attr]

    # exec's own -e values are secrets too.
    own = ok(as_me(f"exec -e GITHUB_TOKEN=tok-123456789 {web} sh -c 'echo $GITHUB_TOKEN'"))
    assert "tok-123456789" not in shown(own)


def test_foreground_run_output_and_failed_start_mask_secrets(
    as_me: Callable[[str], Outcome], image: str, name: Callable[[str], str]
) -> None:
    ran = ok(as_me(f"run --rm -e API_TOKEN={SECRET} {image} sh -c 'echo token=$API_TOKEN; env'"))
    text = shown(ran)
    assert SECRET not in text
    assert "token=***" in ran.result.output and "API_TOKEN=***" in ran.result.output  # type: ignore[union-attr]

    # The engine's error names the command, which is the secret: masked too.
    failed = as_me(f"run --rm --name {name('fail')} -e API_TOKEN={SECRET} {image} {SECRET}")
    assert not failed.ok and failed.error is not None
    assert "executable file not found" in failed.error.message
    assert SECRET not in shown(failed)


def test_logs_top_and_inspect_mask_secrets(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str, docker_client: docker.DockerClient
) -> None:
    db = box("db")
    ok(
        as_me(
            f"run -d --name {db} -e POSTGRES_PASSWORD={SECRET} {image} sh -c 'echo started with {SECRET}; sleep 300; echo done'"
        )
    )
    assert SECRET in docker_client.containers.get(db).logs().decode()  # the engine has it

    logs = ok(as_me(f"logs {db}"))
    assert logs.result.text == "started with ***"  # type: ignore[union-attr]
    assert SECRET not in shown(logs)

    top = ok(as_me(f"top {db}"))
    assert "echo started with ***; sleep 300; echo done" in top.result.text  # type: ignore[union-attr]
    assert SECRET not in shown(top)

    inspected = ok(as_me(f"inspect {db}"))
    assert SECRET not in shown(inspected)
    assert SECRET not in json.dumps(inspected.result.document)  # type: ignore[union-attr]
    assert "echo started with ***" in dict(inspected.result.summary)["Command"]  # type: ignore[union-attr]


def test_the_policys_redact_words_and_the_images_env_count(
    engine: Engine, image: str, name: Callable[[str], str], docker_client: docker.DockerClient
) -> None:
    policy = builtin_policy().model_copy(update={"redact": ("SAUCE",)})
    pipeline = make_pipeline(engine, policy, run_timeout=20, exec_timeout=10)
    # An image whose own ENV carries a secret (as many official images' do): made here by committing a container.
    holder = docker_client.containers.create(image, name=name("holder"), command=["true"])
    tagged = name("img")
    try:
        holder.commit(repository=tagged, tag="latest", changes=["ENV SERVICE_PRIVATE_KEY=image-key-42"])
        ran = ok(pipeline.handle(f"run --rm -e SAUCE_RECIPE=ketchup-and-mayo {tagged} env", ME))
        output = ran.result.output  # type: ignore[union-attr]
        assert "SAUCE_RECIPE=***" in output and "SERVICE_PRIVATE_KEY=***" in output
        assert "ketchup-and-mayo" not in shown(ran) and "image-key-42" not in shown(ran)
    finally:
        holder.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(f"{tagged}:latest", force=True)


def test_image_inspect_masks_env_secrets_in_the_build_history_and_labels(
    as_me: Callable[[str], Outcome], name: Callable[[str], str], image: str, docker_client: docker.DockerClient
) -> None:
    tagged = name("hist")
    dockerfile = f"FROM {image}\nENV API_TOKEN=imagesecret99 PLAIN=x\nLABEL DB_PASSWORD=labelsecret42 tier=web\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{tagged}:latest", rm=True)
    try:
        raw = json.dumps(docker_client.api.inspect_image(f"{tagged}:latest"))
        assert "imagesecret99" in raw and "labelsecret42" in raw  # the engine shows both
        inspected = ok(as_me(f"image inspect {tagged}:latest"))
        document = json.dumps(inspected.result.document)  # type: ignore[union-attr]
        assert "imagesecret99" not in document and "labelsecret42" not in document
        assert "API_TOKEN=***" in document and "PLAIN=x" in document
        assert '"DB_PASSWORD": "***"' in document and '"tier": "web"' in document
        assert "imagesecret99" not in shown(inspected) and "labelsecret42" not in shown(inspected)
    finally:
        with contextlib.suppress(docker.errors.APIError):
            docker_client.images.remove(f"{tagged}:latest", force=True)


def test_secret_label_values_are_masked_in_dry_run_bodies_and_inspect(
    as_me: Callable[[str], Outcome], box: Callable[[str], str], image: str
) -> None:
    web = box("lbl")
    dry = ok(as_me(f"--dry-run run -d --name {web} --label DB_PASSWORD=drysecret17 --label tier=web {image} sleep 60"))
    assert "drysecret17" not in shown(dry) and "drysecret17" not in json.dumps(dry.engine_request)
    assert '"DB_PASSWORD": "***"' in json.dumps(dry.engine_request)

    ok(as_me(f"run -d --name {web} --label DB_PASSWORD=drysecret17 --label tier=web {image} sh -c 'sleep 60'"))
    inspected = ok(as_me(f"inspect {web}"))
    assert "drysecret17" not in shown(inspected)
    assert "drysecret17" not in json.dumps(inspected.result.document)  # type: ignore[union-attr]
    assert "DB_PASSWORD=***" in dict(inspected.result.summary)["Labels"]  # type: ignore[union-attr]
    assert "tier=web" in dict(inspected.result.summary)["Labels"]  # type: ignore[union-attr]
