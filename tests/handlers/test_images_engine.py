"""Images from chat against a real engine and a real registry (Debian's docker-registry on 127.0.0.1).

Transcripts: given this policy and this text, the reply says this, the engine now holds that, and the
registry's log shows what was (or was not) asked of it.
"""

from __future__ import annotations

import json
import time
from typing import Any

import docker
import pytest

from bot.engine import Engine
from bot.models import Actor, ImageList, ImageRemoval, Inspection, Progress, PullOutcome, RunOutcome
from bot.pipeline import Pipeline
from bot.policy import Policy, builtin_policy, load_policy_text
from bot.render_blocks import render_message
from bot.render_text import render
from bot.shell import exit_status
from tests.conftest import PREFIX, SESSION, make_pipeline
from tests.support.image import TEST_IMAGE
from tests.support.registry import Registry, free_port

ADMIN = Actor(user="UADMIN", channel="COPS")


def registry_policy(registry: Registry, *, extra_images: str = "") -> Policy:
    return load_policy_text(
        f"""
roles: {{admin: {{commands: ["*"]}}}}
grants: [{{role: admin, users: [UADMIN]}}]
images: ["{registry.address}/{PREFIX}*", "{TEST_IMAGE}", "{PREFIX}inuse/*"{extra_images}]
containers: {{names: ["{PREFIX}*"]}}
"""
    )


@pytest.fixture
def images_pipeline(engine: Engine, registry: Registry) -> Pipeline:
    return make_pipeline(engine, registry_policy(registry), run_timeout=20)


