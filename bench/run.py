"""``make bench``: chatdock under load, driven over HTTP exactly as Slack drives it, against the real engine.

Processes (each its own, so no two share a GIL and the server's RSS is its own):

- ``chatdock serve --http`` on 127.0.0.1, configured only through the environment, as in production:
  ``SLACK_API_URL`` points at the fake Slack, ``CHATDOCK_POLICY`` at a bench policy, ``CHATDOCK_DB`` at a temp file.
- the fake Slack (``python -m bench.servers fake``): Web API + response_urls, noting when each reply arrives.
- the do-nothing baseline (``python -m bench.servers null``): stdlib ThreadingHTTPServer answering 200.
- this process: the senders (a new connection per request, as Slack opens them, signed form bodies) and the
  ``docker`` CLI runs it compares with.

Measures (one run, side by side), then a table; the exit status is 1 when a target is missed:

1. ack latency of 200 ``/docker ps`` from 30 concurrent senders while 10 ``run --rm IMAGE sleep 8`` are in flight,
   against the do-nothing server under the same burst.
2. ``/docker ps -a`` over 200+ containers, request sent → reply received (response_url post, or the
   ``chat.postMessage`` when the reply carries a file), against ``docker ps -a``; medians of 5.
3. ``/docker stats`` of 20 running containers against ``docker stats --no-stream`` of the same; medians of 3.
4. resident memory of the serving process, idle and after 1,000+ commands.
5. sustained throughput of read-only commands (closed loop), ack → reply delivered.
6. ``/docker pull`` of a 50 MB+ image from a local registry (Debian's docker-registry on 127.0.0.1; the image is
   built here: random data on the test image), sent → result edited into the progress message, against
   ``docker pull`` of the same image (removed before each); medians of 3. And how many times the progress message
   was edited (at most one edit per 3 s plus the result, within 50 a minute).
7. replicas (bench/replicas.py): the read mix through HAProxy to two replicas on one PostgreSQL against one, and
   the ack p99 with two replicas.
8. hosts (bench/hosts.py): ack p99 and ``ps -a`` sent → reply with a second host configured and hung, as ratios
   against the single-host figures in the same run (within 1.2×).
9. incidents (bench/incidents.py): event → Slack message latency at 20 container deaths a second (p99 ≤ 1 s),
   and the posts and edits of the first minute after 100 deaths at once (every one counted, within the limits).

Everything the bench creates is named ``bench-<run>-*`` and labelled ``chatdock.bench=<run>`` (the containers
chatdock's ``run`` makes carry ``chatdock.owner=<the bench user>``); all of it is removed at the end, also on
Ctrl-C or failure. ``python -m bench --only ack,psa`` runs some measures only (for profiling).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode, urlsplit

import docker
import docker.errors
from slack_sdk.signature import SignatureVerifier

from tests.support.image import TEST_IMAGE, ensure_test_image
from tests.support.registry import Registry, build_test_image, push_and_forget, remove_session_images, start_registry

ROOT = Path(__file__).resolve().parent.parent
SIGNING_SECRET = "bench0123456789abcdef0123456789a"
TEAM = "T0TEAM"  # the workspace the fake Slack's auth.test names: everyone here is at home
BENCH_LABEL = "chatdock.bench"
OWNER_LABEL = "chatdock.owner"  # bot.policy.OWNER_LABEL: what chatdock's own `run` puts on its containers

SENDERS = 30
BURST = 200
SLOW = 10
SLOW_SECONDS = 8
CREATED = 200
RUNNING = 20
PS_REPEATS = 5
STATS_REPEATS = 3
MEMORY_COMMANDS = 1000
THROUGHPUT_CLIENTS = 16
THROUGHPUT_MIN = 500

PULL_REPEATS = 5
PULL_BYTES = 52 * 1024 * 1024

PHASES = ("ack", "psa", "stats", "throughput", "pull", "replicas", "hosts", "incidents")


# --------------------------------------------------------------------------------------------- helpers


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.0995 else f"{seconds * 1000:.1f} ms"


def machine() -> str:
    mem_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpus = len(os.sched_getaffinity(0))
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        engine = docker.from_env().version().get("Version", "?")
    except Exception:
        engine = "?"
    return (
        f"machine: nproc {cpus}{f' ({model})' if model else ''}, memory {mem_kb / 1024 / 1024:.1f} GiB, "
        f"kernel {platform.release()}, Python {platform.python_version()}, Docker Engine {engine}"
    )


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for pid {pid}")


# --------------------------------------------------------------------------------------------- processes


@dataclass
class Helper:
    """A ``bench.servers`` process; it exits when its stdin closes."""

    kind: str
    popen: subprocess.Popen[str]
    url: str
    extra: list[str]

    @classmethod
    def start(cls, kind: str) -> Helper:
        popen = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", kind],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert popen.stdout is not None
        first = popen.stdout.readline().split()
        if not first:
            popen.kill()
            raise RuntimeError(f"the {kind} server did not start")
        return cls(kind=kind, popen=popen, url=first[0], extra=first[1:])

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            assert self.popen.stdin is not None
            self.popen.stdin.close()
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)


@dataclass
class Chatdock:
    """``chatdock serve --http`` as a subprocess, configured through its environment only."""

    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    @classmethod
    def start(cls, *, workdir: Path, fake: Helper, policy: Path, extra_env: dict[str, str]) -> Chatdock:
        exe = shutil.which("chatdock", path=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
        command = [exe] if exe else [sys.executable, "-m", "bot"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATDOCK_"))}
        env.update(
            SLACK_BOT_TOKEN=fake.extra[0],
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake.url + "/api/",
            CHATDOCK_POLICY=str(policy),
            CHATDOCK_DB=str(workdir / "audit.db"),
        )
        env.update(extra_env)
        log = workdir / "chatdock.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [*command, "serve", "--http", "--host", "127.0.0.1", "--port", "0"],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            marker = "chatdock serving HTTP (/slack/events) on "
            if marker in text:
                url = text.split(marker, 1)[1].split()[0]
                server = cls(popen=popen, url=url, log=log)
                server.wait_healthy(deadline)
                return server
            if popen.poll() is not None:
                raise RuntimeError(f"chatdock serve exited with status {popen.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        popen.kill()
        raise RuntimeError("chatdock serve did not start within 60 s")

    def wait_healthy(self, deadline: float) -> None:
        parts = urlsplit(self.url)
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            time.sleep(0.1)
        raise RuntimeError("chatdock /healthz did not answer 200")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


# --------------------------------------------------------------------------------------------- Slack's side


@dataclass
class Prepared:
    body: bytes
    headers: dict[str, str]
    keys: tuple[str, ...]  # what the fake notes when the reply arrives


@dataclass
class Sent:
    prepared: Prepared
    started: float
    elapsed: float
    status: int
    body: bytes = b""
    error: str = ""

    @property
    def acked(self) -> float:
        return self.started + self.elapsed


class SlackSide:
    """What Slack sends chatdock: signed form bodies, one new connection per request."""

    def __init__(self, fake: Helper, user: str) -> None:
        self.fake = fake
        self.user = user
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self._local = threading.local()

    def command(self, text: str, *, command: str = "/docker") -> Prepared:
        """A slash command as Slack sends it (the fields of tests/e2e/conftest.py's ``command_form``); each gets
        its own response_url and channel, so its reply can be told apart whichever way it is delivered."""
        token = uuid.uuid4().hex
        channel = "C" + token[:10].upper()
        response_path = f"/response/{token}"
        form = {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "team_domain": "chatdock-bench",
            "channel_id": channel,
            "channel_name": "bench",
            "user_id": self.user,
            "user_name": "bench",
            "command": command,
            "text": text,
            "api_app_id": "A0CHATDOCK",
            "is_enterprise_install": "false",
            "response_url": self.fake.url + response_path,
            "trigger_id": f"{int(time.time() * 1000)}.{token[10:18]}",
        }
        body = urlencode(form)
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(self.verifier.generate_signature(timestamp=ts, body=body)),
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "Connection": "close",
        }
        return Prepared(body=body.encode(), headers=headers, keys=(response_path, f"chan:{channel}"))

    @staticmethod
    def send(url: str, prepared: Prepared, *, timeout: float = 10.0) -> Sent:
        """POST on a fresh connection; the time runs from before the connect to the end of the answer."""
        parts = urlsplit(url)
        started = time.monotonic()
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        try:
            conn.request("POST", "/slack/events", body=prepared.body, headers=prepared.headers)
            response = conn.getresponse()
            body = response.read()
            return Sent(prepared, started, time.monotonic() - started, response.status, body)
        except OSError as exc:
            return Sent(prepared, started, time.monotonic() - started, -1, error=type(exc).__name__)
        finally:
            conn.close()

    def reply(self, prepared: Prepared, *, timeout: float = 60.0) -> dict[str, Any] | None:
        """When (``t``, monotonic) and how the reply to ``prepared`` arrived at the fake; None if it did not."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        parts = urlsplit(self.fake.url)
        query = urlencode([("key", key) for key in prepared.keys] + [("timeout", str(timeout))])
        for _attempt in range(2):
            if conn is None:
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout + 10)
                self._local.conn = conn
            try:
                conn.request("GET", f"/bench/wait?{query}")
                response = conn.getresponse()
                data = response.read()
                return json.loads(data) if response.status == 200 else None
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = self._local.conn = None
        return None

    def counts(self) -> dict[str, int]:
        parts = urlsplit(self.fake.url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        try:
            conn.request("GET", "/bench/counts")
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()


def burst(url: str, requests: list[Prepared], senders: int = SENDERS) -> list[Sent]:
    """``requests`` from ``senders`` threads at once, each taking the next one as soon as it is done."""
    results: list[Sent | None] = [None] * len(requests)
    indexes = itertools.count()
    lock = threading.Lock()
    gate = threading.Barrier(senders)

    def sender() -> None:
        gate.wait()
        while True:
            with lock:
                index = next(indexes)
            if index >= len(requests):
                return
            results[index] = SlackSide.send(url, requests[index])

    threads = [threading.Thread(target=sender, name=f"sender-{n}") for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


# --------------------------------------------------------------------------------------------- the engine side


class Fixture:
    """The bench's containers: ``CREATED`` created (never started) and ``RUNNING`` running ones."""

    def __init__(self, client: docker.DockerClient, run: str, user: str) -> None:
        self.client = client
        self.run = run
        self.user = user
        self.running: list[str] = []

    def create(self) -> None:
        api = self.client.api
        labels = {BENCH_LABEL: self.run}

        def make(name: str, start: bool) -> None:
            created = api.create_container(TEST_IMAGE, name=name, labels=labels, detach=True)
            if start:
                api.start(created["Id"])

        names = [(f"bench-{self.run}-{n}", False) for n in range(CREATED)]
        names += [(f"bench-{self.run}-r{n}", True) for n in range(RUNNING)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda item: make(*item), names))
        self.running = [name for name, start in names if start]

    def chatdock_runs(self) -> int:
        """How many containers chatdock's own ``run`` made for the bench user are running now."""
        return len(self.client.api.containers(filters={"label": f"{OWNER_LABEL}={self.user}"}))

    def remove_all(self) -> int:
        api = self.client.api
        found: dict[str, None] = {}
        for label in (f"{BENCH_LABEL}={self.run}", f"{OWNER_LABEL}={self.user}"):
            with contextlib.suppress(Exception):
                found.update((c["Id"], None) for c in api.containers(all=True, filters={"label": label}))

        def remove(cid: str) -> None:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(cid, force=True)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(remove, found))
        return len(found)


