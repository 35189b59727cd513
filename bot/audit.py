"""The audit trail: every request is recorded before it runs and completed after, in SQLite or PostgreSQL.

:func:`open_audit` takes ``CHATDOCK_DB``: a file path (SQLite, the embedded default ``chatdock.db``) or a
``postgresql://`` URL (several replicas sharing one log). Both back ends are the same :class:`AuditStore` with
the same SQL; only connecting, placeholders and a few column types differ. A store is the pipeline's
``Auditor`` (``begin`` / ``end``) and its ``history`` source (:meth:`AuditStore.recent`).

What a row holds (table ``chatdock_audit``): when it started and ended (UTC seconds since the epoch), team, channel
and user IDs, the person's own workspace (``user_team``: another organisation's, for someone in a Slack Connect
channel; empty for the shell), the source (``slack``, ``button``, ``shell``), the text as shown (already redacted by
the pipeline, scrubbed again here), the command, the parsed request as JSON, the policy decision and rule, then the
outcome (``ok`` / ``error`` / ``denied`` / ``usage`` / ``interrupted``; NULL while it runs), a short message (result
summary or error message), the container and network IDs it affected, the duration, and how the reply went out
(``delivery``: ``response_url``, ``chat.postMessage after ...``, ``ack``, or ``failed: ...``; written by the Slack
front door with :meth:`AuditStore.record_delivery`, NULL for the shell).

Secrets. Every string written passes :func:`scrub`: token-shaped strings are masked (:func:`bot.redact.redact_text`),
``KEY=VALUE`` with a secret-looking KEY (``bot.redact.SECRET_WORDS`` plus the policy's ``redact`` words) becomes
``KEY=***`` wherever it appears, and literal secrets the process holds (the bot's tokens, passed by the wiring)
are masked. The request's ``env`` goes through :func:`bot.redact.redact_env`; secret-named ``labels`` values are
masked. Command output is never stored, only a one-line summary.

Interrupted requests. Each open store is an *instance* (a random ID) registered in ``chatdock_audit_instances``
with its machine key (kernel boot ID + PID-namespace inode), PID and the PID's start time, and a heartbeat it
renews every 30 s from a daemon thread. Every row carries its instance ID. :meth:`AuditStore.mark_interrupted`
(run when a store opens and on every heartbeat) marks ``interrupted`` each unfinished row whose instance is
dead or unknown. An instance is dead when

- it shares this process's machine key (same boot, same PID namespace, so its PID is meaningful here) and that
  PID no longer runs with the recorded start time (exited, killed, zombie, or the PID was reused; read from
  ``/proc/PID/stat``): exact and immediate; or
- otherwise (another host or container), its heartbeat is older than 120 s.

So a ``kill -9`` leaves the started row, and the next start on the same machine marks it at once; a replica that
vanished elsewhere is marked by any live replica within two minutes; a running sibling is never touched. The
candidates are read first and the rows updated in one statement whose subquery re-reads the instances table, so
an instance registering meanwhile (it registers before it writes any row) is never swept. A live process whose
heartbeat stalled past the limit (say the database was unreachable) can have rows marked early; its ``end``
still writes the real outcome over the mark, and its next heartbeat re-registers it. A store that is closed
(explicitly or at interpreter exit) marks its own unfinished rows and unregisters.

Replicas. The same store is what several ``chatdock serve`` processes share (the methods under "shared between
replicas"): ``chatdock_claims`` (who received a request first; kept 10 minutes), ``chatdock_replies`` (response_url
posts counted across replicas, and the replies each instance still owes; response_urls are bearer capabilities,
kept 35 minutes, never exported) and ``chatdock_leases`` (work that must run once, :class:`bot.periodic.Leader`).

Threads. One connection per store (on PostgreSQL a second one for the acknowledgement path's claims), each
guarded by a lock: audit writes are a few small statements, so serialising them costs nothing next to a Docker
call and keeps both back ends simple. SQLite runs in WAL mode with
``synchronous=NORMAL`` (a committed row survives the process being killed; only an OS crash can lose the last
few) and a busy timeout, so a shell and a server may share the file. A PostgreSQL connection that breaks is
reopened once per call. Schema creation on PostgreSQL runs under an advisory lock so replicas can start together.

Failures. ``begin`` and ``end`` never raise (the pipeline promises not to): a write that fails is logged at
ERROR with the request ID and the request goes on unaudited.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.models import Actor, Decision, Result
from bot.periodic import Periodic
from bot.redact import MASK, is_secret_name, redact_env, redact_text

if TYPE_CHECKING:
    from bot.outcome import Outcome

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


def _now() -> float:
    return time.time()


def _digest(value: str) -> str:
    """Keys and response_urls are looked up by their SHA-256: fixed length, and a key says nothing of itself."""
    return hashlib.sha256(value.encode()).hexdigest()


# ------------------------------------------------------------------------------------------ secrets

_ASSIGNMENT = re.compile(r"""(?P<quote>["']?)(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)=""")


def scrub(text: str, extra_words: Iterable[str] = (), secrets: Iterable[str] = ()) -> str:
    """Mask token shapes, literal ``secrets`` and the values of secret-named ``KEY=VALUE`` anywhere in ``text``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = redact_text(text)
    words = tuple(extra_words)
    out: list[str] = []
    pos = 0
    while (match := _ASSIGNMENT.search(text, pos)) is not None:
        start = match.end()
        if not is_secret_name(match["key"], words):
            out.append(text[pos:start])
            pos = start
            continue
        if match["quote"]:
            stop = text.find(match["quote"], start)
            stop = len(text) if stop < 0 else stop
        else:
            stop = start
            while stop < len(text) and not text[stop].isspace():
                stop += 1
        out.append(text[pos:start] + (MASK if stop > start else ""))
        pos = stop
    out.append(text[pos:])
    return "".join(out)


# ------------------------------------------------------------------------------------------ summaries


def summarize(result: Result | None) -> str:
    """One line saying what a result was, for the log and ``history`` (never the output itself)."""
    return "" if result is None else result.log_line()


def outcome_name(outcome: Outcome) -> str:
    """``ok`` / ``error`` / ``denied`` / ``usage`` for a finished request."""
    if outcome.error is not None:
        return outcome.error.kind if outcome.error.kind in ("denied", "usage") else "error"
    return "ok" if outcome.ok else "error"


def affected_ids(outcome: Outcome) -> tuple[list[str], list[str]]:
    """Container and network IDs the request targeted or produced, in order, without repeats."""
    containers = list(outcome.container_ids)
    networks = list(outcome.network_ids)
    if outcome.result is not None:
        containers += outcome.result.affected_containers()
        networks += outcome.result.affected_networks()
    return list(dict.fromkeys(c for c in containers if c)), list(dict.fromkeys(n for n in networks if n))


# ------------------------------------------------------------------------------------------ time


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, *, now: float | None = None) -> float:
    """``24h``, ``30m``, ``1h30m``, ``7d``, ``2w`` (ago) or an ISO date/time (UTC unless it says) → epoch seconds.

    As ``docker logs --since``: ``0`` and anything at or before 1970 (``1000000h``) mean from the beginning.
    """
    now = _now() if now is None else now
    spec = text.strip().lower()
    if spec == "0":
        return 0.0
    if spec and _DURATION.sub("", spec) == "":
        ago = sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(spec))
        return max(0.0, now - ago) if math.isfinite(ago) else 0.0
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration like 24h, 30m or 7d, or an ISO date like 2026-11-28"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp())


def since_zone_note(text: str) -> str:
    """For an ISO ``--since`` without a zone: the zone it was read in, so the person can tell."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return ""
    if when.tzinfo is not None:
        return ""
    return f"--since {text.strip()} has no time zone: read as UTC ({when.isoformat(sep=' ')} UTC)"


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------ processes


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


# ------------------------------------------------------------------------------------------ the store


class AuditStore:
    """The shared logic; subclasses connect and run SQL written with ``?`` placeholders."""

    kind = "audit"
    _retryable: tuple[type[BaseException], ...] = ()

    def __init__(
        self,
        *,
        redact: Iterable[str] = (),
        secrets: Iterable[str] = (),
        readonly: bool = False,
        heartbeat: float = HEARTBEAT_SECONDS,
        stale_after: float = STALE_AFTER_SECONDS,
    ) -> None:
        self.instance = uuid.uuid4().hex
        self.readonly = readonly
        self._words = tuple(redact)
        self._secrets = tuple(s for s in secrets if s and len(s) >= 6)
        self._stale_after = stale_after
        self._machine = machine_key()
        self._pid = os.getpid()
        self._pid_start = pid_start(self._pid) or ""
        self._lock = threading.RLock()
        # The acknowledgement path's claims (:meth:`claim`) use a second connection of their own: waiting behind
        # the workers' audit writes on the main one would delay Slack's 3-second ack.
        self._lane_lock = threading.Lock()
        self._lane: Any = None
        self._rows: dict[str, int] = {}
        self._local = threading.local()
        self._heartbeats = Periodic(
            self._beat,
            interval=heartbeat,
            name=f"audit-heartbeat-{self.instance[:6]}",
            failure="audit: heartbeat failed",
        )
        self._closed = False
        self._columns = _COLUMNS
        self._connect()
        if readonly:
            self._columns = self._readable_columns()
            return
        try:
            self._call(self._create_schema, transaction=True)
            self._register()
            self.mark_interrupted()
        except Exception as exc:
            self._disconnect()
            raise AuditError(f"cannot prepare the audit log: {exc}") from exc
        self._heartbeats.start()
        atexit.register(self.close)

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

    # -- instances -------------------------------------------------------------------------------------
    def _register(self) -> None:
        now = _now()
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
        now = _now()

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

    # -- shared between replicas -----------------------------------------------------------------------
    # Several ``chatdock serve`` processes on one store agree here on what must happen once: who handles a
    # request delivered twice (:meth:`claim`), how many posts a response_url has left (:meth:`reserve_post`), which
    # replies are still owed (:meth:`owe_reply` / :meth:`reply_settled` / :meth:`orphaned_replies`) and who runs
    # work that must run once (:meth:`acquire_lease`). Each is one statement whose outcome the database decides,
    # so two replicas asking at the same moment get different answers. Wall-clock times: replicas on several
    # hosts need synchronised clocks (NTP; a skew of a few seconds is harmless against these periods).

    def claim(self, key: str, *, owe: dict[str, Any] | None = None) -> bool:
        """True for the first process (of any replica) to claim ``key`` within :data:`CLAIM_TTL_SECONDS`.

        ``owe`` (the arguments of :meth:`owe_reply`) is recorded in the same transaction: a request is never
        claimed without its reply being owed, so a replica killed right after claiming is still answered for."""

        def take(run: Run) -> bool:
            rows = run(
                "INSERT INTO chatdock_claims (key, instance, claimed_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING RETURNING key",
                (_digest(key), self.instance, _now()),
            )
            if rows and owe:
                self._owe(run, **owe)
            return bool(rows)

        claimed: bool = self._call_lane(take, transaction=owe is not None)
        return claimed

    def note_response_url(self, response_url: str, *, issued_at: float | None = None) -> None:
        """Start counting posts to ``response_url`` (Slack issued it at ``issued_at``, epoch seconds)."""
        self._call(
            lambda run: run(
                "INSERT INTO chatdock_replies (url_hash, response_url, issued_at) VALUES (?, ?, ?) "
                "ON CONFLICT (url_hash) DO NOTHING",
                (_digest(response_url), response_url, _now() if issued_at is None else issued_at),
            )
        )

    def reserve_post(self, response_url: str, *, max_posts: int, max_age: float) -> str:
        """Count one post to ``response_url`` across replicas: ``""`` when allowed, else why not."""
        key = _digest(response_url)
        now = _now()

        def reserve(run: Run) -> str:
            run(
                "INSERT INTO chatdock_replies (url_hash, response_url, issued_at) VALUES (?, ?, ?) "
                "ON CONFLICT (url_hash) DO NOTHING",
                (key, response_url, now),
            )
            if run(
                "UPDATE chatdock_replies SET posts = posts + 1 WHERE url_hash = ? AND posts < ? AND issued_at >= ? "
                "RETURNING posts",
                (key, max_posts, now - max_age),
            ):
                return ""
            rows = run("SELECT posts, issued_at FROM chatdock_replies WHERE url_hash = ?", (key,))
            if rows and float(rows[0][1]) < now - max_age:
                return f"expired (older than {max_age / 60:g} minutes)"
            return f"spent ({max_posts} posts)"

        result: str = self._call(reserve, transaction=True)
        return result

    def owe_reply(
        self, *, request_id: str, response_url: str, channel: str, user: str, text: str, issued_at: float
    ) -> None:
        """Record that this process acknowledged ``request_id`` and owes it a reply through ``response_url``;
        if this process dies first, another answers it (:meth:`orphaned_replies`)."""
        self._call(
            lambda run: self._owe(
                run,
                request_id=request_id,
                response_url=response_url,
                channel=channel,
                user=user,
                text=text,
                issued_at=issued_at,
            )
        )

    def _owe(
        self, run: Run, *, request_id: str, response_url: str, channel: str, user: str, text: str, issued_at: float
    ) -> None:
        run(
            "INSERT INTO chatdock_replies (url_hash, response_url, issued_at, state, request_id, instance, "
            "channel, user_id, text) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?) ON CONFLICT (url_hash) DO UPDATE "
            "SET state = 'pending', request_id = excluded.request_id, instance = excluded.instance, "
            "channel = excluded.channel, user_id = excluded.user_id, text = excluded.text",
            (
                _digest(response_url),
                response_url,
                issued_at,
                request_id,
                self.instance,
                channel,
                user,
                self._clean(text),
            ),
        )

    def reply_settled(self, request_id: str) -> None:
        """The reply owed to ``request_id`` went out (or failed for good): nobody needs to answer it again."""
        self._call_lane(
            lambda run: run(
                "UPDATE chatdock_replies SET state = 'settled' WHERE request_id = ? AND state <> 'noted'",
                (request_id,),
            )
        )

    def orphaned_replies(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Take over replies owed by processes that are gone (run :meth:`mark_interrupted` first, which forgets
        the dead): each is returned to exactly one caller, with the audit row's outcome when there is one."""

        def take(run: Run) -> list[tuple[Any, ...]]:
            return run(
                "UPDATE chatdock_replies SET state = 'answering', instance = ? WHERE url_hash IN ("
                "SELECT url_hash FROM chatdock_replies WHERE state IN ('pending', 'answering') AND issued_at >= ? "
                "AND instance NOT IN (SELECT instance FROM chatdock_audit_instances) LIMIT ?) "
                "RETURNING request_id, response_url, issued_at, channel, user_id, text, posts",
                (self.instance, _now() - REPLY_KEEP_SECONDS, limit),
            )

        taken: list[tuple[Any, ...]] = self._call(take, transaction=True)
        out: list[dict[str, Any]] = []
        for request_id, response_url, issued_at, channel, user, text, posts in taken:
            sql = "SELECT outcome, message FROM chatdock_audit WHERE request_id = ? ORDER BY id DESC LIMIT 1"
            rows: list[tuple[Any, ...]] = self._call(partial(_run_with, sql, (request_id,)))
            outcome, message = rows[0] if rows else (None, None)
            out.append(
                {
                    "request_id": request_id,
                    "response_url": response_url,
                    "issued_at": float(issued_at),
                    "channel": channel,
                    "user": user,
                    "text": text,
                    "posts": int(posts),
                    "outcome": outcome,
                    "message": message or "",
                }
            )
        return out

    def acquire_lease(self, name: str, *, ttl: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl`` seconds; True while this process holds it. A lease is
        free when it expired or its holder is no longer a registered (live) instance."""
        now = _now()
        rows = self._call(
            lambda run: run(
                "INSERT INTO chatdock_leases (name, holder, acquired_at, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at, "
                "acquired_at = CASE WHEN chatdock_leases.holder = excluded.holder THEN chatdock_leases.acquired_at "
                "ELSE excluded.acquired_at END "
                "WHERE chatdock_leases.holder = excluded.holder OR chatdock_leases.expires_at < ? "
                "OR chatdock_leases.holder NOT IN (SELECT instance FROM chatdock_audit_instances) "
                "RETURNING holder",
                (name, self.instance, now, now + ttl, now),
            )
        )
        return bool(rows) and rows[0][0] == self.instance

    def release_lease(self, name: str) -> None:
        """Give ``name`` up at once (a clean stop), so another replica need not wait for it to expire."""
        self._call(lambda run: run("DELETE FROM chatdock_leases WHERE name = ? AND holder = ?", (name, self.instance)))

    def lease_holder(self, name: str) -> str | None:
        """The instance holding ``name`` now (None when free or expired)."""
        rows = self._call(
            lambda run: run("SELECT holder FROM chatdock_leases WHERE name = ? AND expires_at >= ?", (name, _now()))
        )
        return str(rows[0][0]) if rows else None

    def forget_old(self) -> int:
        """Delete claims past :data:`CLAIM_TTL_SECONDS` and response_urls past :data:`REPLY_KEEP_SECONDS`
        (bearer capabilities are kept no longer than Slack honours them)."""
        now = _now()

        def purge(run: Run) -> int:
            claims = run("DELETE FROM chatdock_claims WHERE claimed_at < ? RETURNING key", (now - CLAIM_TTL_SECONDS,))
            replies = run(
                "DELETE FROM chatdock_replies WHERE issued_at < ? RETURNING url_hash", (now - REPLY_KEEP_SECONDS,)
            )
            return len(claims) + len(replies)

        count: int = self._call(purge, transaction=True)
        return count

    def ping(self) -> bool:
        """Whether the store answers a trivial query now (``/healthz``)."""
        try:
            return bool(self._call(lambda run: run("SELECT 1", ())))
        except Exception:
            return False

    # -- recording -------------------------------------------------------------------------------------
    def _clean(self, text: str | None, limit: int = MAX_TEXT) -> str:
        if not text:
            return ""
        cleaned = scrub(text, self._words, self._secrets)
        return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"

    def _clean_value(self, value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            if key == "labels":
                words = self._words
                return {k: MASK if is_secret_name(str(k), words) else self._clean_value(v) for k, v in value.items()}
            return {k: self._clean_value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            if key == "env":
                return [self._clean(item) for item in redact_env([str(i) for i in value], self._words)]
            if key == "labels":
                return [
                    [pair[0], MASK]
                    if isinstance(pair, list | tuple) and len(pair) == 2 and is_secret_name(str(pair[0]), self._words)
                    else self._clean_value(pair)
                    for pair in value
                ]
            return [self._clean_value(item) for item in value]
        if isinstance(value, str):
            return scrub(value, self._words, self._secrets)
        return value

    def clean_request(self, request: dict[str, Any] | None) -> dict[str, Any] | None:
        """The parsed request as stored: env values, secret labels and token shapes masked."""
        return None if request is None else dict(self._clean_value(request))

    def begin(
        self,
        *,
        request_id: str,
        actor: Actor,
        text: str,
        source: str,
        command: str | None,
        request: dict[str, Any] | None,
        decision: Decision | None,
        host: str | None = None,
    ) -> None:
        """Record a request before it runs (``outcome`` stays NULL until :meth:`end`). ``host``: the configured
        host it is for (NULL with zero configuration)."""
        try:
            cleaned = self.clean_request(request)
            params = (
                request_id,
                self.instance,
                _now(),
                actor.team,
                actor.user_team,
                actor.channel,
                actor.user,
                source,
                self._clean(text),
                command,
                json.dumps(cleaned, default=str) if cleaned is not None else None,
                decision.allowed if decision else None,
                decision.rule if decision else None,
                self._clean(decision.reason, MAX_MESSAGE) if decision else None,
                host,
            )
            rows = self._call(
                lambda run: run(
                    "INSERT INTO chatdock_audit (request_id, instance, started_at, team, user_team, channel, user_id, "
                    "source, text, command, request, allowed, rule, reason, host) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    params,
                )
            )
        except Exception:
            log.exception("audit: could not record the start of request %s; it goes on unaudited", request_id)
            return
        row_id = int(rows[0][0])
        with self._lock:
            self._rows[request_id] = row_id
        self._local.current = row_id

    def end(self, outcome: Outcome) -> None:
        """Complete the row :meth:`begin` wrote (or write a whole one if there is none)."""
        with self._lock:
            row_id = self._rows.pop(outcome.request_id, None)
        if getattr(self._local, "current", None) == row_id:
            self._local.current = None
        try:
            containers, networks = affected_ids(outcome)
            message = outcome.error.message if outcome.error is not None else summarize(outcome.result)
            done = (
                _now(),
                outcome_name(outcome),
                self._clean(message, MAX_MESSAGE),
                json.dumps(containers),
                json.dumps(networks),
                outcome.duration_ms,
            )
            if row_id is not None:
                self._call(
                    lambda run: run(
                        _END_SQL,
                        (*done, row_id),
                    )
                )
                return
            self.begin(
                request_id=outcome.request_id,
                actor=outcome.actor,
                text=outcome.shown_text,
                source=outcome.source,
                command=outcome.command,
                request=None
                if outcome.request is None
                else {
                    "command": outcome.request.command,
                    **outcome.request.model_dump(mode="json"),
                },
                decision=outcome.decision,
            )
            with self._lock:
                row_id = self._rows.pop(outcome.request_id, None)
            self._local.current = None
            if row_id is not None:
                self._call(
                    lambda run: run(
                        _END_SQL,
                        (*done, row_id),
                    )
                )
        except Exception:
            log.exception("audit: could not record the end of request %s", outcome.request_id)

    def record_delivery(self, request_id: str, status: str, *, mine: bool = True) -> None:
        """Note how the reply to ``request_id`` went out (``response_url``, ``chat.postMessage after ...``, ``ack``)
        or why it did not (``failed: ...``), on this instance's latest row for it (any instance's with
        ``mine=False``: a reply sent for a replica that died). Never raises."""
        if self.readonly:
            return
        instance_clause = "AND instance = ?" if mine else "AND instance <> ?"
        try:
            self._call(
                lambda run: run(
                    "UPDATE chatdock_audit SET delivery = ? WHERE id = "  # noqa: S608 (a fixed fragment)
                    f"(SELECT MAX(id) FROM chatdock_audit WHERE request_id = ? {instance_clause})",
                    (self._clean(status, MAX_MESSAGE), request_id, self.instance),
                )
            )
        except Exception:
            log.exception("audit: could not record how the reply to request %s was delivered", request_id)

    # -- reading ---------------------------------------------------------------------------------------
    @staticmethod
    def _record(row: Sequence[Any]) -> dict[str, Any]:
        (
            row_id,
            request_id,
            instance,
            started,
            ended,
            team,
            channel,
            user,
            source,
            text,
            command,
            request,
            allowed,
            rule,
            reason,
            outcome,
            message,
            containers,
            networks,
            duration,
            delivery,
            user_team,
            host,
        ) = row
        return {
            "id": int(row_id),
            "request_id": request_id,
            "time": iso(started),
            "ended": iso(ended),
            "team": team,
            "user_team": user_team or "",
            "channel": channel,
            "user": user,
            "source": source,
            "text": text,
            "command": command,
            "request": json.loads(request) if request else None,
            "decision": None if allowed is None else {"allowed": bool(allowed), "rule": rule, "reason": reason},
            "outcome": outcome or RUNNING,
            "message": message or "",
            "container_ids": json.loads(containers or "[]"),
            "network_ids": json.loads(networks or "[]"),
            "duration_ms": None if duration is None else float(duration),
            "delivery": delivery,
            "host": host,
            "instance": instance,
        }

    def recent(
        self,
        *,
        channel: str,
        limit: int = 20,
        user: str | None = None,
        failed: bool = False,
        host: str | None = None,
    ) -> list[dict[str, Any]]:
        """The newest entries of ``channel`` (the request asking is left out), newest first; ``host`` keeps only
        that host's."""
        where = ["channel = ?"]
        params: list[Any] = [channel]
        current = getattr(self._local, "current", None)
        if current is not None:
            where.append("id <> ?")
            params.append(current)
        if user:
            where.append("user_id = ?")
            params.append(user)
        if failed:
            where.append("outcome IS NOT NULL AND outcome <> 'ok'")
        if host:
            where.append("host = ?")
            params.append(host)
        params.append(max(1, min(int(limit), MAX_RECENT)))
        rows = self._call(
            lambda run: run(
                f"SELECT {self._columns} FROM chatdock_audit WHERE {' AND '.join(where)} "  # noqa: S608 (fixed fragments)
                "ORDER BY started_at DESC, id DESC LIMIT ?",
                tuple(params),
            )
        )
        return [self._record(row) for row in rows]

    def export(self, *, since: float | None = None, channel: str | None = None) -> Iterator[dict[str, Any]]:
        """Every entry (from ``since``, of ``channel``), oldest first, read in pages."""
        last = 0
        while True:
            where = ["id > ?"]
            params: list[Any] = [last]
            if since is not None:
                where.append("started_at >= ?")
                params.append(since)
            if channel:
                where.append("channel = ?")
                params.append(channel)
            params.append(EXPORT_PAGE)
            sql = f"SELECT {self._columns} FROM chatdock_audit WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"  # noqa: S608
            page: tuple[Any, ...] = tuple(params)
            rows: list[tuple[Any, ...]] = self._call(partial(_run_with, sql, page))
            for row in rows:
                yield self._record(row)
            if len(rows) < EXPORT_PAGE:
                return
            last = int(rows[-1][0])

    # -- closing ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the heartbeat, mark this instance's unfinished rows interrupted, unregister, disconnect."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self.close)
        self._heartbeats.stop()
        if not self.readonly:
            try:

                def leave(run: Run) -> None:
                    run(
                        "UPDATE chatdock_audit SET outcome = 'interrupted', ended_at = ?, message = ? "
                        "WHERE outcome IS NULL AND instance = ?",
                        (_now(), INTERRUPTED_MESSAGE, self.instance),
                    )
                    run("DELETE FROM chatdock_audit_instances WHERE instance = ?", (self.instance,))

                self._call(leave, transaction=True)
            except Exception:
                log.warning("audit: could not unregister on close", exc_info=True)
        with self._lane_lock:
            self._close_lane()
        with self._lock:
            self._disconnect()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------------ SQLite


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


# ------------------------------------------------------------------------------------------ PostgreSQL


class PostgresAudit(AuditStore):
    """The same log on PostgreSQL (psycopg 3), for several replicas."""

    kind = "postgres"

    def __init__(self, url: str, **kwargs: Any) -> None:
        try:
            import psycopg
        except ImportError:
            raise AuditError('PostgreSQL needs psycopg: pip install "chatdock[postgres]"') from None
        self._psycopg = psycopg
        self._retryable = (psycopg.OperationalError, psycopg.InterfaceError)
        self.url = url
        self._conn: Any = None
        super().__init__(**kwargs)

    def _open(self) -> Any:
        psycopg = self._psycopg
        params = psycopg.conninfo.conninfo_to_dict(self.url)
        extra: dict[str, Any] = {"application_name": "chatdock"}
        if "connect_timeout" not in params:
            extra["connect_timeout"] = 10
        return psycopg.connect(self.url, autocommit=True, **extra)

    def _connect(self) -> None:
        try:
            self._conn = self._open()
        except Exception as exc:
            raise AuditError(f"cannot connect to {display_target(self.url)}: {_first_line(exc)}") from None

    def _reconnect(self) -> bool:
        with self._lock:
            self._disconnect()
            try:
                self._conn = self._open()
            except Exception as exc:
                log.warning("audit: reconnecting to %s failed: %s", display_target(self.url), _first_line(exc))
                return False
            return True

    def _disconnect(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _open_lane(self) -> Any:
        return self._open()

    @contextmanager
    def _session(self, transaction: bool, conn: Any = None) -> Iterator[Run]:
        conn = conn or self._conn
        if conn is None:
            raise self._psycopg.OperationalError("not connected")

        def run(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            cursor = conn.execute(sql.replace("?", "%s"), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

        if not transaction:
            yield run
            return
        with conn.transaction():
            yield run

    def _schema(self) -> list[str]:
        # replicas starting together must not race on CREATE TABLE: serialise on an advisory lock
        return [
            "SELECT pg_advisory_xact_lock(hashtext('chatdock_audit_schema'))",
            *_schema("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "DOUBLE PRECISION", "BOOLEAN"),
            f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS delivery TEXT",  # logs created before the column
            f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS user_team TEXT NOT NULL DEFAULT ''",
            f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS host TEXT",  # and before several hosts
        ]


# ------------------------------------------------------------------------------------------ opening


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def display_target(target: str) -> str:
    """The path or URL with any password masked, for messages."""
    shown = re.sub(r"(://[^:/@?]*):[^@/?]*@", rf"\1:{MASK}@", target)
    return re.sub(r"(password=)[^&\s]*", rf"\1{MASK}", shown)


def open_audit(
    target: str,
    *,
    redact: Iterable[str] = (),
    secrets: Iterable[str] = (),
    readonly: bool = False,
    heartbeat: float = HEARTBEAT_SECONDS,
    stale_after: float = STALE_AFTER_SECONDS,
) -> AuditStore:
    """Open the audit log at ``target``: a ``postgresql://`` URL, or a SQLite file path (``sqlite:`` optional).

    ``redact`` adds secret-name words (the policy's); ``secrets`` are literal values never to store (the bot's
    tokens). ``readonly`` opens for reading only (``audit export``): no registration, no sweep, no writes.
    """
    options: dict[str, Any] = {
        "redact": redact,
        "secrets": secrets,
        "readonly": readonly,
        "heartbeat": heartbeat,
        "stale_after": stale_after,
    }
    if is_postgres(target):
        return PostgresAudit(target, **options)
    path = target.removeprefix("sqlite://") if target.startswith("sqlite://") else target.removeprefix("sqlite:")
    if "://" in path or not path:
        raise AuditError(f"CHATDOCK_DB={display_target(target)}: expected a SQLite file path or a postgresql:// URL")
    return SqliteAudit(path, **options)


def write_jsonl(records: Iterable[dict[str, Any]], out: Any) -> int:
    """Write one JSON object per line; return how many."""
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        count += 1
    out.flush()
    return count