def present(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_pull_downloads_with_progress_and_reports_digest_size_time(
    images_pipeline: Pipeline, pushed: Any, docker_client: docker.DockerClient
) -> None:
    ref = pushed("team/web:1.0", size=3 * 1024 * 1024)
    assert not present(docker_client, ref)
    steps: list[Progress] = []
    outcome = images_pipeline.handle(f"pull {ref}", ADMIN, progress=steps.append)
    assert outcome.ok, outcome.error
    result = outcome.result
    assert isinstance(result, PullOutcome)
    assert result.image == ref
    assert result.digest.startswith("sha256:")
    assert result.size > 3_000_000
    assert result.layers >= 1 and not result.up_to_date
    assert 0 < result.seconds < 60
    assert present(docker_client, ref)
    assert steps and steps[-1].done and steps[-1].subject == ref
    assert steps[-1].layers_done == steps[-1].layers_total >= 1
    assert steps[-1].bytes_total >= 3 * 1024 * 1024 * 0.9  # compressed random data stays about its size
    again = images_pipeline.handle(f"image pull {ref}", ADMIN)
    assert isinstance(again.result, PullOutcome) and again.result.up_to_date
    assert again.result.digest == result.digest


def test_pull_of_a_forbidden_image_never_reaches_the_registry(
    images_pipeline: Pipeline, registry: Registry, docker_client: docker.DockerClient
) -> None:
    ref = registry.ref(f"elsewhere-{SESSION}/secret:1")
    outcome = images_pipeline.handle(f"pull {ref}", ADMIN)
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.kind == "denied" and outcome.error.rule == "images"
    assert f"Image {ref} is not allowed by policy" == outcome.error.message
    time.sleep(0.2)
    assert f"elsewhere-{SESSION}" not in registry.log
    assert not present(docker_client, ref)


def test_builtin_policy_never_pulls(engine: Engine, registry: Registry) -> None:
    local = make_pipeline(engine, builtin_policy())
    ref = registry.ref(f"{PREFIX}local-only/x:1")
    for text in (f"pull {ref}", f"run --pull always --rm {TEST_IMAGE} true"):
        outcome = local.handle(text, Actor(user="local"))
        assert outcome.error is not None and outcome.error.rule == "images[@local]", text
        assert "may not be pulled: the policy allows only images already on this host" in outcome.error.message
    assert f"{PREFIX}local-only" not in registry.log


def test_pull_of_a_missing_tag_says_so(images_pipeline: Pipeline, registry: Registry) -> None:
    ref = registry.ref(f"{PREFIX}team/web:no-such-tag")
    outcome = images_pipeline.handle(f"pull {ref}", ADMIN)
    assert outcome.error is not None and outcome.error.kind == "not_found"
    assert "manifest unknown" in outcome.error.message or "not found" in outcome.error.message


def test_pull_from_a_registry_that_is_down(engine: Engine) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    policy = load_policy_text(
        f'roles: {{a: {{commands: ["*"]}}}}\ngrants: [{{role: a, users: ["*"]}}]\nimages: ["{address}/*"]\n'
    )
    outcome = make_pipeline(engine, policy).handle(f"pull {address}/{PREFIX}down:1", ADMIN)
    assert not outcome.ok and outcome.error is not None
    assert "connection refused" in outcome.error.message
    assert address in outcome.error.message


def test_run_pulls_a_missing_image_first(
    images_pipeline: Pipeline, pushed: Any, docker_client: docker.DockerClient, name: Any
) -> None:
    ref = pushed("team/job:2")
    steps: list[Progress] = []
    outcome = images_pipeline.handle(
        f"run --rm --name {name('job')} {ref} echo pulled-and-ran", ADMIN, progress=steps.append
    )
    assert outcome.ok, outcome.error
    assert isinstance(outcome.result, RunOutcome)
    assert "pulled-and-ran" in outcome.result.output
    assert outcome.result.pulled is not None and outcome.result.pulled.image == ref
    assert steps and steps[-1].done
    assert present(docker_client, ref)


def test_run_pull_never_and_bad_value(
    images_pipeline: Pipeline, pushed: Any, docker_client: docker.DockerClient
) -> None:
    ref = pushed("team/never:1")
    outcome = images_pipeline.handle(f"run --pull never --rm {ref} true", ADMIN)
    assert outcome.error is not None and outcome.error.kind == "not_found"
    assert "`--pull never`" in outcome.error.message
    assert not present(docker_client, ref)
    assert not [c for c in docker_client.api.containers(all=True) if c["Image"] == ref]  # nothing left behind
    bad = images_pipeline.handle(f"run --pull sometimes {ref}", ADMIN)
    assert bad.error is not None and bad.error.kind == "usage"
    assert '"always", "missing" or "never"' in bad.error.message


def test_run_pull_always_plans_the_pull(images_pipeline: Pipeline, pushed: Any) -> None:
    ref = pushed("team/always:1")
    dry = images_pipeline.handle(f"run --dry-run --pull always {ref}", ADMIN)
    assert dry.ok and dry.engine_request is not None
    assert dry.engine_request[0] == {
        "method": "POST",
        "path": "/images/create",
        "params": {"fromImage": ref.rsplit(":", 1)[0], "tag": "1"},
    }


def test_images_lists_the_containers_using_each(
    images_pipeline: Pipeline, build_image: Any, docker_client: docker.DockerClient, name: Any
) -> None:
    ref = f"{PREFIX}listed/app:1"
    build_image(ref)
    box = name("user")
    docker_client.containers.create(ref, "true", name=box, labels={"chatdock.test": SESSION})
    outcome = images_pipeline.handle(f"images {PREFIX}listed/app", ADMIN)
    assert isinstance(outcome.result, ImageList)
    (row,) = outcome.result.images
    assert (row.repository, row.tag, row.containers) == (f"{PREFIX}listed/app", "1", (box,))
    quiet = images_pipeline.handle(f"images -q -f reference={PREFIX}listed/*", ADMIN)
    assert isinstance(quiet.result, ImageList) and [i.id for i in quiet.result.images] == [row.id]
    bad = images_pipeline.handle("images -f color=red", ADMIN)
    assert bad.error is not None and "invalid filter 'color'" in bad.error.message


def test_rmi_refuses_an_image_in_use_with_dockers_words(
    images_pipeline: Pipeline, build_image: Any, docker_client: docker.DockerClient, name: Any
) -> None:
    ref = f"{PREFIX}inuse/app:1"
    image_id = build_image(ref)
    docker_client.containers.create(ref, "true", name=name("holder"), labels={"chatdock.test": SESSION})
    outcome = images_pipeline.handle(f"rmi {ref}", ADMIN)
    assert not outcome.ok
    assert isinstance(outcome.result, ImageRemoval)
    (item,) = outcome.result.items
    assert item.error.startswith(f'conflict: unable to remove repository reference "{ref}" (must force) - container ')
    assert f"is using its referenced image {image_id.removeprefix('sha256:')[:12]}" in item.error
    assert present(docker_client, ref)
    forced = images_pipeline.handle(f"rmi -f {ref}", ADMIN)
    assert forced.ok and isinstance(forced.result, ImageRemoval)
    assert forced.result.untagged == (ref,)
    assert not present(docker_client, ref)


def test_rmi_is_limited_to_images_the_policy_covers(
    images_pipeline: Pipeline, build_image: Any, docker_client: docker.DockerClient
) -> None:
    ref = f"{PREFIX}outside/app:1"
    build_image(ref)
    outcome = images_pipeline.handle(f"rmi {ref}", ADMIN)
    assert outcome.error is not None and outcome.error.kind == "denied"
    assert present(docker_client, ref)
    dry = images_pipeline.handle(f"rmi --dry-run {TEST_IMAGE}", ADMIN)  # allowed, and only a dry run
    assert dry.ok and dry.engine_request == [
        {"method": "DELETE", "path": f"/images/{TEST_IMAGE}", "params": {"force": False, "noprune": False}}
    ]
    assert present(docker_client, TEST_IMAGE)
    missing = images_pipeline.handle(f"rmi {PREFIX}nothing:1", ADMIN)
    assert isinstance(missing.result, ImageRemoval) and not missing.ok
    assert missing.result.items[0].error == f"No such image: {PREFIX}nothing:1"


def test_rmi_force_of_a_missing_image_warns_and_succeeds(
    images_pipeline: Pipeline, build_image: Any, docker_client: docker.DockerClient
) -> None:
    """docker 28: ``docker rmi -f nosuch`` prints "No such image" and exits 0, as ``rm -f`` does."""
    ghost = f"{PREFIX}nothing:1"
    alone = images_pipeline.handle(f"rmi -f {ghost}", ADMIN)
    assert alone.ok and exit_status(alone) == 0
    assert isinstance(alone.result, ImageRemoval)
    assert alone.result.items[0].ok and alone.result.items[0].warning == f"No such image: {ghost}"
    assert render(alone) == f"Error response from daemon: No such image: {ghost}"
    reply = json.dumps(render_message(alone).blocks, ensure_ascii=False)
    assert f"⚠️ *{ghost}*: No such image: {ghost}" in reply and "❌" not in reply
    ref = f"{PREFIX}inuse/gone:1"
    build_image(ref)
    both = images_pipeline.handle(f"rmi -f {ref} {ghost}", ADMIN)
    assert both.ok and exit_status(both) == 0 and not present(docker_client, ref)
    strict = images_pipeline.handle(f"rmi {ghost}", ADMIN)
    assert not strict.ok and exit_status(strict) == 1


def test_image_prune_dry_run_then_real(
    engine: Engine, build_image: Any, docker_client: docker.DockerClient, name: Any
) -> None:
    local = make_pipeline(engine, builtin_policy())
    unused = f"{PREFIX}prune/unused:1"
    used = f"{PREFIX}prune/used:1"
    unused_id = build_image(unused, size=200_000)
    used_id = build_image(used)
    docker_client.containers.create(used, "true", name=name("keeper"), labels={"chatdock.test": SESSION})
    dangling_id = build_image(f"{PREFIX}prune/dangling:1")
    build_image(f"{PREFIX}prune/dangling:1")  # the tag moves on: the first build is left dangling
    only_ours = f"--filter label=chatdock.test={SESSION}"

    dry = local.handle(f"image prune -a {only_ours} --dry-run", Actor(user="local"))
    assert dry.ok, dry.error
    listed = "\n".join(dry.result.lines)  # type: ignore[union-attr]
    assert unused in listed and dangling_id.removeprefix("sha256:")[:12] in listed and used not in listed
    assert listed.splitlines()[-1].startswith("Would remove ") and ", freeing " in listed
    assert present(docker_client, unused) and present(docker_client, dangling_id)

    dangling_only = local.handle(f"image prune {only_ours}", Actor(user="local"))
    assert isinstance(dangling_only.result, ImageRemoval)
    assert dangling_id in dangling_only.result.deleted
    assert present(docker_client, unused)

    real = local.handle(f"image prune -a {only_ours}", Actor(user="local"))
    assert real.ok and isinstance(real.result, ImageRemoval)
    assert unused_id in real.result.deleted and real.result.space >= 200_000
    assert not present(docker_client, unused)
    assert present(docker_client, used_id) and present(docker_client, TEST_IMAGE)


def test_image_prune_from_chat_keeps_images_the_policy_does_not_cover(
    images_pipeline: Pipeline, build_image: Any, docker_client: docker.DockerClient
) -> None:
    ref = f"{PREFIX}uncovered/app:1"
    build_image(ref)
    dry = images_pipeline.handle(f"image prune -a --filter label=chatdock.test={SESSION} --dry-run", ADMIN)
    assert dry.ok
    assert ref not in "\n".join(dry.result.lines)  # type: ignore[union-attr]
    images_pipeline.handle(f"image prune -a --filter label=chatdock.test={SESSION}", ADMIN)
    assert present(docker_client, ref)


def test_image_inspect_masks_secret_environment_values(images_pipeline: Pipeline, build_image: Any) -> None:
    ref = f"{PREFIX}secretive/app:1"
    build_image(ref, env={"DB_PASSWORD": "hunter2-in-the-image", "MODE": "prod"})
    local = make_pipeline(images_pipeline.engine, builtin_policy())
    outcome = local.handle(f"image inspect {ref}", Actor(user="local"))
    assert outcome.ok and isinstance(outcome.result, Inspection)
    assert "hunter2" not in outcome.model_dump_json()
    assert "DB_PASSWORD=***" in outcome.result.document["Config"]["Env"]
    assert "MODE=prod" in dict(outcome.result.summary)["Env"]
    missing = local.handle(f"image inspect {PREFIX}none:1", Actor(user="local"))
    assert missing.error is not None and missing.error.message == f"No such image: {PREFIX}none:1"
