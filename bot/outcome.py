"""What a request came to: the one value every front door renders and the audit log records.

Kept apart from the pipeline so renderers and the audit store depend on the result's shape, not on the stages
that produce it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializeAsAny

from bot.models import Actor, Decision, Request, Result

__all__ = ["ErrorInfo", "Outcome"]


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: str
    message: str
    usage: str | None = None
    rule: str | None = None


class Outcome(BaseModel):
    """Everything a front door needs to reply, and the audit log needs to record."""

    model_config = ConfigDict(frozen=True)
    request_id: str
    ok: bool
    text: str
    shown_text: str = ""
    actor: Actor
    command: str | None = None
    request: SerializeAsAny[Request] | None = None
    decision: Decision | None = None
    result: SerializeAsAny[Result] | None = None
    error: ErrorInfo | None = None
    engine_request: list[dict[str, Any]] | None = None
    host: str | None = None  # the host it ran on; None with zero configuration (one engine, never named)
    container_ids: tuple[str, ...] = ()
    network_ids: tuple[str, ...] = ()
    duration_ms: float = 0.0
    source: str = "shell"

    def public(self) -> dict[str, Any]:
        """The shell's ``--json`` shape."""
        result = None
        if self.result is not None:
            result = {"kind": self.result.kind, **self.result.model_dump(mode="json")}
        return {
            "ok": self.ok,
            "request_id": self.request_id,
            "command": self.command,
            "decision": self.decision.model_dump() if self.decision else None,
            "result": result,
            "error": self.error.model_dump() if self.error else None,
            "engine_request": self.engine_request,
            **({"host": self.host} if self.host is not None else {}),
        }
