"""Which chatdock processes are alive: instances, heartbeats, and marking a dead one's requests interrupted."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bot.audit import base
from bot.audit.base import (
    INTERRUPTED_MESSAGE,
    Connection,
    Run,
)

log = logging.getLogger(__name__)


def machine_key() -> str:
    """Boot ID + PID-namespace inode: processes with the same key see the same PIDs. Empty off Linux."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def pid_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a running ``pid``; None if it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X", "x"):
        return None
    return fields[19]


def process_alive(pid: int, started: str) -> bool:
    """Whether ``pid`` (in this PID namespace) is still the process that started at ``started``."""
    current = pid_start(pid)
    if current is not None:
        return current == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists but /proc hides it from us (hidepid): assume it is the same process
        return True
    return False  # a zombie: it has exited


class Instances(Connection):
    """Registering this process and sweeping the requests of processes that are gone."""

    # -- instances -------------------------------------------------------------------------------------
    def _register(self) -> None:
        now = base.now()
        self._call(
            lambda run: run(
                "INSERT INTO chatdock_audit_instances (instance, machine, pid, pid_start, started_at, heartbeat_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (instance) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (self.instance, self._machine, self._pid, self._pid_start, now, now),
            )
        )

    def _is_dead(self, instance: str, machine: str, pid: int | None, started: str, beat: float, now: float) -> bool:
        if instance == self.instance:
            return False
        if machine and machine == self._machine and pid is not None:
            return not process_alive(int(pid), started)
        return float(beat) < now - self._stale_after

    def mark_interrupted(self) -> int:
        """Mark every unfinished row of a dead or unknown instance ``interrupted``; return how many."""
        now = base.now()

        def sweep(run: Run) -> int:
            rows = run("SELECT instance, machine, pid, pid_start, heartbeat_at FROM chatdock_audit_instances", ())
            dead = [row[0] for row in rows if self._is_dead(row[0], row[1], row[2], row[3], row[4], now)]
            marks = ", ".join("?" for _ in dead)
            dead_clause = f" OR instance IN ({marks})" if dead else ""
            # only placeholders are joined in: the instance IDs travel as parameters
            sql = (
                "UPDATE chatdock_audit SET outcome = 'interrupted', ended_at = ?, message = ? "  # noqa: S608
                "WHERE outcome IS NULL AND instance <> ? "
                f"AND (instance NOT IN (SELECT instance FROM chatdock_audit_instances){dead_clause}) RETURNING id"
            )
            marked = run(sql, (now, INTERRUPTED_MESSAGE, self.instance, *dead))
            if dead:
                run(f"DELETE FROM chatdock_audit_instances WHERE instance IN ({marks})", tuple(dead))  # noqa: S608
            return len(marked)

        count: int = self._call(sweep, transaction=True)
        if count:
            log.warning("audit: marked %d request(s) of stopped chatdock processes as interrupted", count)
        return count

    def _beat(self) -> None:
        self._register()
        self.mark_interrupted()
