"""Several ``chatdock serve --http`` processes behind HAProxy, on one PostgreSQL audit store, on the real engine.

:class:`Cluster` starts each replica as a real process (``python -m bot serve --http``) with its own port, a
PostgreSQL schema of its own for the store, the fake Slack (tests/support/fake_slack.py) for the Web API and
response_urls, and HAProxy (Debian's ``haproxy``) in front: round robin, ``/healthz`` checks every 0.5 s, and a
request that found a dead replica (connection refused or cut) re-sent to another, as balancers do. Replicas are
killed with SIGKILL by PID (:meth:`Cluster.kill`) and started again (:meth:`Cluster.revive`).

Without PostgreSQL or haproxy the tests skip locally and fail under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
import pytest

from tests.conftest import TEST_POLICY
from tests.e2e.conftest import CHANNEL, SIGNING_SECRET, SlackDriver
from tests.hardening.chat import free_port
from tests.support.audit_db import postgres_base_url, with_schema
from tests.support.fake_slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@dataclass
class Replica:
    index: int
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Cluster:
    fake: FakeSlack
    db_url: str
    workdir: Path
    replicas: list[Replica] = field(default_factory=list)
    balancer_port: int = 0
    haproxy: subprocess.Popen[bytes] | None = None

    # -- processes -------------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CHATDOCK_"))}
        env.update(
            PYTHONPATH=str(ROOT),
            SLACK_BOT_TOKEN=self.fake.token,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=self.fake.api_url,
            CHATDOCK_POLICY=str(self.workdir / "policy.yml"),
            CHATDOCK_DB=self.db_url,
            CHATDOCK_RUN_TIMEOUT="90",
            CHATDOCK_LOG_LEVEL="INFO",
        )
        return env

    def start(self, replica: Replica) -> None:
        with replica.log.open("ab") as log:
            replica.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--http", "--host", "127.0.0.1", "--port", str(replica.port)],
                cwd=ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, replica: Replica, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not replica.alive:
                raise AssertionError(f"replica {replica.index} exited:\n{replica.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{replica.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"replica {replica.index} not healthy:\n{replica.log.read_text()[-3000:]}")

    def kill(self, replica: Replica) -> None:
        """SIGKILL: no clean stop, nothing flushed, the lease not given up."""
        assert replica.process is not None
        os.kill(replica.process.pid, signal.SIGKILL)
        replica.process.wait(timeout=10)

    def revive(self) -> None:
        """Start every replica that is not running, and wait until the balancer sees them all."""
        dead = [r for r in self.replicas if not r.alive]
        for replica in dead:
            self.start(replica)
        for replica in dead:
            self.wait_healthy(replica)
        if dead:
            time.sleep(1.5)  # three health checks: HAProxy routes to them again

    def by_pid(self, pid: int) -> Replica:
        return next(r for r in self.replicas if r.process is not None and r.process.pid == pid)

    def start_balancer(self) -> None:
        self.balancer_port = free_port()
        servers = "\n".join(f"    server r{r.index} 127.0.0.1:{r.port} check" for r in self.replicas)
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            f"""global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 15s
    retries 3
    option redispatch 1
    option http-buffer-request
    retry-on conn-failure empty-response response-timeout
frontend slack
    bind 127.0.0.1:{self.balancer_port}
    default_backend chatdock
backend chatdock
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 500ms fall 2 rise 1
{servers}
"""
        )
        self.haproxy = subprocess.Popen(
            ["haproxy", "-f", str(config), "-db"],
            stdin=subprocess.DEVNULL,
            stdout=(self.workdir / "haproxy.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.balancer_url}/healthz", timeout=2).status_code == 200:
                    time.sleep(1.0)  # every server passed its first check
                    return
            time.sleep(0.2)
        raise AssertionError("HAProxy did not answer: " + (self.workdir / "haproxy.log").read_text()[-2000:])

    @property
    def balancer_url(self) -> str:
        return f"http://127.0.0.1:{self.balancer_port}"

    def stop(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        for replica in self.replicas:
            if replica.alive:
                assert replica.process is not None
                replica.process.terminate()
        for replica in self.replicas:
            if replica.process is not None:
                try:
                    replica.process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    replica.process.kill()
                    replica.process.wait(timeout=10)

    # -- Slack's side ----------------------------------------------------------------------------------------
    def driver(self, url: str | None = None) -> SlackDriver:
        return SlackDriver(url or self.balancer_url, self.fake)

    def command_body(self, text: str, *, user: str = "UADMIN") -> tuple[str, str]:
        response_url = self.fake.new_response_url()
        form = SlackDriver.command_form(text, user=user, command="/docker", channel=CHANNEL, response_url=response_url)
        return urlencode(form), response_url

    # -- the shared store ------------------------------------------------------------------------------------
    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())

    def lease_holder_pid(self) -> int | None:
        rows = self.sql(
            "SELECT i.pid FROM chatdock_leases l JOIN chatdock_audit_instances i ON i.instance = l.holder "
            "WHERE l.name = 'chatdock-maintenance' AND l.expires_at >= extract(epoch FROM now())"
        )
        return int(rows[0][0]) if rows else None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("haproxy") is None:
        _unavailable("haproxy is not installed (apt-get install haproxy; .ci/run does)")
    base = postgres_base_url()
    schema = f"r_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    workdir = tmp_path_factory.mktemp("replicas")
    (workdir / "policy.yml").write_text(TEST_POLICY)
    fake = FakeSlack()
    cluster = Cluster(fake=fake, db_url=with_schema(base, schema), workdir=workdir)
    try:
        cluster.replicas = [Replica(i, free_port(), workdir / f"replica-{i}.log") for i in range(1, REPLICAS + 1)]
        cluster.start(cluster.replicas[0])  # the first creates the schema; the others start together after it
        cluster.wait_healthy(cluster.replicas[0])
        cluster.revive()
        cluster.start_balancer()
        yield cluster
    finally:
        cluster.stop()
        fake.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def replicas(cluster: Cluster) -> Cluster:
    """The module's cluster with every replica running (a test before may have killed one)."""
    cluster.revive()
    return cluster
