"""Replicas never double a command and never lose a reply (issue 15), tested with real processes, HAProxy,
PostgreSQL and the engine; Slack is the fake at its HTTP boundary."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from tests.e2e.conftest import all_text
from tests.replicas.conftest import Cluster

pytestmark = pytest.mark.docker

IMAGE = "local/busybox:test"


@pytest.fixture
def labelled(docker_client: docker.DockerClient) -> Iterator[Any]:
    """``labelled(key)`` → the containers carrying label ``key``; all of them are removed afterwards."""
    keys: list[str] = []

    def find(key: str) -> list[Any]:
        if key not in keys:
            keys.append(key)
        return list(docker_client.containers.list(all=True, filters={"label": key}))

    yield find
    for key in keys:
        for container in docker_client.containers.list(all=True, filters={"label": key}):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)


def rows_with(cluster: Cluster, fragment: str) -> list[tuple[Any, ...]]:
    return cluster.sql(
        "SELECT request_id, outcome, delivery, instance FROM chatdock_audit WHERE text LIKE %s", f"%{fragment}%"
    )


def settle(cluster: Cluster, response_url: str, *, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    """The posts to ``response_url`` once ``count`` arrived and nothing more came for a moment."""
    posts = cluster.fake.wait_posts(response_url, count, timeout=timeout)
    time.sleep(2.0)
    return cluster.fake.posts_to(response_url) or posts


def test_the_same_signed_command_sent_to_every_replica_and_the_balancer_runs_once(
    replicas: Cluster, labelled: Any
) -> None:
    key = f"cdt-dup-{uuid.uuid4().hex[:8]}"
    body, response_url = replicas.command_body(f"run -d -l {key}=1 {IMAGE} sleep 60")
    acks = []
    for url in [r.url for r in replicas.replicas] + [replicas.balancer_url]:
        driver = replicas.driver(url)
        sent = driver.post(body, driver.signed_headers(body), response_url)  # same body, a fresh signature
        assert sent.response.status_code == 200 and sent.elapsed < 3.0
        acks.append(all_text(sent.ack))
        driver.close()
    assert "already received" not in acks[0]
    assert all("already received" in ack for ack in acks[1:]), acks
    posts = settle(replicas, response_url)
    assert len(posts) == 1 and "already received" not in all_text(posts[0])
    assert len(labelled(key)) == 1
    rows = rows_with(replicas, key)
    assert len(rows) == 1 and rows[0][1] == "ok" and rows[0][2] == "response_url"


def test_a_slack_retry_of_a_command_has_no_second_effect(replicas: Cluster, labelled: Any) -> None:
    key = f"cdt-retry-{uuid.uuid4().hex[:8]}"
    body, response_url = replicas.command_body(f"run -d -l {key}=1 {IMAGE} sleep 60")
    driver = replicas.driver()
    first = driver.post(body, driver.signed_headers(body), response_url)
    retry_headers = {**driver.signed_headers(body), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    retried = driver.post(body, retry_headers, response_url)
    driver.close()
    assert first.response.status_code == 200 and retried.response.status_code == 200
    assert "already received" in all_text(retried.ack)
    assert len(settle(replicas, response_url)) == 1
    assert len(labelled(key)) == 1 and len(rows_with(replicas, key)) == 1


def test_a_click_delivered_twice_stops_once_and_replies_once(
    replicas: Cluster, docker_client: docker.DockerClient, name: Any
) -> None:
    web = name("web")
    driver = replicas.driver()
    try:
        ran = driver.reply(driver.command(f"run -d --name {web} {IMAGE} sleep 60"), timeout=60)
        container = docker_client.containers.get(web)
        body, response_url = driver.click_body(ran, "stop", container_id=container.id)
        first, second = replicas.replicas[0], replicas.replicas[1]
        for replica in (first, second):
            to = replicas.driver(replica.url)
            sent = to.post(body, to.signed_headers(body), response_url)
            assert sent.response.status_code == 200 and sent.elapsed < 3.0
            to.close()
        posts = settle(replicas, response_url)
        assert len(posts) == 1 and "stopped by <@UADMIN>" in all_text(posts[0])
        container.reload()
        assert container.status == "exited"
        rows = replicas.sql(
            "SELECT outcome FROM chatdock_audit WHERE source = 'button' AND container_ids LIKE %s", f"%{container.id}%"
        )
        assert [row[0] for row in rows] == ["ok"]
    finally:
        driver.close()
        with contextlib.suppress(docker.errors.APIError):
            docker_client.containers.get(web).remove(force=True)


def test_the_lease_moves_within_30_s_when_its_holder_is_killed(replicas: Cluster) -> None:
    deadline = time.monotonic() + 30
    while (holder := replicas.lease_holder_pid()) is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert holder is not None, "no replica took the maintenance lease"
    victim = replicas.by_pid(holder)
    replicas.kill(victim)
    killed_at = time.monotonic()
    new_holder = None
    while time.monotonic() - killed_at < 30:
        new_holder = replicas.lease_holder_pid()
        if new_holder is not None and new_holder != holder:
            break
        time.sleep(0.25)
    moved_after = time.monotonic() - killed_at
    assert new_holder is not None and new_holder != holder, "the lease did not move within 30 s"
    assert replicas.by_pid(new_holder).alive
    print(f"lease moved after {moved_after:.1f} s")


def test_a_replica_killed_mid_command_gets_its_request_answered_by_another(
    replicas: Cluster, docker_client: docker.DockerClient, name: Any
) -> None:
    web = name("web")
    victim = replicas.replicas[-1]
    to = replicas.driver(victim.url)
    try:
        # a foreground run: the replica waits for the container (up to CHATDOCK_RUN_TIMEOUT) before replying
        sent = to.command(f"run --name {web} {IMAGE} sleep 120")
        assert sent.response.status_code == 200 and "already received" not in all_text(sent.ack)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(docker.errors.NotFound):
                if docker_client.containers.get(web).status == "running":
                    break
            time.sleep(0.2)
        replicas.kill(victim)
        posts = settle(replicas, sent.response_url, timeout=60)
        assert len(posts) == 1, posts
        text = all_text(posts[0])
        assert "Interrupted" in text and f"container {web}" in text and "is running" in text, text
        assert sent.response_url not in text
        rows = rows_with(replicas, web)
        assert len(rows) == 1 and rows[0][1] == "interrupted" and "another replica" in (rows[0][2] or "")
        for replica in replicas.replicas:  # the bearer capability is never logged
            assert sent.response_url.rsplit("/", 1)[1] not in replica.log.read_text()
    finally:
        to.close()
        with contextlib.suppress(docker.errors.APIError):
            docker_client.containers.get(web).remove(force=True)
