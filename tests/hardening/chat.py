"""chatdock's real HTTP server (:func:`bot.serve.build_server`: waitress, bolt, the worker pool, the Deliverer) with
an audit log on SQLite, in front of the real engine, driven by signed requests as Slack sends them.

:func:`running_chat` starts one; the :class:`Chat` it yields has the server, the fake Slack, a
:class:`~tests.e2e.conftest.SlackDriver` and read-only access to the audit rows (a separate SQLite connection,
as an operator reading the log would have). Servers listen on 127.0.0.1, ports 19700-19999.
"""

from __future__ import annotations

import contextlib
import random
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

from bot.audit import AuditStore, open_audit
from bot.engine import Engine
from bot.policy import Policy
from bot.respond import ResponseUrlClient
from bot.serve import Server, build_server
from bot.wiring import build_web_client
from tests.conftest import make_pipeline
from tests.e2e.conftest import REQUEST_ID, SlackDriver, all_text, e2e_settings
from tests.support.fake_slack import FakeSlack

PORTS = (19700, 19999)


def free_port() -> int:
    """A port in 19700-19999 nothing listens on right now."""
    for _ in range(300):
        port = random.randint(*PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 19700-19999")


def new_fake_slack(**kwargs: Any) -> FakeSlack:
    for attempt in range(20):
        try:
            return FakeSlack(
                usergroups=[{"id": "SOPS", "handle": "ops", "users": ["UOPS"]}], port=free_port(), **kwargs
            )
        except OSError:
            if attempt == 19:
                raise
    raise AssertionError("unreachable")


def request_id_in(message: Any) -> str | None:
    """The 8-hex request ID a reply (or an ack) names, if any."""
    found = REQUEST_ID.search(all_text(message))
    return found.group(0).removeprefix("request ") if found else None


@dataclass
class Chat:
    server: Server
    fake: FakeSlack
    slack: SlackDriver
    audit: AuditStore
    db: Path

    def rows(self, where: str = "1 = 1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Audit rows, read as an operator would: a read-only connection to the SQLite file."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            conn.row_factory = sqlite3.Row
            cursor = conn.execute(f"SELECT * FROM chatdock_audit WHERE {where} ORDER BY id", params)
            return [dict(row) for row in cursor.fetchall()]
        finally:
            conn.close()

    def rows_for(self, request_id: str) -> list[dict[str, Any]]:
        return self.rows("request_id = ?", (request_id,))

    def finished_row(self, request_id: str, *, timeout: float = 30) -> dict[str, Any]:
        """The request's one audit row, once it has its outcome and delivery (written after the reply went)."""

        def probe() -> dict[str, Any] | None:
            rows = self.rows_for(request_id)
            if rows and rows[-1]["outcome"] is not None and rows[-1]["delivery"] is not None:
                return rows[-1]
            return None

        return self.fake.wait_for(probe, timeout=timeout, what=f"the audit row of request {request_id}")


@contextlib.contextmanager
def running_chat(
    engine: Engine,
    policy: Policy,
    tmp_path: Path,
    *,
    fake: FakeSlack | None = None,
    workers: int = 16,
    threads: int = 16,
    web_timeout: float | None = None,
    response_urls: ResponseUrlClient | None = None,
    run_timeout: float = 20,
) -> Iterator[Chat]:
    """Start chatdock's server on 127.0.0.1 (a port in 19700-19999) with an audit log in ``tmp_path``."""
    own_fake = fake is None
    fake = fake or new_fake_slack()
    db = tmp_path / "audit.db"
    store = open_audit(str(db), redact=policy.redact)
    pipeline = make_pipeline(
        engine, policy, auditor=store, history=store.recent, run_timeout=run_timeout, exec_timeout=15
    )
    settings = e2e_settings(fake, workers=workers)
    server: Server | None = None
    for attempt in range(20):
        client: WebClient | None = None
        if web_timeout is not None:
            client = build_web_client(settings)
            client.timeout = web_timeout  # type: ignore[assignment]  (urllib takes a float)
        try:
            server = build_server(
                settings, pipeline=pipeline, client=client, host="127.0.0.1", port=free_port(), threads=threads
            )
            break
        except OSError:
            if attempt == 19:
                raise
    assert server is not None
    if response_urls is not None:
        server.deliverer.response_urls.close()
        server.deliverer.response_urls = response_urls
    server.start()
    server.groups.loaded.wait(5)
    driver = SlackDriver(server.url, fake)
    try:
        yield Chat(server=server, fake=fake, slack=driver, audit=store, db=db)
    finally:
        driver.close()
        server.stop(drain=30)
        store.close()
        if own_fake:
            fake.close()


def wait_quiet(chat: Chat, *, seconds: float = 0.5, timeout: float = 30) -> None:
    """Wait until no request has reached the fake Slack for ``seconds`` (the workers are done replying)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with chat.fake._lock:
            last = chat.fake.arrivals[-1][0] if chat.fake.arrivals else 0.0
        if time.monotonic() - last >= seconds:
            return
        time.sleep(0.05)
