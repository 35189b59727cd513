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

Modules, one job each: :mod:`~bot.audit.base` (names, limits, the clock, the connection side of a store),
:mod:`~bot.audit.scrubbing` (what may be stored), :mod:`~bot.audit.liveness` (instances and interrupted rows),
:mod:`~bot.audit.replicas` (the tables replicas share), :mod:`~bot.audit.store` (recording and reading),
:mod:`~bot.audit.sqlite` and :mod:`~bot.audit.postgres` (the back ends), :mod:`~bot.audit.opening` (``CHATDOCK_DB``)
and :mod:`~bot.audit.export` (``audit export``). Everything public is importable from ``bot.audit``.

Failures. ``begin`` and ``end`` never raise (the pipeline promises not to): a write that fails is logged at
ERROR with the request ID and the request goes on unaudited.
"""

from bot.audit.base import (
    CLAIM_TTL_SECONDS,
    CLAIMS,
    EXPORT_PAGE,
    HEARTBEAT_SECONDS,
    INSTANCES,
    INTERRUPTED_MESSAGE,
    LEASES,
    MAX_MESSAGE,
    MAX_RECENT,
    MAX_TEXT,
    OUTCOMES,
    REPLIES,
    REPLY_KEEP_SECONDS,
    RUNNING,
    STALE_AFTER_SECONDS,
    TABLE,
    AuditError,
    Run,
    display_target,
    is_postgres,
)
from bot.audit.export import iso, parse_since, since_zone_note, write_jsonl
from bot.audit.liveness import machine_key, pid_start, process_alive
from bot.audit.opening import open_audit
from bot.audit.postgres import PostgresAudit
from bot.audit.scrubbing import affected_ids, outcome_name, scrub, summarize
from bot.audit.sqlite import SqliteAudit
from bot.audit.store import AuditStore

__all__ = [
    "CLAIMS",
    "CLAIM_TTL_SECONDS",
    "EXPORT_PAGE",
    "HEARTBEAT_SECONDS",
    "INSTANCES",
    "INTERRUPTED_MESSAGE",
    "LEASES",
    "MAX_MESSAGE",
    "MAX_RECENT",
    "MAX_TEXT",
    "OUTCOMES",
    "REPLIES",
    "REPLY_KEEP_SECONDS",
    "RUNNING",
    "STALE_AFTER_SECONDS",
    "TABLE",
    "AuditError",
    "AuditStore",
    "PostgresAudit",
    "Run",
    "SqliteAudit",
    "affected_ids",
    "display_target",
    "is_postgres",
    "iso",
    "machine_key",
    "open_audit",
    "outcome_name",
    "parse_since",
    "pid_start",
    "process_alive",
    "scrub",
    "since_zone_note",
    "summarize",
    "write_jsonl",
]
