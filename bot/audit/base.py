"""The audit store's foundation: table names, limits, the clock, errors, and the connection side of a store."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

from bot.redact import MASK

log = logging.getLogger(__name__)


TABLE = "chatdock_audit"
INSTANCES = "chatdock_audit_instances"
CLAIMS = "chatdock_claims"
REPLIES = "chatdock_replies"
LEASES = "chatdock_leases"
CLAIM_TTL_SECONDS = 600.0  # a signature is valid for 5 minutes: a claim only needs to outlive that
REPLY_KEEP_SECONDS = 35 * 60.0  # a response_url is valid for 30 minutes; kept a little longer, then deleted
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 120.0
RUNNING = "running"
OUTCOMES = ("ok", "error", "denied", "usage", "interrupted")
INTERRUPTED_MESSAGE = "chatdock stopped before this request finished"
MAX_TEXT = 2000
MAX_MESSAGE = 500
MAX_RECENT = 1000
EXPORT_PAGE = 500

Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

_COLUMNS = (
    "id, request_id, instance, started_at, ended_at, team, channel, user_id, source, text, command, request, "
    "allowed, rule, reason, outcome, message, container_ids, network_ids, duration_ms, delivery, user_team, host"
)
_ADDED_COLUMNS = ("delivery", "user_team", "host")  # newer than the first schema: added to older logs on open


_END_SQL = (
    "UPDATE chatdock_audit SET ended_at = ?, outcome = ?, message = ?, container_ids = ?, network_ids = ?, "
    "duration_ms = ? WHERE id = ?"
)


class AuditError(Exception):
    """The audit log cannot be opened (bad path or URL, server unreachable, driver missing)."""


def _run_with(sql: str, params: Sequence[Any], run: Run) -> list[tuple[Any, ...]]:
    return run(sql, params)


def now() -> float:
    """The clock every audit module reads (one place, so a test can move it)."""
    return time.time()


def digest(value: str) -> str:
    """Keys and response_urls are looked up by their SHA-256: fixed length, and a key says nothing of itself."""
    return hashlib.sha256(value.encode()).hexdigest()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def display_target(target: str) -> str:
    """The path or URL with any password masked, for messages."""
    shown = re.sub(r"(://[^:/@?]*):[^@/?]*@", rf"\1:{MASK}@", target)
    return re.sub(r"(password=)[^&\s]*", rf"\1{MASK}", shown)


class Connection:
    """The connection side of the store: connecting, sessions, retries, the schema. Back ends (SQLite,
    PostgreSQL) fill in the methods that raise ``NotImplementedError``; everything above speaks SQL with ``?``."""

    _retryable: tuple[type[BaseException], ...] = ()
    instance: str
    readonly: bool
    _lock: threading.RLock
    _lane_lock: threading.Lock
    _lane: Any
    _closed: bool
    _machine: str
    _pid: int
    _pid_start: str
    _stale_after: float
    _columns: str

    def _clean(self, text: str | None, limit: int = MAX_TEXT) -> str:
        """A string as stored (scrubbed, clipped): see :mod:`bot.audit.store`."""
        raise NotImplementedError

    # -- back end --------------------------------------------------------------------------------------
    def _connect(self) -> None:
        raise NotImplementedError

    def _disconnect(self) -> None:
        raise NotImplementedError

    def _reconnect(self) -> bool:
        return False

    @contextmanager
    def _session(self, transaction: bool, conn: Any = None) -> Iterator[Run]:
        raise NotImplementedError
        yield  # pragma: no cover

    def _open_lane(self) -> Any:
        """A second connection for :meth:`_call_lane`; None where there cannot be one (SQLite in memory)."""
        return None

    def _close_lane(self) -> None:
        lane, self._lane = self._lane, None
        if lane is not None:
            try:
                lane.close()
            except Exception:
                log.debug("audit: closing the second connection failed", exc_info=True)

    def _schema(self) -> list[str]:
        raise NotImplementedError

    def _create_schema(self, run: Run) -> None:
        for statement in self._schema():
            run(statement, ())
        self._migrate(run)

    def _migrate(self, run: Run) -> None:
        """Add the columns newer versions write to a log created by an older one (none by default)."""
        return None

    def _call(self, work: Callable[[Run], Any], *, transaction: bool = False) -> Any:
        for attempt in (1, 2):
            try:
                with self._lock, self._session(transaction) as run:
                    return work(run)
            except self._retryable:
                if attempt == 2 or self._closed or not self._reconnect():
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _call_lane(self, work: Callable[[Run], Any], *, transaction: bool = False) -> Any:
        """:meth:`_call` on the second connection (opened on first use, reopened once if it broke)."""
        for attempt in (1, 2):
            try:
                with self._lane_lock:
                    if self._closed:
                        raise AuditError("the audit log is closed")
                    if self._lane is None:
                        self._lane = self._open_lane()
                    if self._lane is None:
                        break
                    with self._session(transaction, self._lane) as run:
                        return work(run)
            except self._retryable:
                with self._lane_lock:
                    self._close_lane()
                if attempt == 2:
                    raise
        return self._call(work, transaction=transaction)

    def _readable_columns(self) -> str:
        """The columns to read: a log written by an older chatdock may lack the newer ones (read as NULL)."""
        columns = _COLUMNS
        for column in _ADDED_COLUMNS:
            try:
                self._call(partial(_run_with, f"SELECT {column} FROM chatdock_audit WHERE 1 = 0", ()))  # noqa: S608
            except Exception:
                columns = columns.replace(f", {column}", f", NULL AS {column}")
        return columns


def _schema(primary_key: str, real: str, boolean: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {TABLE} (
            id {primary_key},
            request_id TEXT NOT NULL,
            instance TEXT NOT NULL,
            started_at {real} NOT NULL,
            ended_at {real},
            team TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL DEFAULT '',
            user_id TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            command TEXT,
            request TEXT,
            allowed {boolean},
            rule TEXT,
            reason TEXT,
            outcome TEXT,
            message TEXT NOT NULL DEFAULT '',
            container_ids TEXT NOT NULL DEFAULT '[]',
            network_ids TEXT NOT NULL DEFAULT '[]',
            duration_ms {real},
            delivery TEXT,
            user_team TEXT NOT NULL DEFAULT '',
            host TEXT
        )""",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_channel ON {TABLE} (channel, started_at)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_started ON {TABLE} (started_at)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_pending ON {TABLE} (instance) WHERE outcome IS NULL",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_request ON {TABLE} (request_id)",
        f"""CREATE TABLE IF NOT EXISTS {INSTANCES} (
            instance TEXT PRIMARY KEY,
            machine TEXT NOT NULL DEFAULT '',
            pid INTEGER,
            pid_start TEXT NOT NULL DEFAULT '',
            started_at {real} NOT NULL,
            heartbeat_at {real} NOT NULL
        )""",
        # replicas (bot.coordination): who received a request first, the response_url budget and pending replies,
        # and the leases of work that must run once
        f"""CREATE TABLE IF NOT EXISTS {CLAIMS} (
            key TEXT PRIMARY KEY,
            instance TEXT NOT NULL,
            claimed_at {real} NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS {CLAIMS}_claimed ON {CLAIMS} (claimed_at)",
        f"""CREATE TABLE IF NOT EXISTS {REPLIES} (
            url_hash TEXT PRIMARY KEY,
            response_url TEXT NOT NULL,
            issued_at {real} NOT NULL,
            posts INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'noted',
            request_id TEXT,
            instance TEXT,
            channel TEXT NOT NULL DEFAULT '',
            user_id TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT ''
        )""",
        f"CREATE INDEX IF NOT EXISTS {REPLIES}_issued ON {REPLIES} (issued_at)",
        f"CREATE INDEX IF NOT EXISTS {REPLIES}_pending ON {REPLIES} (instance) WHERE state <> 'noted'",
        f"CREATE INDEX IF NOT EXISTS {REPLIES}_request ON {REPLIES} (request_id)",
        f"""CREATE TABLE IF NOT EXISTS {LEASES} (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            acquired_at {real} NOT NULL,
            expires_at {real} NOT NULL
        )""",
    ]
