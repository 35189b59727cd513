"""Opening the log ``CHATDOCK_DB`` names: a SQLite path or a ``postgresql://`` URL."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from bot.audit.base import (
    HEARTBEAT_SECONDS,
    STALE_AFTER_SECONDS,
    AuditError,
    display_target,
    is_postgres,
)
from bot.audit.postgres import PostgresAudit
from bot.audit.sqlite import SqliteAudit
from bot.audit.store import AuditStore

log = logging.getLogger(__name__)


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