def cli_time(argv: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - started


# --------------------------------------------------------------------------------------------- the table


@dataclass
class Row:
    measure: str
    chatdock: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None  # None: reported, no target

    @property
    def verdict(self) -> str:
        return "" if self.ok is None else ("PASS" if self.ok else "FAIL")


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.rows.append(Row(*args, **kwargs))

    def render(self) -> str:
        header = ("measure", "chatdock", "baseline", "ratio", "target", "result")
        cells = [header] + [(r.measure, r.chatdock, r.baseline, r.ratio, r.target, r.verdict) for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)

    @property
    def failed(self) -> bool:
        return any(r.ok is False for r in self.rows)


# --------------------------------------------------------------------------------------------- the measures


class Bench:
    def __init__(self, *, chatdock: Chatdock, null: Helper, slack: SlackSide, fixture: Fixture, report: Report):
        self.chatdock = chatdock
        self.null = null
        self.slack = slack
        self.fixture = fixture
        self.report = report
        self.commands = 0  # sent to chatdock, all phases
        self.undelivered = 0
        self.log = print

    def send(self, text: str) -> tuple[Sent, Prepared]:
        prepared = self.slack.command(text)
        self.commands += 1
        return SlackSide.send(self.chatdock.url, prepared), prepared

    def round_trip(self, text: str, *, timeout: float = 60.0) -> tuple[float, dict[str, Any]]:
        """Request sent → reply received at the fake."""
        sent, prepared = self.send(text)
        if sent.status != 200:
            raise RuntimeError(f"{text!r}: HTTP {sent.status} {sent.error}")
        reply = self.slack.reply(prepared, timeout=timeout)
        if reply is None:
            raise RuntimeError(f"{text!r}: no reply within {timeout:g} s")
        if reply.get("response_type") != "in_channel":
            raise RuntimeError(f"{text!r}: not a result: {reply.get('text', '')[:200]!r}")
        return reply["t"] - sent.started, reply

    def warm_up(self) -> None:
        for text in ("help", "ps", *(f"inspect {name}" for name in self.fixture.running[:1])):
            self.round_trip(text)

    # -- 1: ack latency under a burst, slow work in flight ----------------------------------------------
    def ack(self) -> None:
        null_requests = [self.slack.command("ps") for _ in range(BURST)]
        burst(self.null.url, [self.slack.command("ps") for _ in range(SENDERS)])  # warm: same for both servers
        null = burst(self.null.url, null_requests)

        slow = [self.slack.command(f"run --rm {TEST_IMAGE} sleep {SLOW_SECONDS}") for _ in range(SLOW)]
        self.commands += SLOW
        slow_sent = burst(self.chatdock.url, slow, senders=SLOW)
        deadline = time.monotonic() + 10
        while self.fixture.chatdock_runs() < SLOW and time.monotonic() < deadline:
            time.sleep(0.1)
        in_flight = self.fixture.chatdock_runs()

        requests = [self.slack.command("ps") for _ in range(BURST)]
        self.commands += BURST
        sent = burst(self.chatdock.url, requests)
        still_running = self.fixture.chatdock_runs()

        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            replies = list(pool.map(lambda s: self.slack.reply(s.prepared, timeout=90), [*sent, *slow_sent]))
        missing = sum(1 for r in replies if r is None or r.get("response_type") != "in_channel")
        self.undelivered += missing

        def stats(results: list[Sent]) -> tuple[float, float, int]:
            ok = [r.elapsed for r in results if r.status == 200]
            refused = len(results) - len(ok)
            return (percentile(ok, 99) if ok else math.inf), (max(ok) if ok else math.inf), refused

        p99, worst, refused = stats(sent)
        null_p99, null_worst, null_refused = stats(null)
        ratio = p99 / null_p99 if null_p99 else math.inf
        self.report.add(
            f"ack p99, {BURST} `ps` from {SENDERS} senders, {in_flight} `run … sleep {SLOW_SECONDS}` in flight",
            ms(p99),
            ms(null_p99),
            f"{ratio:.2f}×",
            "≤ 100 ms and ≤ 3× baseline",
            p99 <= 0.100 and ratio <= 3.0 and in_flight == SLOW == still_running,
        )
        self.report.add("ack max (same burst)", ms(worst), ms(null_worst), "", "≤ 1 s", worst <= 1.0)
        self.report.add(
            "requests refused (same burst)",
            str(refused),
            str(null_refused),
            "",
            "0",
            refused == 0 and all(s.status == 200 for s in slow_sent),
        )
        p50 = statistics.median(r.elapsed for r in sent if r.status == 200)
        null_p50 = statistics.median(r.elapsed for r in null if r.status == 200)
        self.report.notes.append(
            f"ack p50 {ms(p50)} (baseline {ms(null_p50)}); slow commands acked in at most "
            f"{ms(max(s.elapsed for s in slow_sent))}; {still_running} of {SLOW} still running after the burst; "
            f"replies missing or not results: {missing} of {len(replies)}"
        )

    # -- 2: ps -a ----------------------------------------------------------------------------------------
    def ps_all(self) -> None:
        listed = len(self.fixture.client.api.containers(all=True))
        self.round_trip("ps -a")  # warm-up, both sides
        cli_time(["docker", "ps", "-a"])
        bot: list[float] = []
        cli: list[float] = []
        how = ""
        for _ in range(PS_REPEATS):
            elapsed, reply = self.round_trip("ps -a")
            bot.append(elapsed)
            how = reply.get("via", "")
            cli.append(cli_time(["docker", "ps", "-a"]))
        ratio = statistics.median(bot) / statistics.median(cli)
        self.report.add(
            f"`ps -a`, {listed} containers, sent → reply (median of {PS_REPEATS})",
            ms(statistics.median(bot)),
            f"{ms(statistics.median(cli))} (docker ps -a)",
            f"{ratio:.2f}×",
            "≤ 1.0× the CLI",
            ratio <= 1.0,
        )
        self.report.notes.append(
            f"ps -a reply via {how}"
            + (" (carries the full list as a file)" if how == "chat.postMessage" else "")
            + f"; chatdock {', '.join(ms(b) for b in bot)}; CLI {', '.join(ms(c) for c in cli)}"
        )

    # -- 3: stats ----------------------------------------------------------------------------------------
    def stats(self) -> None:
        names = self.fixture.running
        text = "stats " + " ".join(names)
        argv = ["docker", "stats", "--no-stream", *names]
        self.round_trip(text)
        cli_time(argv)
        bot: list[float] = []
        cli: list[float] = []
        for _ in range(STATS_REPEATS):
            bot.append(self.round_trip(text)[0])
            cli.append(cli_time(argv))
        ratio = statistics.median(bot) / statistics.median(cli)
        self.report.add(
            f"`stats` of {len(names)} running, sent → reply (median of {STATS_REPEATS})",
            ms(statistics.median(bot)),
            f"{ms(statistics.median(cli))} (docker stats --no-stream)",
            f"{ratio:.2f}×",
            "≤ 1.1× the CLI",
            ratio <= 1.1,
        )
        self.report.notes.append(
            f"stats: chatdock {', '.join(ms(b) for b in bot)}; CLI {', '.join(ms(c) for c in cli)}"
        )

    # -- 6: pull from a registry ------------------------------------------------------------------------------
    def pull(self, registry: Registry) -> None:
        client = self.fixture.client
        ref = registry.ref(f"bench-{self.fixture.run}/big:1")
        build_test_image(client, ref, session=self.fixture.run, size=PULL_BYTES, env={})
        size = int(client.images.get(ref).attrs["Size"])
        push_and_forget(client, ref)
        bot: list[float] = []
        cli: list[float] = []
        edits: list[int] = []
        cli_time(["docker", "pull", ref])  # warm-up: the registry's files in the page cache for both sides
        client.images.remove(ref)

        def by_chatdock() -> None:
            before = self.slack.counts().get("chat.update", 0)
            prepared = self.slack.command(f"pull {ref}")
            prepared.keys = (f"final:{prepared.keys[1].removeprefix('chan:')}",)
            self.commands += 1
            sent = SlackSide.send(self.chatdock.url, prepared)
            reply = self.slack.reply(prepared, timeout=300) if sent.status == 200 else None
            if reply is None or "Pulled" not in reply.get("text", ""):
                raise RuntimeError(f"pull {ref}: no result edited into its progress message ({reply})")
            bot.append(reply["t"] - sent.started)
            edits.append(self.slack.counts().get("chat.update", 0) - before)
            client.images.remove(ref)

        def by_cli() -> None:
            cli.append(cli_time(["docker", "pull", ref]))
            client.images.remove(ref)

        for round_ in range(PULL_REPEATS):  # alternating who goes first: neither always follows the other's rmi
            for side in (by_chatdock, by_cli) if round_ % 2 == 0 else (by_cli, by_chatdock):
                side()
        took, cli_took = statistics.median(bot), statistics.median(cli)
        ratio = took / cli_took
        self.report.add(
            f"`pull` of {size / 1e6:.0f} MB from a local registry, sent → result (median of {PULL_REPEATS})",
            ms(took),
            f"{ms(cli_took)} (docker pull)",
            f"{ratio:.2f}×",
            "≤ 1.1× the CLI",
            ratio <= 1.1,
        )
        allowed = [math.floor(b / 3.0) + 1 for b in bot]  # one edit per 3 s, plus the result
        self.report.add(
            "  progress message edits per pull (max)",
            str(max(edits)),
            "",
            "",
            "≤ 1 per 3 s + result, ≤ 50/min",
            all(e <= a for e, a in zip(edits, allowed, strict=True)) and max(edits) <= 50,
        )
        self.report.notes.append(
            f"pull: chatdock {', '.join(ms(b) for b in bot)}; CLI {', '.join(ms(c) for c in cli)}; "
            f"edits {edits} (allowed {allowed})"
        )

    # -- 5 (and 4's load): throughput --------------------------------------------------------------------
    def throughput(self, count: int) -> None:
        r0, r1 = self.fixture.running[0], self.fixture.running[1]
        mix = ["ps", "ps -a", f"inspect {r0}", f"logs --tail 20 {r1}", f"ps -a -f name=bench-{self.fixture.run}-1"]
        texts = [mix[n % len(mix)] for n in range(count)]
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()
        queue = iter(texts)

        def client() -> None:
            while True:
                with lock:
                    text = next(queue, None)
                if text is None:
                    return
                sent, prepared = self.send(text)
                reply = self.slack.reply(prepared, timeout=60) if sent.status == 200 else None
                with lock:
                    if reply is None or reply.get("response_type") != "in_channel":
                        failures.append(text)
                    else:
                        latencies.append(reply["t"] - sent.acked)

        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(THROUGHPUT_CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started
        self.undelivered += len(failures)
        rate = len(latencies) / wall
        self.report.add(
            f"throughput, read-only mix, {THROUGHPUT_CLIENTS} clients, {count} commands",
            f"{rate:.1f} replies/s",
            "",
            "",
            "report",
            None,
        )
        if latencies:
            self.report.add(
                "  ack → reply delivered, p50 / p99",
                f"{ms(statistics.median(latencies))} / {ms(percentile(latencies, 99))}",
                "",
                "",
                "report",
                None,
            )
        self.report.notes.append(f"throughput mix (round robin): {', '.join(mix)}")


# --------------------------------------------------------------------------------------------- main


def bench_policy(user: str, registry: str = "") -> str:
    pulls = f', "{registry}/bench-*"' if registry else ""
    return f"""# written by the benchmark (bench/run.py)
roles:
  admin: {{commands: [ps, inspect, top, stats, port, logs, start, stop, restart, run, rm, exec, history, help, pull]}}
grants:
  - {{role: admin, users: [{user}]}}
images: ["local/*"{pulls}]
containers:
  names: ["bench-*"]
ports: ["19000-19999"]
limits: {{memory: 512m, cpus: 1.0}}
"""


@contextlib.contextmanager
def interrupted_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM ends the bench like Ctrl-C: through the clean-up."""

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for chatdock serve"
    )
    args = parser.parse_args(argv)
    extra_env = dict(item.split("=", 1) for item in args.env)
    phases = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")

    run = uuid.uuid4().hex[:6]
    user = f"UBENCH{run.upper()}"
    report = Report()
    started = time.monotonic()
    client = docker.from_env(timeout=60)
    client.ping()
    ensure_test_image(client)
    fixture = Fixture(client, run, user)
    helpers: list[Helper] = []
    chatdock: Chatdock | None = None
    registry: Registry | None = None
    workdir = Path(tempfile.mkdtemp(prefix="chatdock-bench-"))
    keep_logs = False
    print(machine(), flush=True)
    with interrupted_as_keyboard_interrupt():
        try:
            if set(phases) - {"pull"}:  # the pull alone needs none of the bench's containers
                print(f"run {run}: creating {CREATED} containers and {RUNNING} running ones ...", flush=True)
                fixture.create()
            fake = Helper.start("fake")
            helpers.append(fake)
            null = Helper.start("null")
            helpers.append(null)
            if "pull" in phases:
                registry = start_registry()
            policy = workdir / "policy.yml"
            policy.write_text(bench_policy(user, registry.address if registry else ""))
            chatdock = Chatdock.start(workdir=workdir, fake=fake, policy=policy, extra_env=extra_env)
            print(f"chatdock serve (pid {chatdock.pid}) on {chatdock.url}; fake Slack on {fake.url}", flush=True)
            time.sleep(1.0)
            idle = rss_mb(chatdock.pid)
            bench = Bench(chatdock=chatdock, null=null, slack=SlackSide(fake, user), fixture=fixture, report=report)
            bench.warm_up()
            steps: dict[str, Callable[[], None]] = {"ack": bench.ack, "psa": bench.ps_all, "stats": bench.stats}
            trail = [f"idle {idle:.1f}", f"after warm-up {rss_mb(chatdock.pid):.1f}"]
            for phase in phases:
                if phase in steps:
                    print(f"measuring {phase} ...", flush=True)
                    steps[phase]()
                    trail.append(f"after {phase} {rss_mb(chatdock.pid):.1f}")
            if "throughput" in phases:
                count = max(THROUGHPUT_MIN, MEMORY_COMMANDS - bench.commands)
                print(f"measuring throughput ({count} commands) ...", flush=True)
                bench.throughput(count)
                time.sleep(1.0)
                after = rss_mb(chatdock.pid)
                peak = rss_mb(chatdock.pid, "VmHWM")
                growth = (after - idle) / idle
                report.add("resident memory, idle", f"{idle:.1f} MB", "", "", "≤ 150 MB", idle <= 150)
                report.add(
                    f"resident memory after {bench.commands} commands",
                    f"{after:.1f} MB",
                    f"{idle:.1f} MB idle",
                    f"{growth:+.1%}",
                    "≤ 150 MB, growth ≤ 10 %",
                    after <= 150 and growth <= 0.10 and bench.commands >= MEMORY_COMMANDS,
                )
                trail.append(f"after throughput {after:.1f}")
                report.notes.append(f"resident memory (MB): {', '.join(trail)}; peak (VmHWM) {peak:.1f}")
            if "pull" in phases and registry is not None:  # last: a 50 MB stream must not colour the memory rows
                print("measuring pull ...", flush=True)
                bench.pull(registry)
            if "replicas" in phases:
                print("measuring replicas (2 against 1, through HAProxy) ...", flush=True)
                from bench import replicas

                r0, r1 = fixture.running[0], fixture.running[1]
                bench.undelivered += replicas.measure(
                    workdir=workdir,
                    start_chatdock=lambda env: Chatdock.start(
                        workdir=Path(tempfile.mkdtemp(dir=workdir)), fake=fake, policy=policy, extra_env=env
                    ),
                    null_url=null.url,
                    slack=bench.slack,
                    mix=["ps", "ps -a", f"inspect {r0}", f"logs --tail 20 {r1}", f"ps -a -f name=bench-{run}-1"],
                    report=report,
                    clients=THROUGHPUT_CLIENTS,
                    burst=burst,
                    percentile=percentile,
                    ms=ms,
                    burst_size=BURST,
                    senders=SENDERS,
                )
            if "hosts" in phases:
                print("measuring hosts (a second host configured and hung, against one host) ...", flush=True)
                from bench import hosts

                bench.undelivered += hosts.measure(
                    workdir=Path(tempfile.mkdtemp(dir=workdir)),
                    single=chatdock,
                    start_chatdock=lambda env: Chatdock.start(
                        workdir=Path(tempfile.mkdtemp(dir=workdir)), fake=fake, policy=policy, extra_env=env
                    ),
                    slack=bench.slack,
                    report=report,
                    burst=burst,
                    send=SlackSide.send,
                    percentile=percentile,
                    ms=ms,
                    local_url=os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock",
                    burst_size=BURST,
                )
            if "incidents" in phases:
                print("measuring incidents (event → Slack latency, a burst of deaths) ...", flush=True)
                from bench import incidents

                incidents.measure(client=client, image=TEST_IMAGE, report=report, percentile=percentile, ms=ms)
            report.add(
                "replies missing or not results",
                str(bench.undelivered),
                "",
                "",
                "0",
                bench.undelivered == 0,
            )
            report.notes.append(f"Slack calls seen by the fake: {bench.slack.counts()}")
        except KeyboardInterrupt:
            print("\ninterrupted: cleaning up", file=sys.stderr)
            return 130
        except Exception as exc:
            keep_logs = True
            print(f"\nbench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            if chatdock is not None:
                print(f"(chatdock's log, kept: {chatdock.log})", file=sys.stderr)
            return 2
        finally:
            if chatdock is not None:
                chatdock.stop()
            for helper in helpers:
                helper.stop()
            removed = fixture.remove_all()
            print(f"removed {removed} bench containers", flush=True)
            if registry is not None:
                registry.stop()
            remove_session_images(client, run)
            client.close()
            if not keep_logs and not report.failed:
                shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(report.render())
    for note in report.notes:
        print(f"  - {note}")
    if report.failed:
        print(f"  - chatdock's log, kept: {workdir / 'chatdock.log'}")
    print(f"\nbench took {time.monotonic() - started:.0f} s; {'FAILED' if report.failed else 'all targets met'}")
    return 1 if report.failed else 0
