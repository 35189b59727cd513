"""The load test through the balancer with a replica killed midway: 500 signed commands from 50 users to three
replicas behind HAProxy; after half of them one replica gets SIGKILL. Every command is answered exactly once
(its own reply, or another replica's "interrupted" note), none runs twice.

Each command's text is unique (a name filter or a label of its own), so its audit rows can be counted. As Slack
does when an answer does not come, a request the balancer could not deliver (502/503, a cut connection) is sent
again with ``X-Slack-Retry-Num``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import docker
import httpx
import pytest

from tests.e2e.conftest import all_text
from tests.replicas.conftest import Cluster

pytestmark = [pytest.mark.docker, pytest.mark.load]

USERS = 50
PER_USER = 10
RUN_EVERY = 25  # one command in 25 starts a container (20 in all)
IMAGE = "local/busybox:test"


def test_500_commands_through_the_balancer_with_a_replica_killed_midway(
    replicas: Cluster, docker_client: docker.DockerClient
) -> None:
    token = uuid.uuid4().hex[:8]
    label = f"cdt-rl-{token}"
    texts: list[tuple[str, str]] = []  # (user, text), in sending order
    for n in range(USERS * PER_USER):
        if n % RUN_EVERY == RUN_EVERY - 1:
            texts.append(("UADMIN", f"run -d -l {label}={n} {IMAGE} sleep 60"))
        else:
            texts.append((f"ULOAD{n % USERS:02d}", f"ps -a -f name={label}-{n}"))
    bodies = [replicas.command_body(text, user=user) for user, text in texts]
    driver = replicas.driver()
    sent = Counter[str]()
    acks: dict[int, str] = {}
    statuses: dict[int, int] = {}
    retries = Counter[int]()
    lock = threading.Lock()
    half = threading.Event()
    victim = replicas.replicas[1]

    # one client for every sender (a client per request costs CPU in this process, which also plays Slack's part)
    http = httpx.Client(base_url=replicas.balancer_url, timeout=15, limits=httpx.Limits(max_connections=USERS + 10))

    def send(index: int) -> None:
        body, _ = bodies[index]
        for attempt in range(5):
            headers = driver.signed_headers(body)
            if attempt:
                headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}
            try:
                response = http.post("/slack/events", content=body.encode(), headers=headers)
            except httpx.HTTPError:
                status = 0
            else:
                status = response.status_code
            if status == 200:
                with lock:
                    acks[index] = all_text(response.json()) if response.content else ""
                    statuses[index] = 200
                break
            with lock:
                retries[index] += 1
            time.sleep(1.0)
        else:
            with lock:
                statuses[index] = status
        with lock:
            sent["done"] += 1
            if sent["done"] >= len(bodies) // 2:
                half.set()

    def user(number: int) -> None:
        for index in range(number, len(bodies), USERS):
            send(index)
            time.sleep(0.05)

    def killer() -> None:
        half.wait(120)
        replicas.kill(victim)

    started = time.monotonic()
    kill_thread = threading.Thread(target=killer)
    kill_thread.start()
    try:
        with ThreadPoolExecutor(max_workers=USERS) as pool:
            list(pool.map(user, range(USERS)))
        kill_thread.join(30)
        assert not victim.alive, "the replica was not killed midway"
        assert all(statuses.get(i) == 200 for i in range(len(bodies))), {i: s for i, s in statuses.items() if s != 200}

        # every command answered: its reply or, for the killed replica's, another replica's "interrupted" note
        def unanswered() -> list[int]:
            return [i for i, (_, url) in enumerate(bodies) if not replicas.fake.posts_to(url)]

        deadline = time.monotonic() + 90
        while unanswered() and time.monotonic() < deadline:
            time.sleep(1.0)
        missing = unanswered()
        assert not missing, [texts[i] for i in missing[:10]]
        time.sleep(3.0)  # a second answer, if any were coming, would have come by now
        posts = [replicas.fake.posts_to(url) for _, url in bodies]
        # one answer each; a second only when the killed replica was cut while posting its own reply, and then
        # the second is the note that says so
        doubled = [
            (texts[i][1], [all_text(p)[:120] for p in ps])
            for i, ps in enumerate(posts)
            if len(ps) != 1 and not (len(ps) == 2 and "may be just above" in all_text(ps[1]))
        ]
        assert not doubled, doubled[:5]
        interrupted = [i for i, ps in enumerate(posts) if "Interrupted" in all_text(ps[-1])]

        # none ran twice: at most one audit row per (unique) text, one container per run
        rows = replicas.sql("SELECT text, outcome FROM chatdock_audit WHERE text LIKE %s", f"%{label}%")
        per_text = Counter(text for text, _ in rows)
        assert max(per_text.values()) == 1, [t for t, c in per_text.items() if c > 1]
        for index, (_, text) in enumerate(texts):
            if not text.startswith("run "):
                continue
            number = text.split(f"{label}=", 1)[1].split()[0]
            made = docker_client.containers.list(all=True, filters={"label": f"{label}={number}"})
            assert len(made) <= 1, text
            if index not in interrupted:
                assert len(made) == 1, (text, all_text(posts[index][0]))
        print(
            f"\n500 commands through HAProxy, replica {victim.index} killed midway: "
            f"{time.monotonic() - started:.1f} s, {sum(1 for c in retries.values() if c)} re-sent by the client, "
            f"{sum('already received' in a for a in acks.values())} acked as already received, "
            f"{len(interrupted)} answered as interrupted by another replica"
        )
    finally:
        http.close()
        driver.close()
        for container in docker_client.containers.list(all=True, filters={"label": label}):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
