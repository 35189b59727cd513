"""The audit store: recording requests (``begin`` / ``end``), reading them back, closing."""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import Any

from bot.audit import base
from bot.audit.base import (
    _COLUMNS,
    _END_SQL,
    EXPORT_PAGE,
    HEARTBEAT_SECONDS,
    INTERRUPTED_MESSAGE,
    MAX_MESSAGE,
    MAX_RECENT,
    MAX_TEXT,
    RUNNING,
    STALE_AFTER_SECONDS,
    AuditError,
    Run,
    _run_with,
)
from bot.audit.export import iso
from bot.audit.liveness import machine_key, pid_start
from bot.audit.replicas import SharedTables
from bot.audit.scrubbing import affected_ids, outcome_name, scrub, summarize
from bot.models import Actor, Decision
from bot.outcome import Outcome
from bot.periodic import Periodic
from bot.redact import MASK, is_secret_name, redact_env

log = logging.getLogger(__name__)


class AuditStore(SharedTables):
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
                base.now(),
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
                base.now(),
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
                        (base.now(), INTERRUPTED_MESSAGE, self.instance),
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
