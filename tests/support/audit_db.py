"""Audit-log back ends for tests: every test that takes ``audit_target`` runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``CHATDOCK_TEST_POSTGRES_URL`` (``source .ci/postgres.sh`` starts a throwaway server and
exports it). Each test gets its own schema (``search_path`` in the URL), dropped afterwards. Without the URL,
or with a server that does not answer, the PostgreSQL variant skips locally and *fails* under ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.audit import AuditStore, open_audit

POSTGRES_ENV = "CHATDOCK_TEST_POSTGRES_URL"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason} (source .ci/postgres.sh)")
    pytest.skip(reason)


def postgres_base_url() -> str:
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        _unavailable(f"{POSTGRES_ENV} is not set")
    try:
        import psycopg
    except ImportError:
        _unavailable('psycopg is not installed (pip install "psycopg[binary]")')
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        _unavailable(f"PostgreSQL at {POSTGRES_ENV} does not answer: {exc}")
    return url


def with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def audit_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty audit log: a SQLite file path, or a postgresql:// URL with a schema of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "audit.db")
        return
    import psycopg

    base = postgres_base_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_schema(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def stores() -> Iterator[Callable[..., AuditStore]]:
    """``stores(target, **options)`` → an open store, closed when the test ends."""
    opened: list[AuditStore] = []

    def make(target: str, **options: Any) -> AuditStore:
        store = open_audit(target, **options)
        opened.append(store)
        return store

    yield make
    for store in reversed(opened):
        store.close()


def all_stored_text(store: AuditStore, target: str) -> bytes:
    """Everything the back end holds for the log: the SQLite files' bytes, or every row as text."""
    if not target.startswith("postgres"):
        data = b""
        for suffix in ("", "-wal", "-shm"):
            path = Path(target + suffix)
            if path.exists():
                data += path.read_bytes()
        return data
    rows = store._call(
        lambda run: run(
            "SELECT t::text FROM chatdock_audit t UNION ALL SELECT i::text FROM chatdock_audit_instances i", ()
        )
    )
    return "\n".join(str(row[0]) for row in rows).encode()
