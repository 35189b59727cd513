"""Incidents, event resume points and mutes, kept in the audit store (SQLite or the replicas' PostgreSQL).

Three tables of their own, next to the audit log's (whose columns are not touched): ``chatdock_incidents`` (one row
per incident, with the Slack message it is shown in), ``chatdock_event_cursors`` (per host, the time of the last
engine event handled: a restarted watcher, on this replica or another, resumes there with ``since=``) and
``chatdock_mutes``. Statements go through the store's own connection and retry logic.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.audit import AuditStore

INCIDENTS = "chatdock_incidents"
CURSORS = "chatdock_event_cursors"
MUTES = "chatdock_mutes"
_REAL = "DOUBLE PRECISION"  # SQLite reads it as REAL

_SCHEMA = [
    f"""CREATE TABLE IF NOT EXISTS {INCIDENTS} (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        container_id TEXT NOT NULL DEFAULT '',
        container TEXT NOT NULL DEFAULT '',
        image TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '',
        ts TEXT,
        status TEXT NOT NULL DEFAULT 'open',
        count INTEGER NOT NULL DEFAULT 1,
        first_seen {_REAL} NOT NULL,
        last_seen {_REAL} NOT NULL,
        resolved_at {_REAL},
        exit_codes TEXT NOT NULL DEFAULT '[]',
        detail TEXT NOT NULL DEFAULT '',
        logs TEXT NOT NULL DEFAULT ''
    )""",
    f"CREATE INDEX IF NOT EXISTS {INCIDENTS}_open ON {INCIDENTS} (host, container, kind, channel, last_seen)",
    f"CREATE INDEX IF NOT EXISTS {INCIDENTS}_seen ON {INCIDENTS} (last_seen)",
    f"""CREATE TABLE IF NOT EXISTS {CURSORS} (
        host TEXT PRIMARY KEY,
        since_nano TEXT NOT NULL,
        updated_at {_REAL} NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {MUTES} (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        container TEXT NOT NULL,
        kind TEXT NOT NULL,
        until_at {_REAL} NOT NULL,
        by_user TEXT NOT NULL DEFAULT '',
        created_at {_REAL} NOT NULL
    )""",
]

_FIELDS = (
    "id, host, container_id, container, image, kind, channel, ts, status, count, first_seen, last_seen, "
    "resolved_at, exit_codes, detail, logs"
)


@dataclass
class IncidentRow:
    """One incident as stored: where it is shown (``channel``/``ts``), how often it happened, and its state."""

    id: str
    host: str
    container_id: str
    container: str
    image: str
    kind: str
    channel: str
    ts: str | None
    status: str  # open | held | muted | resolved
    count: int
    first_seen: float
    last_seen: float
    resolved_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)
    detail: str = ""
    logs: str = ""

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> IncidentRow:
        values = list(row)
        values[13] = json.loads(values[13] or "[]")
        return cls(*values)


@dataclass(frozen=True)
class Mute:
    id: str
    host: str
    container: str
    kind: str
    until: float
    by: str


class IncidentStore:
    """Incidents, cursors and mutes over an :class:`AuditStore` connection."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.store._call(self._create, transaction=True)

    def _create(self, run: Any) -> None:
        if self.store.kind == "postgres":  # replicas starting together must not race on CREATE TABLE
            run("SELECT pg_advisory_xact_lock(hashtext('chatdock_audit_schema'))", ())
        for statement in _SCHEMA:
            run(statement, ())

    def _q(self, sql: str, params: tuple[Any, ...] = (), *, transaction: bool = False) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.store._call(lambda run: run(sql, params), transaction=transaction)
        return rows

    # -- cursors ---------------------------------------------------------------------------------------
    def cursor(self, host: str) -> int | None:
        """The engine time (ns since the epoch) of the last event handled for ``host``; None before the first."""
        rows = self._q(f"SELECT since_nano FROM {CURSORS} WHERE host = ?", (host,))  # noqa: S608
        return int(rows[0][0]) if rows else None

    def set_cursor(self, host: str, nano: int) -> None:
        self._q(
            f"INSERT INTO {CURSORS} (host, since_nano, updated_at) VALUES (?, ?, ?) "  # noqa: S608
            "ON CONFLICT (host) DO UPDATE SET since_nano = excluded.since_nano, updated_at = excluded.updated_at",
            (host, str(nano), time.time()),
        )

    # -- incidents -------------------------------------------------------------------------------------
    def open_incident(self, row: IncidentRow) -> None:
        self._q(
            f"INSERT INTO {INCIDENTS} ({_FIELDS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                row.id,
                row.host,
                row.container_id,
                row.container,
                row.image,
                row.kind,
                row.channel,
                row.ts,
                row.status,
                row.count,
                row.first_seen,
                row.last_seen,
                row.resolved_at,
                json.dumps(row.exit_codes),
                row.detail,
                row.logs,
            ),
        )

    def save(self, row: IncidentRow) -> None:
        self._q(
            f"UPDATE {INCIDENTS} SET container_id = ?, ts = ?, status = ?, count = ?, last_seen = ?, "  # noqa: S608
            "resolved_at = ?, exit_codes = ?, detail = ?, logs = ? WHERE id = ?",
            (
                row.container_id,
                row.ts,
                row.status,
                row.count,
                row.last_seen,
                row.resolved_at,
                json.dumps(row.exit_codes[-20:]),
                row.detail,
                row.logs,
                row.id,
            ),
        )

    def get(self, incident_id: str) -> IncidentRow | None:
        rows = self._q(f"SELECT {_FIELDS} FROM {INCIDENTS} WHERE id = ?", (incident_id,))  # noqa: S608
        return IncidentRow.from_row(rows[0]) if rows else None

    def find(self, incident_id: str) -> IncidentRow | None:
        """The incident whose ID is ``incident_id`` or starts with it (the 12 characters ``history --incidents``
        and grouped messages show); None when there is none or more than one. ``incident_id`` is hex only."""
        if len(incident_id) >= 32:
            return self.get(incident_id)
        rows = self._q(
            f"SELECT {_FIELDS} FROM {INCIDENTS} WHERE id LIKE ? LIMIT 2",  # noqa: S608
            (f"{incident_id}%",),
        )
        return IncidentRow.from_row(rows[0]) if len(rows) == 1 else None

    def latest_unresolved(self, *, host: str, container: str, kind: str, channel: str) -> IncidentRow | None:
        """The newest incident of this kind for this container and channel that is not resolved yet."""
        rows = self._q(
            f"SELECT {_FIELDS} FROM {INCIDENTS} WHERE host = ? AND container = ? AND kind = ? AND channel = ? "  # noqa: S608
            "AND status <> 'resolved' ORDER BY last_seen DESC LIMIT 1",
            (host, container, kind, channel),
        )
        return IncidentRow.from_row(rows[0]) if rows else None

    def unresolved_for(self, *, host: str, container: str, kinds: tuple[str, ...]) -> list[IncidentRow]:
        marks = ", ".join("?" for _ in kinds)
        rows = self._q(
            f"SELECT {_FIELDS} FROM {INCIDENTS} WHERE host = ? AND container = ? AND kind IN ({marks}) "  # noqa: S608
            "AND status <> 'resolved'",
            (host, container, *kinds),
        )
        return [IncidentRow.from_row(r) for r in rows]

    def by_message(self, channel: str, ts: str) -> list[IncidentRow]:
        """The incidents a Slack message shows (one, or a burst's)."""
        rows = self._q(
            f"SELECT {_FIELDS} FROM {INCIDENTS} WHERE channel = ? AND ts = ? ORDER BY first_seen",  # noqa: S608
            (channel, ts),
        )
        return [IncidentRow.from_row(r) for r in rows]

    def release_held(self, channel: str) -> list[IncidentRow]:
        """Take the channel's held incidents for a digest: one statement, so with several replicas each held
        incident goes into exactly one digest."""
        rows = self._q(
            f"UPDATE {INCIDENTS} SET status = 'released' WHERE channel = ? AND status = 'held' "  # noqa: S608
            f"RETURNING {_FIELDS}",
            (channel,),
        )
        return sorted((IncidentRow.from_row(r) for r in rows), key=lambda r: r.first_seen)

    def held(self, channel: str) -> list[IncidentRow]:
        rows = self._q(
            f"SELECT {_FIELDS} FROM {INCIDENTS} WHERE channel = ? AND status = 'held' ORDER BY first_seen",  # noqa: S608
            (channel,),
        )
        return [IncidentRow.from_row(r) for r in rows]

    def recent(self, *, limit: int = 20, host: str | None = None, since: float | None = None) -> list[IncidentRow]:
        """For ``history --incidents``: the newest first."""
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        if host is not None:
            where.append("host = ?")
            params.append(host)
        if since is not None:
            where.append("last_seen >= ?")
            params.append(since)
        rows = self._q(
            f"SELECT {_FIELDS} FROM {INCIDENTS} WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY last_seen DESC LIMIT {int(limit)}",
            tuple(params),
        )
        return [IncidentRow.from_row(r) for r in rows]

    # -- mutes -----------------------------------------------------------------------------------------
    def mute(self, *, host: str, container: str, kind: str, until: float, by: str) -> Mute:
        mute = Mute(id=uuid.uuid4().hex[:12], host=host, container=container, kind=kind, until=until, by=by)
        self._q(
            f"INSERT INTO {MUTES} (id, host, container, kind, until_at, by_user, created_at) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (mute.id, host, container, kind, until, by, time.time()),
        )
        return mute

    def mutes(self, *, now: float | None = None) -> list[Mute]:
        rows = self._q(
            f"SELECT id, host, container, kind, until_at, by_user FROM {MUTES} WHERE until_at > ? "  # noqa: S608
            "ORDER BY until_at",
            (time.time() if now is None else now,),
        )
        return [Mute(str(r[0]), str(r[1]), str(r[2]), str(r[3]), float(r[4]), str(r[5])) for r in rows]

    def muted(self, *, host: str, container: str, kind: str, now: float | None = None) -> Mute | None:
        for mute in self.mutes(now=now):
            if mute.host == host and mute.container == container and mute.kind in (kind, "*"):
                return mute
        return None

    def unmute(self, *, container: str | None = None, mute_id: str | None = None) -> int:
        """End mutes now, by container name or by ID; how many ended."""
        if mute_id is not None:
            rows = self._q(f"DELETE FROM {MUTES} WHERE id = ? RETURNING id", (mute_id,))  # noqa: S608
        else:
            rows = self._q(f"DELETE FROM {MUTES} WHERE container = ? RETURNING id", (container or "",))  # noqa: S608
        return len(rows)
