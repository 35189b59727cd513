"""Where pending approvals live (issue #13): two tables in the audit store's database, SQLite or PostgreSQL.

``chatdock_approvals`` holds each request as admitted (the typed request as JSON, the requester, host, reason,
rule and facts) and where it stands; ``chatdock_approval_votes`` each person's vote, once (its primary key).
Every change that decides something is one conditional statement (``UPDATE ... WHERE state = 'pending'``,
``INSERT ... ON CONFLICT``), so replicas asking at the same moment get different answers. The flow that uses
it is :mod:`bot.approvals`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from bot.models import Actor
from bot.policy import ApprovalRule

if TYPE_CHECKING:
    from bot.audit import AuditStore, Run

APPROVALS = "chatdock_approvals"
VOTES = "chatdock_approval_votes"
PENDING = "pending"
RUNNING = "running"
INTERRUPTED = "interrupted"  # approved and running when the process running it died


class Vote(BaseModel):
    model_config = ConfigDict(frozen=True)
    user: str
    vote: str
    at: float
    reason: str = ""


class Held(BaseModel):
    """A stored request and where it stands."""

    model_config = ConfigDict(frozen=True)
    id: str
    created_at: float
    expires_at: float
    state: str
    actor: Actor
    command: str
    model: str
    request: dict[str, Any]
    shown_text: str
    host: str | None  # the host it is for (the internal name; None: the only engine)
    host_shown: str | None  # as replies name it (None with zero configuration)
    reason: str = ""
    rule_index: int = 0
    rule: dict[str, Any] = Field(default_factory=dict)
    needed: int = 1
    facts: dict[str, Any] = Field(default_factory=dict)
    engine_request: list[dict[str, Any]] = Field(default_factory=list)
    message_channel: str = ""
    message_ts: str = ""
    ended_by: str = ""
    end_reason: str = ""
    result: str = ""
    request_id: str = ""
    votes: tuple[Vote, ...] = ()

    @property
    def approval_rule(self) -> ApprovalRule:
        return ApprovalRule.model_validate(self.rule)

    @property
    def approved_by(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if v.vote == "approve")


_SELECT = (
    "SELECT id, created_at, expires_at, state, actor, command, model, request, shown_text, host, host_shown, reason, "
    "rule_index, rule, needed, facts, engine_request, message_channel, message_ts, ended_by, end_reason, result, "
    "request_id FROM chatdock_approvals"
)


class ApprovalStore:
    """The pending requests, in the audit store's database (SQLite or PostgreSQL). Every change that decides
    something is one conditional statement, so replicas asking at once get different answers."""

    def __init__(self, audit: AuditStore, *, clock: Callable[[], float] = time.time) -> None:
        self.audit = audit
        self.clock = clock
        real = "DOUBLE PRECISION" if audit.kind == "postgres" else "REAL"
        lock = (
            ["SELECT pg_advisory_xact_lock(hashtext('chatdock_approvals_schema'))"] if audit.kind == "postgres" else []
        )
        statements = [
            *lock,
            f"""CREATE TABLE IF NOT EXISTS {APPROVALS} (
                id TEXT PRIMARY KEY,
                created_at {real} NOT NULL,
                expires_at {real} NOT NULL,
                state TEXT NOT NULL,
                actor TEXT NOT NULL,
                requester TEXT NOT NULL,
                command TEXT NOT NULL,
                model TEXT NOT NULL,
                request TEXT NOT NULL,
                shown_text TEXT NOT NULL DEFAULT '',
                host TEXT,
                host_shown TEXT,
                reason TEXT NOT NULL DEFAULT '',
                rule_index INTEGER NOT NULL DEFAULT 0,
                rule TEXT NOT NULL DEFAULT '{{}}',
                needed INTEGER NOT NULL DEFAULT 1,
                facts TEXT NOT NULL DEFAULT '{{}}',
                engine_request TEXT NOT NULL DEFAULT '[]',
                message_channel TEXT NOT NULL DEFAULT '',
                message_ts TEXT NOT NULL DEFAULT '',
                ended_at {real},
                ended_by TEXT NOT NULL DEFAULT '',
                end_reason TEXT NOT NULL DEFAULT '',
                result TEXT NOT NULL DEFAULT '',
                request_id TEXT NOT NULL DEFAULT '',
                runner TEXT NOT NULL DEFAULT ''
            )""",
            f"CREATE INDEX IF NOT EXISTS {APPROVALS}_state ON {APPROVALS} (state, expires_at)",
            f"""CREATE TABLE IF NOT EXISTS {VOTES} (
                approval_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                vote TEXT NOT NULL,
                at {real} NOT NULL,
                reason TEXT NOT NULL DEFAULT '',
                PRIMARY KEY (approval_id, user_id)
            )""",
        ]

        def create(run: Run) -> None:
            for statement in statements:
                run(statement, ())
            # ``runner`` came later: a table made before it gets it (empty: such a row is never swept)
            if audit.kind == "postgres":
                run(f"ALTER TABLE {APPROVALS} ADD COLUMN IF NOT EXISTS runner TEXT NOT NULL DEFAULT ''", ())
            elif "runner" not in {str(row[1]) for row in run(f"PRAGMA table_info({APPROVALS})", ())}:
                run(f"ALTER TABLE {APPROVALS} ADD COLUMN runner TEXT NOT NULL DEFAULT ''", ())

        self._call(create, transaction=True)

    def _call(self, work: Callable[[Run], Any], *, transaction: bool = False) -> Any:
        return self.audit._call(work, transaction=transaction)

    def create(self, held: Held) -> None:
        row = (
            held.id,
            held.created_at,
            held.expires_at,
            held.state,
            held.actor.model_dump_json(),
            held.actor.user,
            held.command,
            held.model,
            json.dumps(held.request),
            held.shown_text,
            held.host,
            held.host_shown,
            held.reason,
            held.rule_index,
            json.dumps(held.rule),
            held.needed,
            json.dumps(held.facts),
            json.dumps(held.engine_request),
            held.request_id,
        )
        self._call(
            lambda run: run(
                f"INSERT INTO {APPROVALS} (id, created_at, expires_at, state, actor, requester, command, model, "  # noqa: S608
                "request, shown_text, host, host_shown, reason, rule_index, rule, needed, facts, engine_request, "
                "request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        )

    def get(self, approval_id: str) -> Held | None:
        def read(run: Run) -> Held | None:
            rows = run(f"{_SELECT} WHERE id = ?", (approval_id,))
            if not rows:
                return None
            votes = run(
                f"SELECT user_id, vote, at, reason FROM {VOTES} WHERE approval_id = ? ORDER BY at",  # noqa: S608
                (approval_id,),
            )
            return _held(rows[0], votes)

        result: Held | None = self._call(read)
        return result

    def pending(self) -> list[Held]:
        now = self.clock()
        rows = self._call(
            lambda run: run(f"{_SELECT} WHERE state = ? AND expires_at > ? ORDER BY created_at", (PENDING, now))
        )
        return [h for h in (self.get(str(row[0])) for row in rows) if h is not None]

    def set_message(self, approval_id: str, channel: str, ts: str) -> None:
        self._call(
            lambda run: run(
                f"UPDATE {APPROVALS} SET message_channel = ?, message_ts = ? WHERE id = ?",  # noqa: S608
                (channel, ts, approval_id),
            )
        )

    def vote(self, approval_id: str, user: str, vote: str, *, reason: str = "", replace: bool = False) -> bool:
        """Record ``user``'s vote once; False when they already voted on it (``replace``: their denial takes the
        place of their earlier approval)."""
        conflict = (
            "DO UPDATE SET vote = excluded.vote, at = excluded.at, reason = excluded.reason"
            if replace
            else ("DO NOTHING")
        )
        rows = self._call(
            lambda run: run(
                f"INSERT INTO {VOTES} (approval_id, user_id, vote, at, reason) VALUES (?, ?, ?, ?, ?) "  # noqa: S608
                f"ON CONFLICT (approval_id, user_id) {conflict} RETURNING user_id",
                (approval_id, user, vote, self.clock(), reason),
            )
        )
        return bool(rows)

    def count_approvals(self, approval_id: str) -> int:
        rows = self._call(
            lambda run: run(
                f"SELECT COUNT(*) FROM {VOTES} WHERE approval_id = ? AND vote = 'approve'",  # noqa: S608
                (approval_id,),
            )
        )
        return int(rows[0][0])

    def transition(
        self, approval_id: str, *, to: str, by: str = "", reason: str = "", unexpired: bool = True, frm: str = PENDING
    ) -> bool:
        """Move a request from ``frm`` to ``to``; True for the one caller that did it (the claim). Moving to
        ``running`` records this process as its runner (see :meth:`interrupt_orphans`)."""
        now = self.clock()
        expiry = " AND expires_at > ?" if unexpired else ""
        runner = self.audit.instance if to == RUNNING else ""
        rows = self._call(
            lambda run: run(
                f"UPDATE {APPROVALS} SET state = ?, ended_at = ?, ended_by = ?, end_reason = ?, runner = ? "  # noqa: S608
                f"WHERE id = ? AND state = ?{expiry} RETURNING id",
                (to, now, by, reason, runner, approval_id, frm, *((now,) if unexpired else ())),
            ),
            transaction=True,
        )
        return bool(rows)

    def finish(self, approval_id: str, *, state: str, result: str) -> None:
        self._call(
            lambda run: run(
                f"UPDATE {APPROVALS} SET state = ?, result = ?, ended_at = ? WHERE id = ? AND state = ?",  # noqa: S608
                (state, result[:500], self.clock(), approval_id, RUNNING),
            )
        )

    def interrupt_orphans(self, result: str) -> list[Held]:
        """End every ``running`` request whose runner is no longer a live chatdock process (SIGKILL, OOM, a lost
        host: the audit store's instance sweep has dropped it) as ``interrupted``, once, whoever asks; the ones
        this call ended. A row from before runners were recorded (``runner`` empty) is left alone."""
        now = self.clock()
        rows = self._call(
            lambda run: run(
                f"UPDATE {APPROVALS} SET state = ?, result = ?, ended_at = ? "  # noqa: S608
                "WHERE state = ? AND runner <> '' AND runner <> ? "
                "AND runner NOT IN (SELECT instance FROM chatdock_audit_instances) RETURNING id",
                (INTERRUPTED, result[:500], now, RUNNING, self.audit.instance),
            ),
            transaction=True,
        )
        return [h for h in (self.get(str(row[0])) for row in rows) if h is not None]

    def expire_due(self) -> list[Held]:
        """End every pending request past its expiry (once, whoever asks); the ones this call ended."""
        now = self.clock()
        rows = self._call(
            lambda run: run(
                f"UPDATE {APPROVALS} SET state = 'expired', ended_at = ? "  # noqa: S608
                "WHERE state = ? AND expires_at <= ? RETURNING id",
                (now, PENDING, now),
            ),
            transaction=True,
        )
        return [h for h in (self.get(str(row[0])) for row in rows) if h is not None]


def _held(row: tuple[Any, ...], votes: list[tuple[Any, ...]]) -> Held:
    (id_, created, expires, state, actor, command, model, request, shown, host, host_shown, reason) = row[:12]
    (rule_index, rule, needed, facts, engine_request, channel, ts, ended_by, end_reason, result, request_id) = row[12:]
    return Held(
        id=id_,
        created_at=float(created),
        expires_at=float(expires),
        state=state,
        actor=Actor.model_validate_json(actor),
        command=command,
        model=model,
        request=json.loads(request),
        shown_text=shown,
        host=host,
        host_shown=host_shown,
        reason=reason,
        rule_index=int(rule_index),
        rule=json.loads(rule),
        needed=int(needed),
        facts=json.loads(facts),
        engine_request=json.loads(engine_request),
        message_channel=channel,
        message_ts=ts,
        ended_by=ended_by,
        end_reason=end_reason,
        result=result,
        request_id=request_id,
        votes=tuple(Vote(user=v[0], vote=v[1], at=float(v[2]), reason=v[3]) for v in votes),
    )
