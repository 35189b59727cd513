"""Two chatdock replicas on one PostgreSQL store: exactly one watches the host, and when it dies the other takes
over within 30 s from where the first stopped (nothing lost, nothing doubled)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bot.audit import PostgresAudit
from tests.events.conftest import Harness, text_of
from tests.support.audit_db import postgres_base_url, with_schema


@pytest.fixture
def pg_url() -> Iterator[str]:
    import psycopg

    base = postgres_base_url()
    schema = f"e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    yield with_schema(base, schema)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_one_replica_watches_and_another_takes_over(harness: Harness, pg_url: str, containers: Any, name: Any) -> None:
    first = harness.service(store=PostgresAudit(pg_url))
    second = harness.service(store=PostgresAudit(pg_url), wait=False)
    time.sleep(2.5)  # several renewals: the second stays idle while the first holds the lease
    assert list(first.watchers) == ["default"] and second.watchers == {}

    before = name("before")
    containers(before, "sh", "-c", "exit 1")
    harness.wait_about(before)

    # the first dies: its threads stop, its lease is not given back (it expires)
    for leader in first.leaders:
        leader._renewal.stop()
    for watcher in first.watchers.values():
        watcher.stop()
    first.notifier.stop()
    died = time.monotonic()
    during = name("during")
    containers(during, "sh", "-c", "exit 6")

    text = harness.wait_about(during, timeout=40)
    assert "exit 6" in text
    assert time.monotonic() - died < 30
    assert list(second.watchers) == ["default"]
    time.sleep(1.0)
    for each in (before, during):
        posts = [c for c in harness.slack.calls_to("chat.postMessage") if each in text_of(c.args)]
        assert len(posts) == 1, f"{each}: {len(posts)} posts"
