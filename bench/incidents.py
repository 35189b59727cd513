"""``make bench``'s incident measures (issue 12), on the real engine with the fake Slack, in this process.

1. Latency: 100 containers die at 20 a second (each blocks reading its own pipe in a shared volume; one
   helper container writes to them 50 ms apart). For the k-th death, the time from the engine's ``die`` event
   (its ``timeNano``) to the first ``chat.postMessage``/``chat.update`` after which the channel's messages
   count k incidents. Target: p99 ≤ 1 s.
2. Burst: 100 containers die at once. Every death counted in the messages; ``chat.postMessage`` at most one a
   second (per channel) and ``chat.update`` within the app budget (50 a minute, 5 at once), per minute.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors

from bot.audit import SqliteAudit
from bot.config import Settings
from bot.engine import Engine
from bot.event_service import EventService
from bot.hosts import HostSet
from bot.incident_store import IncidentStore
from bot.policy import load_policy_text
from bot.wiring import build_web_client
from tests.support.fake_slack import FakeSlack

CHANNEL = "C0BENCH"
DEATHS = 100
RATE = 20.0  # deaths a second in the latency measure
P99_TARGET = 1.0
_COUNT = re.compile(r"\bcrashed (\d+)\)")


def _shown(calls: list[Any]) -> list[int]:
    """After each Slack call, how many incidents the channel's messages count (their latest versions)."""
    latest: dict[str, int] = {}
    out = []
    for call in calls:
        ts = str(call.answer.get("ts") if call.method == "chat.postMessage" else call.args.get("ts"))
        text = str(call.args.get("text", ""))
        match = _COUNT.search(text)
        latest[ts] = int(match.group(1)) if match else (1 if ": crashed" in text else 0)
        out.append(sum(latest.values()))
    return out


class _Run:
    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.client = client
        self.image = image
        self.tag = f"bench-inc-{uuid.uuid4().hex[:6]}"
        self.workdir = Path(tempfile.mkdtemp(prefix="chatdock-bench-incidents-"))
        self.fake = FakeSlack()
        self.store = SqliteAudit(self.workdir / "audit.db")
        policy = load_policy_text(f'containers: {{names: ["{self.tag}-*"]}}\nnotify: [{{channel: {CHANNEL}}}]')
        self.engine = Engine(timeout=30)
        self.service = EventService(
            hosts=HostSet.single(self.engine),
            store=self.store,
            client=build_web_client(Settings(slack_bot_token=self.fake.token, slack_api_url=self.fake.api_url)),
            policy=lambda: policy,
        )
        self.volume = client.volumes.create(f"{self.tag}-go")
        self.names: list[str] = []

    def start(self) -> None:
        self.service.start()
        deadline = time.monotonic() + 30
        while not self.service.watchers or not all(w.connected.is_set() for w in self.service.watchers.values()):
            if time.monotonic() > deadline:
                raise RuntimeError("the event watcher did not connect")
            time.sleep(0.05)

    def containers(self, prefix: str, count: int) -> list[str]:
        names = [f"{self.tag}-{prefix}-{i}" for i in range(count)]

        def run(name: str) -> None:
            wait = f"mkfifo /go/{name} && read line < /go/{name}; exit 1"  # blocks, without polling, until told
            self.client.containers.run(
                self.image, ["sh", "-c", wait], name=name, detach=True, volumes={self.volume.name: {"bind": "/go"}}
            )

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(run, names))
        self.names += names
        return names

    def trigger(self, names: list[str], *, gap: float) -> None:
        for name in names:  # every container has made its pipe
            deadline = time.monotonic() + 30
            while self.client.containers.get(name).status != "running" and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(0.5)
        script = "; ".join(f"echo > /go/{n}; sleep {gap}" if gap else f"echo > /go/{n}" for n in names)
        self.client.containers.run(
            self.image, ["sh", "-c", script], remove=True, volumes={self.volume.name: {"bind": "/go"}}
        )

    def recorded(self, names: list[str], timeout: float = 120) -> list[float]:
        """The engine times of the deaths of ``names``, once all are recorded."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in IncidentStore(self.store).recent(limit=1000) if r.container in wanted]
            if len(rows) == len(wanted):
                return sorted(r.first_seen for r in rows)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(rows)} of {len(wanted)} deaths recorded")
            time.sleep(0.2)

    def settle(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.service.notifier.idle():
            if time.monotonic() > deadline:
                raise RuntimeError("the notifier did not finish sending")
            time.sleep(0.1)

    def chat_calls(self) -> list[tuple[float, Any]]:
        """(wall time, call) of every chat.* call, in order (the notifier sends one at a time)."""
        offset = time.time() - time.monotonic()
        arrivals = [t + offset for t, path in self.fake.arrivals if path.startswith("/api/chat.")]
        calls = [c for c in self.fake.calls if c.method.startswith("chat.")]
        return list(zip(arrivals, calls, strict=True))

    def close(self) -> None:
        self.service.stop()
        for name in self.names:
            with contextlib.suppress(docker.errors.APIError):
                self.client.containers.get(name).remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            self.volume.remove(force=True)
        self.store.close()
        self.engine.close()
        self.fake.close()


def measure(
    *,
    client: docker.DockerClient,
    image: str,
    report: Any,
    percentile: Callable[[list[float], float], float],
    ms: Callable[[float], str],
) -> None:
    """Add the incident rows to ``report`` (see the module doc)."""
    run = _Run(client, image)
    try:
        run.start()
        names = run.containers("lat", DEATHS)
        run.trigger(names, gap=1 / RATE)
        deaths = run.recorded(names)
        run.settle()
        timed = run.chat_calls()
        shown = _shown([c for _, c in timed])
        latencies = []
        for k, died in enumerate(deaths, 1):
            at = next((t for (t, _), n in zip(timed, shown, strict=True) if n >= k), None)
            latencies.append((at - died) if at is not None else float("inf"))
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        report.add(
            f"incident latency, event → Slack, {RATE:g} deaths/s",
            f"p50 {ms(p50)}, p99 {ms(p99)}",
            "",
            "",
            f"p99 ≤ {P99_TARGET * 1000:.0f} ms",
            p99 <= P99_TARGET,
        )
        before = len(timed)
        names = run.containers("burst", DEATHS)
        started = time.time()
        run.trigger(names, gap=0)
        run.recorded(names)
        run.settle()
        time.sleep(1.0)
        run.settle()
        burst = run.chat_calls()[before:]
        counted = _shown([c for _, c in run.chat_calls()])[-1] - _shown([c for _, c in timed])[-1]
        minute = [(t, c) for t, c in burst if t - started <= 60]
        posts = sum(1 for _, c in minute if c.method == "chat.postMessage")
        edits = sum(1 for _, c in minute if c.method == "chat.update")
        report.add(
            f"incidents: {DEATHS} deaths at once",
            f"{counted} counted; {posts} posts, {edits} edits in the first minute",
            "",
            "",
            f"all {DEATHS} counted, posts ≤ 60, edits ≤ 55",
            counted == DEATHS and posts <= 60 and edits <= 55,
        )
    finally:
        run.close()
