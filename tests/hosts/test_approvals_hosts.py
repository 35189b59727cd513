"""Approvals on several hosts (issue #13): a rule for the hosts labelled ``env: staging`` holds ``rm`` there and
nowhere else; the approved request runs on the host it was asked for, whatever the channel's default is."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.approval_store import ApprovalStore
from bot.approvals import Approvals
from bot.audit import open_audit
from bot.hosts import HostSet, load_hosts_text
from bot.pipeline import Pipeline
from bot.policy import load_policy_text
from bot.serve import build_server
from handlers import build_registry
from tests.e2e.conftest import SlackDriver, all_text, e2e_settings
from tests.e2e.test_approvals import approval_policy, blocks_of, card_calls, click, drawn, request
from tests.hosts.conftest import hosts_yaml
from tests.support.fake_slack import FakeSlack
from tests.support.image import TEST_IMAGE
from tests.support.second_engine import SecondEngine

pytestmark = pytest.mark.docker


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    yield fake
    fake.close()


@pytest.fixture
def hosted(fake_slack: FakeSlack, second_engine: SecondEngine, tmp_path: Path) -> Iterator[SlackDriver]:
    hosts = HostSet(load_hosts_text(hosts_yaml(second_engine)), timeout=20)
    store = open_audit(str(tmp_path / "audit.db"))
    policy = load_policy_text(
        approval_policy(where="host_labels: {env: staging}"), known_commands=[*build_registry().names(), "history"]
    )
    pipeline = Pipeline(
        engine=hosts.engine("local"),
        hosts=hosts,
        policy=policy,
        registry=build_registry(),
        auditor=store,
        approvals=Approvals(ApprovalStore(store)),
        run_timeout=20,
    )
    server = build_server(e2e_settings(fake_slack), pipeline=pipeline, host="127.0.0.1", port=0)
    server.start()
    driver = SlackDriver(server.url, fake_slack)
    yield driver
    driver.close()
    server.stop(drain=30)
    store.close()
    hosts.close()


def test_the_rule_holds_rm_only_on_its_hosts(
    hosted: SlackDriver, second_engine: SecondEngine, docker_client: docker.DockerClient, name: Any
) -> None:
    there, here = name("web"), name("web")
    remote = second_engine.client()
    try:
        remote.containers.run(TEST_IMAGE, ["sleep", "300"], name=there, detach=True)
        docker_client.containers.run(TEST_IMAGE, ["sleep", "300"], name=here, detach=True)

        ran = hosted.reply(hosted.command(f"rm -f {here}", user="UALICE"))  # local: no rule, runs at once
        assert "removed" in all_text(ran).lower(), all_text(ran)
        with pytest.raises(docker.errors.NotFound):
            docker_client.containers.get(here)
        assert not card_calls(hosted.fake)

        approval_id, card = request(hosted, f"--context second --reason cleanup rm -f {there}")
        assert "on host *second*" in all_text(blocks_of(card))
        assert remote.containers.get(there).status == "running"
        assert click(hosted, approval_id, "approve", user="UBOB").startswith("Approved: it ran")
        with pytest.raises(docker.errors.NotFound):
            remote.containers.get(there)
        drawn(hosted.fake, approval_id, "Approved and run")
    finally:
        for client, ref in ((remote, there), (docker_client, here)):
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(ref).remove(force=True)
        remote.close()
