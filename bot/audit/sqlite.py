"""The embedded back end: one SQLite file."""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.audit.base import (
    TABLE,
    AuditError,
    Run,
    _schema,
)
from bot.audit.store import AuditStore

log = logging.getLogger(__name__)


class SqliteAudit(AuditStore):
    """The embedded default: one file, WAL, ``synchronous=NORMAL``, one locked connection."""

    kind = "sqlite"

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None
        super().__init__(**kwargs)

    def _connect(self) -> None:
        if sqlite3.sqlite_version_info < (3, 35):
            raise AuditError(f"SQLite {sqlite3.sqlite_version} is too old for the audit log (3.35 or newer)")
        memory = self.path == ":memory:"
        if not memory and not Path(self.path).exists():
            if self.readonly:
                raise AuditError(f"no audit log at {self.path}")
            try:  # the log names people and commands: readable by its owner only
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            except OSError as exc:
                raise AuditError(f"cannot create the audit log {self.path}: {exc.strerror}") from None
        try:
            conn = self._new_connection()
            if not memory:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if not mode or str(mode[0]).lower() != "wal":
                    raise AuditError(f"{self.path}: cannot switch the audit log to WAL mode")
            conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise AuditError(f"cannot open the audit log {self.path}: {exc}") from None
        self._conn = conn

    def _new_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _open_lane(self) -> Any:
        # None: claims use the main connection. SQLite has one writer at a time per file whatever the number of
        # connections, and a second one would wait for the first in SQLite's busy handler (sleeps of up to
        # 100 ms), where the main connection's lock hands over at once.
        return None

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _session(self, transaction: bool, conn: Any = None) -> Iterator[Run]:
        db: sqlite3.Connection | None = conn or self._conn
        if db is None:
            raise AuditError("the audit log is closed")
        conn = db

        def run(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            return db.execute(sql, tuple(params)).fetchall()

        if not transaction:
            yield run
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield run
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _schema(self) -> list[str]:
        return _schema("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL", "INTEGER")

    def _migrate(self, run: Run) -> None:
        columns = {str(row[1]) for row in run(f"PRAGMA table_info({TABLE})", ())}
        if "delivery" not in columns:
            run(f"ALTER TABLE {TABLE} ADD COLUMN delivery TEXT", ())
        if "user_team" not in columns:
            run(f"ALTER TABLE {TABLE} ADD COLUMN user_team TEXT NOT NULL DEFAULT ''", ())
        if "host" not in columns:
            run(f"ALTER TABLE {TABLE} ADD COLUMN host TEXT", ())

    def integrity_check(self) -> str:
        rows = self._call(lambda run: run("PRAGMA integrity_check", ()))
        return "; ".join(str(row[0]) for row in rows)
