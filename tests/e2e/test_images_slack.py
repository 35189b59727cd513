"""Images from Slack, over HTTP exactly as Slack drives chatdock, with a real registry: the pull's progress is one
message edited in place (chat.postMessage, then chat.update), ending with the digest, size and time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from bot.engine import Engine
from bot.policy import load_policy_text
from bot.serve import build_server
from tests.conftest import PREFIX, SESSION, TEST_IMAGE, make_pipeline
from tests.e2e.conftest import CHANNEL, SlackDriver, all_text, e2e_settings, find_button
from tests.support.fake_slack import FakeSlack
from tests.support.registry import Registry

pytestmark = pytest.mark.docker


@pytest.fixture
def registry_slack(fake_slack: FakeSlack, engine: Engine, registry: Registry) -> Iterator[SlackDriver]:
    policy = load_policy_text(
        f"""
roles: {{admin: {{commands: ["*"]}}, viewer: {{commands: [images, "image inspect"]}}}}
grants: [{{role: admin, users: [UADMIN]}}, {{role: viewer, users: ["*"]}}]
images: ["{registry.address}/{PREFIX}*", "{TEST_IMAGE}"]
containers: {{names: ["{PREFIX}*"]}}
"""
    )
    server = build_server(
        e2e_settings(fake_slack), pipeline=make_pipeline(engine, policy, run_timeout=20), host="127.0.0.1", port=0
    )
    server.start()
    driver = SlackDriver(server.url, fake_slack)
    yield driver
    driver.close()
    server.stop(drain=30)


def test_pull_progress_is_one_message_edited_in_place(
    registry_slack: SlackDriver, fake_slack: FakeSlack, pushed: Any, docker_client: docker.DockerClient
) -> None:
    ref = pushed("slack/web:1.0", size=2 * 1024 * 1024)
    sent = registry_slack.command(f"pull {ref}")
    assert sent.response.status_code == 200 and sent.elapsed < 3.0
    assert sent.ack["response_type"] == "in_channel" and f"docker pull {ref}" in all_text(sent.ack)

    def finished() -> Any:
        done = [c for c in fake_slack.calls_to("chat.update") if "Pulled" in all_text(c.args.get("blocks"))]
        return done[-1] if done else None

    final = fake_slack.wait_for(finished, timeout=60, what="the pull's result edited into its message")
    (posted,) = [c for c in fake_slack.calls_to("chat.postMessage") if ref in all_text(c.args.get("blocks"))]
    assert "Pulling" in all_text(posted.args["blocks"]) and posted.args["channel"] == CHANNEL
    assert final.args["ts"] == posted.answer["ts"]  # the same message, edited
    assert all(c.args["ts"] == posted.answer["ts"] for c in fake_slack.calls_to("chat.update"))
    text = all_text(final.args["blocks"])
    digest = docker_client.images.get(ref).attrs["RepoDigests"][0].split("@")[1]
    assert digest in text and "MB" in text and " s" in text
    time.sleep(0.5)
    assert fake_slack.posts_to(sent.response_url) == []  # the result went into the progress message, not a new one


def test_run_of_a_missing_image_pulls_it_with_progress(
    registry_slack: SlackDriver, fake_slack: FakeSlack, pushed: Any, name: Any
) -> None:
    ref = pushed("slack/job:1")
    box = name("job")
    registry_slack.command(f"run --rm --name {box} {ref} echo from-the-registry")

    def finished() -> Any:
        for call in fake_slack.calls_to("chat.update"):
            if "from-the-registry" in all_text(call.args.get("blocks")):
                return call
        return None

    final = fake_slack.wait_for(finished, timeout=60, what="the run's result")
    assert f"pulled {ref} first" in all_text(final.args["blocks"])


def test_a_forbidden_pull_is_refused_in_the_ack_and_the_registry_never_hears_of_it(
    registry_slack: SlackDriver, fake_slack: FakeSlack, registry: Registry
) -> None:
    ref = registry.ref(f"forbidden-{SESSION}/app:1")
    sent = registry_slack.command(f"pull {ref}")
    assert sent.ack["response_type"] == "ephemeral"
    assert "not allowed by policy" in all_text(sent.ack) and "rule: images" in all_text(sent.ack)
    time.sleep(0.5)
    assert f"forbidden-{SESSION}" not in registry.log
    assert not fake_slack.calls_to("chat.postMessage")


def test_images_and_rmi_from_slack(
    registry_slack: SlackDriver, pushed: Any, docker_client: docker.DockerClient, name: Any
) -> None:
    ref = pushed("slack/listed:1")
    docker_client.images.pull(ref.rsplit(":", 1)[0], tag="1")
    holder = name("holder")
    docker_client.containers.create(ref, "true", name=holder, labels={"chatdock.test": SESSION})
    listed = registry_slack.reply(registry_slack.command(f"images {ref.rsplit(':', 1)[0]}", user="UVIEWER"))
    assert holder in all_text(listed) and "REPOSITORY" in all_text(listed)
    refused = registry_slack.reply(registry_slack.command(f"rmi {ref}"))
    assert "(must force)" in all_text(refused) and "is using its referenced image" in all_text(refused)
    docker_client.containers.get(holder).remove()
    removed = registry_slack.reply(registry_slack.command(f"rmi {ref}"))
    assert f"Untagged: {ref}" in all_text(removed)


def test_the_remove_image_button_asks_first_and_the_engine_still_guards_images_in_use(
    registry_slack: SlackDriver, fake_slack: FakeSlack, pushed: Any, docker_client: docker.DockerClient, name: Any
) -> None:
    ref = pushed("slack/button:1")
    registry_slack.command(f"pull {ref}")

    def finished() -> Any:
        for call in fake_slack.calls_to("chat.update"):
            if "Pulled" in all_text(call.args.get("blocks")) and ref in all_text(call.args.get("blocks")):
                return call
        return None

    result = {"blocks": fake_slack.wait_for(finished, timeout=60, what="the pull's result").args["blocks"]}
    _, button = find_button(result, "rmi")
    assert button["confirm"]["title"]["text"].startswith("Remove ") and button["style"] == "danger"
    image_id = docker_client.images.get(ref).id

    holder = name("holder")
    docker_client.containers.create(ref, "true", name=holder, labels={"chatdock.test": SESSION})
    refused = registry_slack.reply(registry_slack.click(result, "rmi"))
    assert refused["response_type"] == "ephemeral"  # only the clicker hears it; the message stays
    assert "(must be forced) - image is being used by stopped container" in all_text(refused)
    assert docker_client.images.get(ref).id == image_id  # nothing removed

    docker_client.containers.get(holder).remove()
    done = registry_slack.reply(registry_slack.click(result, "rmi", user="UADMIN"))
    assert done["replace_original"] is True
    assert f"Untagged: {ref}" in all_text(done) and "removed by <@UADMIN>" in all_text(done)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(ref)
    viewer = registry_slack.click(result, "rmi", user="UVIEWER")  # a viewer's click is a new request: refused
    assert "Denied" in all_text(registry_slack.reply(viewer))
